"""Robot reports are applied exactly once in effect, inside a running rollout (real ASL in moto).

Two robots in one wave hold their commands; the test sends reports by hand through the status handler and
reads the effect back through DescribeDeploymentJob.
"""

from __future__ import annotations

import pytest
from fleetwave_service.engine.ports import get_ports
from support.rollout_harness import HOLD, report


@pytest.fixture
def deploying(rollout):
    """A job whose single wave (r00, r01) is deploying; returns (rollout, job, r00's command)."""
    fleet = rollout.given.fleet("warehouse")
    for name in ("r00", "r01"):
        rollout.given.robot(name, fleet=fleet)
        rollout.robots.behave(name, HOLD)
    version = rollout.given.application_version("nav")
    job = rollout.start(fleet, version)
    rollout.pump_until(lambda: len(rollout.robots.commanded()) == 2, "wave released")
    return rollout, job, rollout.robots.held["r00"]


def _send(rollout, robot, payload):
    rollout.robots.send(robot, payload)
    rollout.robots.deliver()


def _wave_counts(job):
    wave = get_ports().store.get_wave(job["arn"].rsplit("/", 1)[-1], 1)
    return wave["succeededCount"], wave["failedCount"], wave["noResponseCount"]


def test_report_progress_out_of_order_or_going_backwards_changes_nothing(deploying):
    rollout, job, command = deploying
    # Given r00 reported it is at ExecutingPreLaunch (seq 3)
    _send(rollout, "r00", report(command.jobId, command.attempt, 3, "ExecutingPreLaunch"))
    progress = rollout.robot_summary(job)["r00"]["progressDetail"]
    assert progress["currentProgress"] == "ExecutingPreLaunch"

    # When an older report arrives late (seq 2), and a newer one claims an earlier step (seq 4)
    _send(rollout, "r00", report(command.jobId, command.attempt, 2, "DownloadingExtracting"))
    _send(rollout, "r00", report(command.jobId, command.attempt, 4, "Validating"))

    # Then the robot still shows ExecutingPreLaunch
    assert rollout.robot_summary(job)["r00"]["progressDetail"] == progress
    assert rollout.robot_summary(job)["r00"]["status"] == "Deploying"


def test_report_duplicate_final_report_counts_once(deploying):
    rollout, job, command = deploying
    final = report(command.jobId, command.attempt, 6, "Finished", "InSync")

    # When r00's final report is delivered three times (twice in one batch)
    rollout.robots.send("r00", final)
    rollout.robots.send("r00", final)
    rollout.robots.deliver()
    _send(rollout, "r00", final)

    # Then r00 is InSync and counted once: the wave (r00, r01) is not complete and r01 is still deploying
    summary = rollout.robot_summary(job)
    assert summary["r00"]["status"] == "InSync"
    assert summary["r01"]["status"] == "Deploying"
    assert _wave_counts(job) == (1, 0, 0)
    assert rollout.describe(job)["status"] == "InProgress"

    # When r01 finishes, the job succeeds with both robots InSync
    rollout.robots.finish("r01")
    described = rollout.wait(job)
    assert described["status"] == "Succeeded"
    assert _wave_counts(job) == (2, 0, 0)


def test_report_for_a_stale_attempt_another_job_or_an_unknown_robot_changes_nothing(deploying):
    rollout, job, command = deploying

    # When reports arrive for another attempt, another job, and a robot the job does not target
    _send(rollout, "r00", report(command.jobId, command.attempt + 1, 6, "Finished", "InSync"))
    _send(rollout, "r00", report("deployment-000000000000", command.attempt, 6, "Finished", "InSync"))
    _send(rollout, "ghost", report(command.jobId, command.attempt, 6, "Finished", "InSync"))

    # Then nothing changed (and the batches were accepted, not retried)
    summary = rollout.robot_summary(job)
    assert [summary[r]["status"] for r in ("r00", "r01")] == ["Deploying", "Deploying"]
    assert "ghost" not in summary
    assert _wave_counts(job) == (0, 0, 0)


def test_report_failure_takes_the_robots_failure_code_and_late_reports_change_nothing(deploying):
    rollout, job, command = deploying
    # When r00 fails its pre-launch script and r01 succeeds
    _send(
        rollout,
        "r00",
        report(
            command.jobId,
            command.attempt,
            3,
            "ExecutingPreLaunch",
            "Failed",
            failureCode="PreLaunchFileFailure",
            failureReason="pre-launch exited 2",
        ),
    )
    rollout.robots.finish("r01")
    described = rollout.wait(job)

    # Then r00 shows the robot's code and reason; the job still succeeds (no threshold)
    summary = rollout.robot_summary(job)
    assert summary["r00"]["failureCode"] == "PreLaunchFileFailure"
    assert summary["r00"]["failureReason"] == "pre-launch exited 2"
    assert described["status"] == "Succeeded"

    # When r00 reports success after the job ended
    _send(rollout, "r00", report(command.jobId, command.attempt, 6, "Finished", "InSync"))

    # Then nothing changes
    assert rollout.robot_summary(job)["r00"]["status"] == "Failed"
    assert _wave_counts(job) == (1, 1, 0)
