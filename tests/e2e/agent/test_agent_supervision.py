"""An application that crashes after its health window: restarted with backoff, then broken past the
restart limit; both visible through the API (DescribeRobot and the Greengrass core-device view)."""

from __future__ import annotations

from support.agent_harness import run_first_release
from support.waiting import wait_for


def test_application_crashing_after_its_window_is_restarted_then_broken_past_the_limit(
    robot, agents, serve, api
) -> None:
    # Given a robot whose agent allows 2 restarts (within 10 minutes) and runs a deployed application
    agent, job, _ = run_first_release(
        robot, agents, serve.mqtt_url, "--restart-limit", "2", "--restart-delay", "0.2"
    )

    # When the application crashes once
    (robot.control / "crash-once").touch()

    # Then it is restarted, and the API shows it running again after one restart
    health = wait_for(
        "the restart to be reported",
        lambda: (
            (h := robot.describe().get("applicationHealth"))
            and h["restartCount"] == 1
            and h["status"] == "Running"
            and h
        ),
        details=agent.all_logs,
    )
    assert health["deploymentJob"] == job["arn"]
    assert len(robot.starts()) == 2 and len(robot.running()) == 1

    # When it keeps crashing
    (robot.control / "crash-always").touch()

    # Then after the limit it is broken: not restarted again, and the API says so
    health = wait_for(
        "the application to be reported broken",
        lambda: (h := robot.describe().get("applicationHealth")) and h["status"] == "Broken" and h,
        details=agent.all_logs,
    )
    assert health["restartCount"] == 2
    assert health["lastExitCode"] == 6
    assert "restart limit 2" in health["reason"]
    assert robot.running() == [] and len(robot.starts()) == 3
    # The robot runs nothing: it is no longer shown InSync (the job keeps its history), and the Greengrass
    # view of it is UNHEALTHY
    # (the Failed mark is the status path's second write after the health it reacts to: waited for)
    wait_for("the robot to be shown Failed", lambda: robot.describe()["status"] == "Failed")
    assert robot.job(job)["robotDeploymentSummary"][0]["status"] == "InSync"
    device = api.greengrass.get_core_device(coreDeviceThingName=robot.name)
    assert device["status"] == "UNHEALTHY"

    # When the robot restarts its agent (a reboot), the application gets a fresh start and a fresh budget
    (robot.control / "crash-always").unlink()
    agent.stop()
    agent.start()
    wait_for(
        "the robot to be InSync again, its application running",
        lambda: (
            (r := robot.describe())["status"] == "InSync" and r["applicationHealth"]["status"] == "Running"
        ),
        details=agent.all_logs,
    )
    assert len(robot.running()) == 1
