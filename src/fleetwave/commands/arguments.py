"""The command line's argument validators, in one place: argparse ``type=`` callables that turn a string
into a value or refuse it with an ``ArgumentTypeError`` saying what is wrong (argparse prints it as
``fleetwave <command>: error: argument --x: <message>`` and exits 2).

Each validator names its own refusal (``{text}`` is what the user typed, ``{value}`` what it parsed to),
so every command keeps saying its range in its own words.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _parse(text: str, kind: type[int] | type[float], noun: str) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a {noun}: {text!r}") from None


def whole_number(low: int, high: int, refusal: str, noun: str = "whole number") -> Callable[[str], int]:
    """An integer from ``low`` to ``high``."""

    def validate(text: str) -> int:
        value = int(_parse(text, int, noun))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(refusal.format(text=text, value=value))
        return value

    return validate


def positive_number(
    refusal: str, *, at_most: float | None = None, finite: bool = True
) -> Callable[[str], float]:
    """A number greater than zero (and at most ``at_most``; finite unless told otherwise)."""

    def validate(text: str) -> float:
        value = _parse(text, float, "number")
        if not value > 0 or (finite and value == math.inf) or (at_most is not None and value > at_most):
            raise argparse.ArgumentTypeError(refusal.format(text=text, value=value))
        return value

    return validate


port = whole_number(0, 65535, "port must be 0-65535 (0 picks a free one), not {value}", noun="port number")


def sizes(text: str) -> list[int]:
    """Comma-separated positive whole numbers: ``10,100,1000``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 10,100,1000, not {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"sizes must be positive whole numbers, not {text!r}")
    return values
