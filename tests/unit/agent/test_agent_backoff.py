"""Jittered exponential backoff."""

from __future__ import annotations

import pytest

from fleetwave.agent.backoff import Backoff


def test_backoff_doubles_up_to_its_maximum_and_starts_over_after_reset():
    backoff = Backoff(1.0, 8.0, rng=lambda: 0.0)  # no jitter drawn: the base delays
    assert [backoff.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.attempts == 6
    backoff.reset()
    assert backoff.next() == 1.0


def test_backoff_jitter_shortens_a_delay_by_at_most_half():
    assert Backoff(4.0, 4.0, rng=lambda: 1.0).next() == 2.0
    delays = [Backoff(4.0, 4.0).next() for _ in range(200)]
    assert all(2.0 <= delay <= 4.0 for delay in delays)
    assert len(set(delays)) > 100  # robots that lost the broker together do not retry together


def test_backoff_refuses_nonsense():
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)
