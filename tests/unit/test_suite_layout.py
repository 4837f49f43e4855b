"""The suite's own layout: what a clean CI run trips over before any test runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_suite_layout_test_module_basenames_are_unique():
    # pytest's default (prepend) import mode imports test modules by basename: two test_x.py files in
    # different folders make the whole run fail at collection, but only when both are collected.
    names = Counter(path.name for path in TESTS.rglob("test_*.py") if ".venv" not in path.parts)
    assert [name for name, count in names.items() if count > 1] == []
