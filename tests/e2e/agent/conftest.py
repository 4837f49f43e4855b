"""Fixtures for the robot-agent end-to-end tests (helpers in tests/support/agent_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.robomaker import Given
from support.agent_harness import Agents, Robot


@pytest.fixture
def robot(given: Given, tmp_path: Path) -> Robot:
    return Robot.create(given, tmp_path / "control")


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    helper = Agents(tmp_path)
    yield helper
    helper.cleanup()
