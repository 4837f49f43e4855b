"""The rollout rules: wave sizes, the failure threshold and its reason, scaled timeouts."""

from __future__ import annotations

import pytest
from fleetwave_service.engine.rules import (
    plan_waves,
    scaled_seconds,
    threshold_breached,
    threshold_reason,
    wave_size,
)


@pytest.mark.parametrize(
    ("robots", "percentage", "size"),
    [(10, 30, 3), (10, None, 10), (10, 100, 10), (3, 1, 1), (7, 50, 4), (1, 10, 1), (0, 50, 0), (200, 1, 2)],
)
def test_rollout_rules_wave_size_is_ceil_of_the_percentage(robots, percentage, size):
    assert wave_size(robots, percentage) == size


def test_rollout_rules_plan_waves_slices_robots_in_order():
    names = [f"r{i}" for i in range(7)]
    assert plan_waves(names, 3) == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]
    assert plan_waves([], 3) == []


@pytest.mark.parametrize(
    ("failed", "targeted", "threshold", "breached"),
    [
        (3, 10, 20, True),
        (2, 10, 20, False),  # exactly at the threshold is not above it
        (10, 10, None, False),  # absent threshold = 100%: never exceeded
        (10, 10, 100, False),
        (1, 3, 33, True),
        (0, 0, 1, False),
    ],
)
def test_rollout_rules_threshold_is_breached_only_above_it(failed, targeted, threshold, breached):
    assert threshold_breached(failed, targeted, threshold) is breached


def test_rollout_rules_threshold_reason_reads_as_a_sentence():
    assert threshold_reason(3, 10, 20) == "3 of 10 robots failed (30%), above the failure threshold of 20%"
    assert threshold_reason(1, 3, 30) == "1 of 3 robots failed (33.3%), above the failure threshold of 30%"
    assert threshold_reason(1, 1, None) == "1 of 1 robot failed (100%), above the failure threshold of 100%"


def test_rollout_rules_scaled_seconds_are_whole_and_at_least_one():
    assert scaled_seconds(18000, 1.0) == 18000
    assert scaled_seconds(60, 0.015) == 1
    assert scaled_seconds(60, 0.01) == 1
    assert scaled_seconds(60, 0.1) == 6
