"""The Greengrass rollout policy and status vocabulary as pure rules."""

from __future__ import annotations

import pytest
from fleetwave_service.engine.policy import policy_for
from fleetwave_service.greengrass.deployments import deployment_status, execution_status
from fleetwave_service.greengrass.policy import GreengrassPolicy, abort_reason, next_batch
from fleetwave_service.robomaker.policy import RoboMakerPolicy


def _job(base=None, factor=None, cap=None, criteria=None) -> dict:
    rollout: dict = {}
    if base:
        rollout["exponentialRate"] = {"baseRatePerMinute": base, "incrementFactor": factor}
        if criteria:
            rollout["exponentialRate"]["rateIncreaseCriteria"] = criteria
    if cap:
        rollout["maximumPerMinute"] = cap
    return {"iotJobConfiguration": {"jobExecutionsRolloutConfig": rollout}}


def _sizes(job: dict, count: int, succeeded_per_batch=None) -> list[int]:
    """Batch sizes as evaluate decides them; every released robot succeeds unless told otherwise."""
    sizes: list[int] = []
    released = succeeded = 0
    while released < count:
        decision = next_batch(job, len(sizes) + 1, released, succeeded, count - released)
        size = decision.pop("size")
        job = {**job, **decision}
        sizes.append(size)
        released += size
        succeeded += size if succeeded_per_batch is None else succeeded_per_batch[len(sizes) - 1]
    return sizes


@pytest.mark.parametrize(
    ("job", "count", "expected"),
    [
        (_job(2, 2.0, 8, {"numberOfNotifiedThings": 2}), 16, [2, 4, 8, 2]),
        (_job(1, 2.0, 3, {"numberOfSucceededThings": 1}), 10, [1, 2, 3, 3, 1]),
        (_job(1, 2.0, None, {"numberOfNotifiedThings": 3}), 8, [1, 1, 1, 2, 2, 1]),
        (_job(2, 1.5, None, {"numberOfNotifiedThings": 1}), 5, [2, 3]),
        (_job(1, 1.0, None, {"numberOfNotifiedThings": 1}), 4, [1, 1, 1, 1]),
        (_job(1, 2.0), 7, [1, 2, 4]),
        (_job(), 2500, [1000, 1000, 500]),
        (_job(cap=2), 5, [2, 2, 1]),
    ],
)
def test_next_batch_grows_by_the_factor_when_the_criteria_are_met_and_stops_at_the_cap(
    job, count, expected
) -> None:
    assert _sizes(job, count) == expected


def test_next_batch_succeeded_criteria_keep_the_rate_flat_while_robots_are_slow() -> None:
    # Given a rate of 1, x2 once 2 robots succeeded since the last increase
    job = _job(1, 2.0, None, {"numberOfSucceededThings": 2})
    # When the first three batches' robots are still running (nobody succeeded), then two succeed
    sizes = _sizes(job, 9, succeeded_per_batch=[0, 0, 0, 2, 0, 0, 0])
    # Then the rate stays 1 until two robots succeeded, then doubles once
    assert sizes == [1, 1, 1, 1, 2, 2, 1]


def _totals(succeeded: int = 0, failed: int = 0, timed_out: int = 0) -> dict[str, int]:
    return {"succeededCount": succeeded, "failedCount": failed, "noResponseCount": timed_out}


def _criterion(kind: str, threshold: float, minimum: int) -> dict:
    return {
        "failureType": kind,
        "action": "CANCEL",
        "thresholdPercentage": threshold,
        "minNumberOfExecutedThings": minimum,
    }


def test_abort_reason_waits_for_the_minimum_executed_robots() -> None:
    criteria = [_criterion("FAILED", 30, 3)]
    assert abort_reason(criteria, _totals(succeeded=1, failed=1)) is None
    assert "1 of 3 executed robots FAILED" in (abort_reason(criteria, _totals(succeeded=2, failed=1)) or "")


@pytest.mark.parametrize(
    ("kind", "totals", "aborts"),
    [
        ("FAILED", _totals(succeeded=1, timed_out=1), False),
        ("TIMED_OUT", _totals(succeeded=1, timed_out=1), True),
        ("ALL", _totals(succeeded=2, failed=1, timed_out=1), True),
        ("REJECTED", _totals(failed=5), False),
        ("FAILED", _totals(succeeded=3, failed=1), False),
    ],
)
def test_abort_reason_counts_the_criterion_failure_type(kind, totals, aborts) -> None:
    assert (abort_reason([_criterion(kind, 50, 1)], totals) is not None) is aborts


def test_policy_for_picks_the_front_door_and_greengrass_timeout_is_minutes() -> None:
    assert isinstance(policy_for({"frontDoor": "greengrass"}), GreengrassPolicy)
    assert isinstance(policy_for({"deploymentConfig": {}}), RoboMakerPolicy)
    job = {"iotJobConfiguration": {"timeoutConfig": {"inProgressTimeoutInMinutes": 3}}}
    assert GreengrassPolicy().robot_timeout_seconds(job) == 180


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"status": "InProgress"}, "ACTIVE"),
        ({"status": "Succeeded"}, "COMPLETED"),
        ({"status": "Failed"}, "FAILED"),
        ({"status": "Canceled"}, "CANCELED"),
        ({"status": "Canceled", "isLatestForTarget": False}, "INACTIVE"),
        ({"status": "Succeeded", "ggCanceled": True}, "CANCELED"),
    ],
)
def test_deployment_status_maps_engine_status_and_history(row, expected) -> None:
    assert deployment_status(row) == expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"status": "PendingNewDeployment"}, "QUEUED"),
        ({"status": "Deploying"}, "IN_PROGRESS"),
        ({"status": "InSync"}, "SUCCEEDED"),
        ({"status": "NoResponse"}, "TIMED_OUT"),
        ({"status": "Failed", "failureCode": "EnvironmentSetupError"}, "FAILED"),
        ({"status": "Failed", "failureCode": "RobotDeploymentAborted"}, "CANCELED"),
        ({"status": "Failed", "notReleased": True}, "CANCELED"),
    ],
)
def test_execution_status_maps_robot_rows(row, expected) -> None:
    assert execution_status(row) == expected


def test_execution_status_of_a_late_joiner_past_its_deadline_is_timed_out() -> None:
    assert execution_status({"status": "Deploying", "continuous": True, "deadline": 1.0}) == "TIMED_OUT"
    assert execution_status({"status": "Deploying", "continuous": True, "deadline": 4e9}) == "IN_PROGRESS"


def test_execution_status_success_is_completed_for_a_thing_and_succeeded_for_a_group() -> None:
    assert execution_status({"status": "InSync"}, "thing") == "COMPLETED"
    assert execution_status({"status": "InSync"}, "thinggroup") == "SUCCEEDED"
