"""Approval gates and pause/resume, executed by moto from statemachines/rollout.asl.json (docs/extensions.md).

A hold is a task token parked on the job ("Hold the rollout"); ApproveDeploymentWave, ResumeDeploymentJob,
CancelDeploymentJob or the hold's timeout end it. Jobs are driven through the API handler, robots answer
through the real status handler, results are read back through DescribeDeploymentJob.
"""

from __future__ import annotations

import pytest
from fakes.rollout import FakeEvents
from support.rollout_harness import HOLD

HOLD_STATE = "Hold the rollout"


def _fleet_of(rollout, count: int, name: str = "warehouse"):
    fleet = rollout.given.fleet(name)
    for index in range(count):
        rollout.given.robot(f"r{index:02d}", fleet=fleet)
    return fleet


def _gated(rollout, fleet, percent: int, after: str):
    """A job on ``fleet`` in waves of ``percent``, gated ``after`` FirstWave or EveryWave; started."""
    version = rollout.given.application_version("nav")
    return rollout.start(
        fleet,
        version,
        deploymentConfig={"concurrentDeploymentPercentage": percent, "approval": {"after": after}},
    )


def _entered(rollout, job, state: str) -> int:
    """How many times the execution entered ``state``."""
    return sum(
        1 for event in rollout.history(job) if event.get("stateEnteredEventDetails", {}).get("name") == state
    )


def _held(rollout, job, times: int = 1) -> None:
    """Deliver reports until the rollout has entered its hold ``times`` times (and is waiting there)."""
    rollout.pump_until(lambda: _entered(rollout, job, HOLD_STATE) >= times, f"hold #{times}")


def _statuses(rollout, job) -> dict[str, str]:
    return {name: robot["status"] for name, robot in rollout.robot_summary(job).items()}


def _types(events: FakeEvents) -> list[str]:
    return [detail_type for detail_type, _, _ in events.published]


def test_gate_holds_the_next_wave_until_it_is_approved(rollout, events):
    # Given 4 robots in waves of 50% and an approval gate after the first wave
    fleet = _fleet_of(rollout, 4)
    job = _gated(rollout, fleet, 50, "FirstWave")

    # When the first wave has deployed
    _held(rollout, job)

    # Then the job is InProgress, waiting for the approval of wave 2, and nobody of wave 2 was released
    described = rollout.describe(job)
    assert described["status"] == "InProgress"
    assert described["waitingForApproval"]["wave"] == 2
    waiting = described["waitingForApproval"]
    assert waiting["deadline"] > waiting["since"]
    assert described["deploymentConfig"]["approval"] == {
        "after": "FirstWave",
        "timeoutInSeconds": 86400,
        "onTimeout": "Cancel",
    }
    assert sorted(rollout.robots.commanded("deploy")) == ["r00", "r01"]
    assert rollout.status(job) == "RUNNING"
    # and subscribers heard that the gate was reached
    assert _types(events) == ["Deployment Job Waiting For Approval"]
    _, detail, resources = events.published[0]
    assert detail["wave"] == 2 and detail["arn"] == job["arn"] and detail["fleet"] == fleet["arn"]
    assert resources == [job["arn"], fleet["arn"]]

    # When wave 2 is approved
    approved = rollout.given.ok("approveDeploymentWave", {"job": job["arn"]})

    # Then the rollout goes on and succeeds, every robot InSync, the gate gone from the job
    assert approved == {"job": job["arn"], "wave": 2}
    done = rollout.wait(job)
    assert done["status"] == "Succeeded"
    assert "waitingForApproval" not in done
    assert set(_statuses(rollout, job).values()) == {"InSync"}
    assert _types(events) == [
        "Deployment Job Waiting For Approval",
        "Deployment Job Wave Approved",
        "Deployment Job Status Change",
    ]
    # and the hold cost one pass through hold, evaluate and the choice: 6 + 3 per wave + 3 per hold
    assert rollout.transitions(job) == 6 + 3 * 2 + 3


@pytest.mark.parametrize(
    ("on_timeout", "status", "failure_code"),
    [("Cancel", "Canceled", None), ("Fail", "Failed", "FleetDeploymentTimeout")],
)
def test_gate_nobody_approves_ends_the_job_as_configured(rollout, events, on_timeout, status, failure_code):
    # Given a gate after the first wave that waits 60 s (about a second at this time scale)
    rollout.time_scale(0.015)
    fleet = _fleet_of(rollout, 4)
    version = rollout.given.application_version("nav")

    # When nobody approves wave 2
    job = rollout.run(
        fleet,
        version,
        deploymentConfig={
            "concurrentDeploymentPercentage": 50,
            "approval": {"after": "FirstWave", "timeoutInSeconds": 60, "onTimeout": on_timeout},
        },
    )

    # Then the job ended as the gate says, saying why, and wave 2 was never released
    assert job["status"] == status
    assert job.get("failureCode") == failure_code
    assert job["failureReason"] == "Wave 2 was not approved within 60 seconds."
    assert "waitingForApproval" not in job
    assert sorted(rollout.robots.commanded("deploy")) == ["r00", "r01"]
    summary = rollout.robot_summary(job)
    assert summary["r00"]["status"] == "InSync"
    assert summary["r03"]["status"] == "Failed"
    assert summary["r03"]["failureCode"] == "RobotDeploymentAborted"
    assert summary["r03"]["failureReason"].startswith("Not released.")
    # and the fleet shows it, free for the next deployment
    described = rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})
    assert described["lastDeploymentStatus"] == status
    assert "activeJobId" not in described
    assert _types(events)[-1] == "Deployment Job Status Change"
    assert events.published[-1][1]["failureReason"] == "Wave 2 was not approved within 60 seconds."

    # and an approval that comes too late is a clear 400
    late = rollout.api.call("approveDeploymentWave", {"job": job["arn"], "wave": 2})
    assert late.status == 400
    assert late.headers["x-amzn-ErrorType"] == "InvalidParameterException"


def test_gate_after_every_wave_takes_an_approval_ahead_of_time(rollout, events):
    # Given 3 waves with a gate before each wave after the first
    fleet = _fleet_of(rollout, 3)
    job = _gated(rollout, fleet, 33, "EveryWave")
    _held(rollout, job)
    assert rollout.describe(job)["waitingForApproval"]["wave"] == 2

    # When wave 3 is approved ahead of time, then wave 2 (twice: the same request again changes nothing)
    assert rollout.given.ok("approveDeploymentWave", {"job": job["arn"], "wave": 3})["wave"] == 3
    assert rollout.describe(job)["waitingForApproval"]["wave"] == 2
    rollout.given.ok("approveDeploymentWave", {"job": job["arn"], "wave": 2})
    rollout.given.ok("approveDeploymentWave", {"job": job["arn"], "wave": 2})

    # Then the rollout runs to the end without holding before wave 3
    done = rollout.wait(job)
    assert done["status"] == "Succeeded"
    assert rollout.robots.commanded("deploy") == ["r00", "r01", "r02"]
    assert _entered(rollout, job, HOLD_STATE) == 1
    assert _types(events).count("Deployment Job Wave Approved") == 2
    assert _types(events).count("Deployment Job Waiting For Approval") == 1


def test_pause_mid_wave_lets_robots_in_flight_finish_then_resume_releases_the_rest(rollout, events):
    # Given 4 robots in waves of 50%, the first wave deploying (its robots hold)
    fleet = _fleet_of(rollout, 4)
    version = rollout.given.application_version("nav")
    for robot in ("r00", "r01"):
        rollout.robots.behave(robot, HOLD)
    job = rollout.start(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})
    rollout.pump_until(lambda: len(rollout.robots.commanded("deploy")) == 2, "wave 1 released")

    # When the job is paused (twice: pausing a paused job changes nothing) and wave 1 finishes
    rollout.given.ok("pauseDeploymentJob", {"job": job["arn"]})
    rollout.given.ok("pauseDeploymentJob", {"job": job["arn"]})
    described = rollout.describe(job)
    assert described["paused"] is True and described["pausedAt"] >= described["createdAt"]
    rollout.robots.finish("r00")
    rollout.robots.finish("r01")
    _held(rollout, job)

    # Then the robots in flight finished, and no further wave went out
    assert _statuses(rollout, job) == {
        "r00": "InSync",
        "r01": "InSync",
        "r02": "PendingNewDeployment",
        "r03": "PendingNewDeployment",
    }
    assert rollout.describe(job)["status"] == "InProgress"
    assert rollout.status(job) == "RUNNING"

    # When it is resumed (twice: resuming a running job changes nothing)
    rollout.given.ok("resumeDeploymentJob", {"job": job["arn"]})
    rollout.given.ok("resumeDeploymentJob", {"job": job["arn"]})

    # Then wave 2 goes out and the job succeeds, no longer paused
    done = rollout.wait(job)
    assert done["status"] == "Succeeded"
    assert "paused" not in done and "pausedAt" not in done
    assert set(_statuses(rollout, job).values()) == {"InSync"}
    assert _types(events) == [
        "Deployment Job Paused",
        "Deployment Job Resumed",
        "Deployment Job Status Change",
    ]
    assert rollout.transitions(job) == 6 + 3 * 2 + 3


def test_cancel_while_paused_ends_the_hold_and_the_job(rollout):
    # Given a job paused before its second wave, holding
    fleet = _fleet_of(rollout, 4)
    version = rollout.given.application_version("nav")
    job = rollout.start(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})
    rollout.given.ok("pauseDeploymentJob", {"job": job["arn"]})
    _held(rollout, job)

    # When it is canceled
    rollout.given.ok("cancelDeploymentJob", {"job": job["arn"]})

    # Then the hold ends at once and the job is Canceled, nobody released while it was paused
    done = rollout.wait(job)
    assert done["status"] == "Canceled"
    assert "paused" not in done
    assert _entered(rollout, job, "Mark the job canceled") == 1
    released = rollout.robots.commanded("deploy")
    assert released in ([], ["r00", "r01"])  # paused before wave 1 or before wave 2, as the race went
    assert "activeJobId" not in rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})
    # and pausing or resuming it now is a clear 400
    for operation in ("pauseDeploymentJob", "resumeDeploymentJob"):
        answer = rollout.api.call(operation, {"job": job["arn"]})
        assert answer.status == 400, operation
        assert answer.headers["x-amzn-ErrorType"] == "InvalidParameterException"
        assert "is Canceled" in answer.json["message"]


def test_cancel_while_waiting_for_approval(rollout):
    # Given a job waiting at its gate
    fleet = _fleet_of(rollout, 2)
    job = _gated(rollout, fleet, 50, "FirstWave")
    _held(rollout, job)

    # When it is canceled
    rollout.given.ok("cancelDeploymentJob", {"job": job["arn"]})

    # Then it ends Canceled without waiting for the gate's day, wave 2 never released
    done = rollout.wait(job)
    assert done["status"] == "Canceled"
    assert "waitingForApproval" not in done
    assert rollout.robots.commanded("deploy") == ["r00"]


def test_gates_and_a_pause_cost_three_transitions_each(rollout):
    # Given 3 waves, a gate before each wave after the first, and a pause requested before the start
    fleet = _fleet_of(rollout, 3)
    for robot in ("r00", "r01", "r02"):
        rollout.robots.behave(robot, HOLD)
    job = _gated(rollout, fleet, 33, "EveryWave")
    rollout.given.ok("pauseDeploymentJob", {"job": job["arn"]})

    # When the pause holds wave 1, it is resumed, and each gate is approved in turn
    _held(rollout, job, 1)
    rollout.given.ok("resumeDeploymentJob", {"job": job["arn"]})
    for wave, robot in ((2, "r00"), (3, "r01")):
        rollout.pump_until(lambda robot=robot: robot in rollout.robots.held, f"{robot} released")
        rollout.robots.finish(robot)
        _held(rollout, job, wave)
        rollout.given.ok("approveDeploymentWave", {"job": job["arn"], "wave": wave})
    rollout.pump_until(lambda: "r02" in rollout.robots.held, "r02 released")
    rollout.robots.finish("r02")
    done = rollout.wait(job)

    # Then: 6 + 3 per wave + 3 per hold (one pause, two gates), whatever the fleet's size
    assert done["status"] == "Succeeded"
    assert rollout.transitions(job) == 6 + 3 * 3 + 3 * 3
