"""The suite's own layout: what a clean CI run trips over before any test runs."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_suite_layout_every_test_folder_is_collected(pytestconfig):
    # pytest skips folders matching norecursedirs (by default also build/ and dist/) without a word:
    # a whole suite there would never run in `make test`.
    skipped = pytestconfig.getini("norecursedirs")
    folders = {path.parent for path in TESTS.rglob("test_*.py") if ".venv" not in path.parts}
    hidden = sorted(
        str(folder.relative_to(TESTS))
        for folder in folders
        for part in folder.relative_to(TESTS).parts
        if any(fnmatch(part, pattern) for pattern in skipped)
    )
    assert hidden == []
