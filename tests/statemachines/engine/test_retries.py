"""Retry and Catch of the rollout's Lambda tasks, with faults injected into the in-process Lambda adapter.

The faults are answered by the local runtime's Lambda (fleetwave.local.lambda_adapter.inject_fault) as AWS
would answer them: a service error of the Invoke call (Lambda.TooManyRequestsException, ...) or an unhandled
error of the function. The state machine is the real ASL, executed by moto.
"""

from __future__ import annotations

import pytest
from support.invariants import assert_rollout_consistent, job_id_of
from support.rollout_harness import HOLD

from fleetwave.local import lambda_adapter

pytestmark = pytest.mark.chaos

TRANSIENT = [
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
]


def _retried(rollout, job: dict, state_type: str = "TaskFailed") -> list[str]:
    return [
        event["taskFailedEventDetails"]["error"]
        for event in rollout.history(job)
        if event["type"] == state_type and "taskFailedEventDetails" in event
    ]


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("prepare", "Lambda.TooManyRequestsException"),
        ("evaluate", "Lambda.ServiceException"),
        ("release_wave", "Lambda.AWSLambdaException"),
        ("finalize", "Lambda.SdkClientException"),
    ],
)
def test_a_transient_lambda_error_is_retried_and_the_rollout_succeeds(rollout, step, error):
    # Given a fleet of 4, and the step's next invoke throttled or failed by the Lambda service
    fleet = rollout.fleet_of(4, "retries")
    version = rollout.given.application_version("nav")
    lambda_adapter.inject_fault(step, error)

    # When the deployment runs
    job = rollout.run(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})

    # Then the step was retried: the job succeeded, every robot InSync exactly once
    assert job["status"] == "Succeeded", job
    assert error in _retried(rollout, job)
    assert lambda_adapter.pending_faults() == []
    outcome = assert_rollout_consistent(job_id_of(job), {f"r{i:02d}" for i in range(4)})
    assert set(outcome.values()) == {"InSync"}
    assert sorted(rollout.robots.commanded("deploy")) == [f"r{i:02d}" for i in range(4)]


def test_every_lambda_task_retries_each_transient_error_with_jitter():
    import json

    from fleetwave.statemachines import ROLLOUT

    states = json.loads(ROLLOUT.read_text())["States"]
    tasks = {name: state for name, state in states.items() if state["Type"] == "Task"}
    assert len(tasks) == 6  # prepare, evaluate, release, hold, sweep, finalize
    for name, state in tasks.items():
        transient = state["Retry"][0]
        assert set(transient["ErrorEquals"]) == set(TRANSIENT), name
        assert transient["JitterStrategy"] == "FULL", name
        assert transient["BackoffRate"] > 1 and transient["MaxDelaySeconds"] >= transient["IntervalSeconds"]
        # and whatever is not retried ends the job through Finalize (or Finalize's own failure state)
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name


def test_a_hold_retried_after_a_transient_error_still_waits_for_its_approval(rollout):
    # Given 4 robots in waves of 50% gated after the first wave, and the hold step's next invoke throttled
    fleet = rollout.fleet_of(4, "gated")
    version = rollout.given.application_version("nav")
    lambda_adapter.inject_fault("hold", "Lambda.TooManyRequestsException")
    job = rollout.start(
        fleet,
        version,
        deploymentConfig={"concurrentDeploymentPercentage": 50, "approval": {"after": "FirstWave"}},
    )

    # When the first wave has deployed and the throttled hold was invoked (the gate shows from evaluate on)
    rollout.pump_until(
        lambda: not lambda_adapter.pending_faults() and "waitingForApproval" in rollout.describe(job),
        "the throttled hold",
    )
    assert sorted(rollout.robots.commanded("deploy")) == ["r00", "r01"]

    # Then the approval ends the retried hold (its token, or the hold sees the wave approved when it runs)
    # and the rollout succeeds
    rollout.given.ok("approveDeploymentWave", {"job": job["arn"]})
    done = rollout.wait(job)
    assert done["status"] == "Succeeded", done
    assert "Lambda.TooManyRequestsException" in _retried(rollout, done)
    outcome = assert_rollout_consistent(job_id_of(done), {f"r{i:02d}" for i in range(4)})
    assert set(outcome.values()) == {"InSync"}


def test_a_release_retried_after_it_ran_publishes_once_and_counts_each_robot_once(rollout):
    # Given 4 robots in one wave, two answering at once and two holding; the release step runs, then its
    # answer is lost (the Lambda service fails the invoke after the function ran): Step Functions retries it
    # with a new task token
    fleet = rollout.fleet_of(4, "retries")
    version = rollout.given.application_version("nav")
    for robot in ("r02", "r03"):
        rollout.robots.behave(robot, HOLD)
    lambda_adapter.inject_fault("release_wave", "Lambda.ServiceException", when="after")

    # When the deployment runs, the held robots answering only after the retry
    job = rollout.start(fleet, version)
    rollout.pump_until(lambda: not lambda_adapter.pending_faults(), "the faulty release")
    rollout.pump_until(lambda: len(rollout.robots.channel.deployments_for("r02")) == 2, "the retried release")
    for robot in ("r02", "r03"):
        rollout.robots.finish(robot)
    job = rollout.wait(job)

    # Then the job succeeded through the retry's token (the first one is stale)
    assert job["status"] == "Succeeded", job
    assert "Lambda.ServiceException" in _retried(rollout, job)
    # and every command of the wave is the first release's (same attempt and deadline: an agent that has it
    # ignores it); the held robots, silent at the retry, got it again, and nobody got it more than twice
    channel = rollout.robots.channel
    deploys = {robot: channel.deployments_for(robot) for robot in ("r00", "r01", "r02", "r03")}
    assert {(c.jobId, c.attempt, c.deadline) for cs in deploys.values() for c in cs} == {
        (job_id_of(job), 1, deploys["r00"][0].deadline)
    }
    assert len(deploys["r02"]) == len(deploys["r03"]) == 2
    assert all(1 <= len(cs) <= 2 for cs in deploys.values())
    # and every robot was counted exactly once
    outcome = assert_rollout_consistent(job_id_of(job), {"r00", "r01", "r02", "r03"})
    assert set(outcome.values()) == {"InSync"}


@pytest.mark.parametrize("step", ["prepare", "evaluate", "release_wave", "sweep"])
def test_a_non_transient_error_fails_the_job_with_internal_server_error_and_unlocks_the_fleet(rollout, step):
    # Given a fleet of 3 whose robots never answer (so the wave times out and sweep runs), and the step's
    # next invoke failing with an error that is not the Lambda service's
    rollout.time_scale(0.005)
    fleet = rollout.fleet_of(3, "retries")
    version = rollout.given.application_version("nav")
    from support.rollout_harness import SILENT

    for index in range(3):
        rollout.robots.behave(f"r{index:02d}", SILENT)
    lambda_adapter.inject_fault(step, "KeyError", message="injected: not transient")

    # When the deployment runs
    job = rollout.run(fleet, version, deploymentConfig={"robotDeploymentTimeoutInSeconds": 300})

    # Then the job is Failed with InternalServerError, the machine ended normally, never InProgress
    assert job["status"] == "Failed", job
    assert job["failureCode"] == "InternalServerError"
    assert "KeyError" in job["failureReason"]
    assert rollout.status(job) == "SUCCEEDED"
    assert_rollout_consistent(job_id_of(job))
    # and the fleet is unlocked: the next deployment runs
    described = rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})
    assert described["lastDeploymentStatus"] == "Failed"
    for index in range(3):
        rollout.robots.behave(f"r{index:02d}", HOLD)
    assert rollout.given.job(fleet, version)["status"] in ("Pending", "Preparing", "InProgress")
