"""Exponential backoff with jitter, for reconnecting to the broker and restarting an application."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays ``initial, initial*factor, ...`` capped at ``maximum``, each shortened by up to ``jitter``.

    With ``jitter=0.5`` a delay of base ``b`` is drawn from ``[b/2, b]`` ("equal jitter"): a fleet that lost
    its broker at the same moment does not reconnect in lockstep, and no delay collapses to nothing.
    """

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("backoff needs factor >= 1 and 0 <= jitter <= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rng = rng
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt (and count this attempt)."""
        base = min(self.maximum, self.initial * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return base * (1.0 - self.jitter * self._rng())

    def reset(self) -> None:
        self.attempts = 0
