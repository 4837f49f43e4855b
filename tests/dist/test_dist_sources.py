"""Run-time code finds its files through importlib.resources, never through a path next to its own file
(which points into the repository from an editable install and nowhere from a wheel)."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_TREES = ("src", "functions", "statemachines")


def test_dist_runtime_code_locates_no_file_through_its_own_path() -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for tree in RUNTIME_TREES
        for path in sorted((REPO_ROOT / tree).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\b__file__\b", line)
    ]
    assert offenders == [], "read data through importlib.resources (see statemachines/__init__.py)"
