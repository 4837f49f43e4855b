"""A bad release on a real robot: it fails, and the last-known-good version runs again.

The real `fleetwave agent` (health window 1.5 s) against the session's `fleetwave serve`.
"""

from __future__ import annotations

from pathlib import Path

from support.agent_harness import CRASHING_APP, run_first_release
from support.waiting import wait_for


def _job_of(pid: int) -> str | None:
    """The deployment job a running application process belongs to (from its environment)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    values = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    return values.get("FLEETWAVE_JOB_ID")


def _job_id(job: dict) -> str:
    return job["arn"].rsplit("/", 1)[1]


def test_release_whose_application_crashes_in_its_health_window_fails_and_rolls_back(
    robot, agents, serve
) -> None:
    # Given a robot running version 1
    agent, good, first = run_first_release(robot, agents, serve.mqtt_url)

    # When version 2, whose application dies 0.3 s after launch, is deployed
    bad = robot.release(CRASHING_APP)
    done = robot.wait_job(bad, details=agent.all_logs)

    # Then the robot's deployment failed with the launch failure code, saying why and what it did
    summary = done["robotDeploymentSummary"][0]
    assert (summary["status"], summary["failureCode"]) == ("Failed", "EnvironmentSetupError"), summary
    assert "inside its 1.5 s health window" in summary["failureReason"]
    assert "cannot open /dev/lidar0" in summary["failureReason"]
    assert "rolled back to" in summary["failureReason"]
    assert robot.describe()["status"] == "Failed"
    # And version 1 runs again: one process, of the good job, started after the bad one
    [running] = wait_for("the last-known-good version to run again", robot.running)
    assert running != first and robot.starts()[-1] == running
    assert _job_of(running) == _job_id(good)
    health = wait_for(
        "the robot to report its application",
        lambda: (h := robot.describe().get("applicationHealth")) and h["applicationVersion"] == "1" and h,
    )
    assert health["status"] == "Running"


def test_release_whose_post_launch_script_fails_rolls_back_to_the_last_known_good(
    robot, agents, serve
) -> None:
    # Given a robot running version 1
    agent, good, _ = run_first_release(robot, agents, serve.mqtt_url)

    # When version 2 launches fine but its post-launch script fails
    bad = robot.release(post_launch="echo 'calibration failed' >&2\nexit 4\n")
    done = robot.wait_job(bad, details=agent.all_logs)

    # Then the deployment failed at the post-launch step with its code
    summary = done["robotDeploymentSummary"][0]
    assert (summary["status"], summary["failureCode"]) == ("Failed", "PostLaunchFileFailure"), summary
    assert summary["progressDetail"]["currentProgress"] == "ExecutingPostLaunch"
    assert "exited with status 4: calibration failed" in summary["failureReason"]
    # And version 2 was stopped, version 1 runs again, alone
    [running] = wait_for("the last-known-good version to run again", robot.running)
    assert _job_of(running) == _job_id(good)
    assert len(robot.starts()) == 3  # v1, v2 (stopped), v1 again
