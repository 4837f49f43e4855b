"""A robot's agent killed and restarted (crash, power cut): the application it deployed runs, once.

The real `fleetwave agent` against the session's `fleetwave serve`; the application records every start
of itself (its pid) in the test's control directory, so copies are counted, not guessed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from fakes.robomaker import BUCKET
from support.agent_harness import run_first_release
from support.waiting import wait_for


def test_agent_killed_and_restarted_adopts_its_application_and_never_starts_a_second_copy(
    robot, agents, serve
) -> None:
    # Given a robot that runs a deployed application
    agent, _, pid = run_first_release(robot, agents, serve.mqtt_url)

    # When its agent is killed with SIGKILL (the application runs on, in its own process group)
    agent.kill(signal.SIGKILL)
    assert robot.running() == [pid]
    # and started again: it finds its state on disk, and its retained command comes again
    agent.start()
    agent.wait_log("application adopted")
    agent.wait_log("command already handled")

    # Then exactly one copy of the application runs: the same process, adopted, not relaunched
    assert robot.running() == [pid]
    assert robot.starts() == [pid]
    assert robot.describe()["status"] == "InSync"
    assert "report robot=" not in agent.log()  # nothing was deployed again
    # And the adopted application is supervised: when it crashes, it is restarted
    (robot.control / "crash-once").touch()
    wait_for(
        "the application to be restarted", lambda: len(robot.starts()) == 2 and len(robot.running()) == 1
    )

    # And a second agent for the same robot and work directory is refused while this one runs
    second = subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", "agent", "--robot", robot.name, "--mqtt-url", serve.mqtt_url,
         "--work-dir", str(agent.work_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 3, second.stderr
    assert "another agent" in second.stderr
    assert len(robot.running()) == 1


def test_robot_after_a_power_cut_runs_its_deployed_version_from_disk_without_its_bundle(
    robot, agents, serve
) -> None:
    # Given a robot that runs a deployed application
    agent, job, pid = run_first_release(robot, agents, serve.mqtt_url)

    # When agent and application die together (power cut)
    agent.kill(signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)
    wait_for("the application to be gone", lambda: robot.running() == [])
    # and the bundle can no longer be downloaded (deleted from S3)
    serve.aws_client("s3").delete_object(Bucket=BUCKET, Key=robot.keys[0])
    # and the robot boots again
    agent.start()

    # Then the deployed version runs again, started from its extracted bundle (nothing downloaded)
    [again] = wait_for("the application to run again", robot.running, details=agent.all_logs)
    assert again != pid
    agent.wait_log("command already handled")
    assert "DownloadingExtracting" not in agent.log()
    assert len(robot.running()) == 1
    # And the service still shows the robot InSync, with its application running
    described = wait_for(
        "the robot's application to be reported running",
        lambda: (r := robot.describe()).get("applicationHealth", {}).get("status") == "Running" and r,
    )
    assert described["status"] == "InSync"
    assert described["applicationHealth"]["deploymentJob"] == job["arn"]
