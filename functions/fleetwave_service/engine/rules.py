"""The rollout engine's rules as pure functions: wave sizes, the failure threshold, scaled timeouts."""

from __future__ import annotations

import math

DEFAULT_CONCURRENT_PERCENTAGE = 100
DEFAULT_FAILURE_THRESHOLD_PERCENTAGE = 100
DEFAULT_ROBOT_TIMEOUT_SECONDS = 18000
JOB_TIMEOUT_SECONDS = 30 * 86400
# An approval gate's defaults (the RoboMaker extension's approvalConfig, docs/extensions.md): here, not with
# the request models, so that the rollout steps read them without loading the API's models.
DEFAULT_APPROVAL_TIMEOUT_SECONDS = 24 * 3600
DEFAULT_APPROVAL_ON_TIMEOUT = "Cancel"
# A robot's progress (its step while it deploys) is written at most this often: its first report and its
# outcome always, a later progress report once this long has passed since the last one written
# (docs/rollout.md "Cost"; scaled by the local time scale).
PROGRESS_INTERVAL_SECONDS = 15


def wave_size(target_count: int, concurrent_percentage: int | None) -> int:
    """Robots per wave: ceil(N x percentage / 100), at least one robot when there are any."""
    percentage = concurrent_percentage or DEFAULT_CONCURRENT_PERCENTAGE
    return max(1, math.ceil(target_count * percentage / 100)) if target_count else 0


def plan_waves(robot_names: list[str], size: int) -> list[list[str]]:
    """Consecutive slices of ``size`` robots; waves are numbered from 1 in this order."""
    if size <= 0:
        return []
    return [robot_names[start : start + size] for start in range(0, len(robot_names), size)]


def threshold_breached(failed: int, targeted: int, threshold_percentage: int | None) -> bool:
    """failed / targeted x 100 > threshold; an absent threshold (100) can never be exceeded."""
    threshold = threshold_percentage or DEFAULT_FAILURE_THRESHOLD_PERCENTAGE
    return targeted > 0 and failed * 100 > threshold * targeted


def _percent(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def threshold_reason(failed: int, targeted: int, threshold_percentage: int | None) -> str:
    """e.g. "3 of 10 robots failed (30%), above the failure threshold of 20%"."""
    threshold = threshold_percentage or DEFAULT_FAILURE_THRESHOLD_PERCENTAGE
    noun = "robot" if targeted == 1 else "robots"
    return (
        f"{failed} of {targeted} {noun} failed ({_percent(failed * 100 / targeted)}%), "
        f"above the failure threshold of {threshold}%"
    )


def scaled_seconds(seconds: float, time_scale: float) -> int:
    """A production duration as the machine waits it: scaled (local runtime), whole seconds, at least 1."""
    return max(1, math.ceil(seconds * time_scale))
