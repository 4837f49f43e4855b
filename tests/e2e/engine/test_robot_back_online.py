"""An offline robot shows NoResponse; when it comes back it pulls the latest deployment and becomes InSync.

`fleetwave serve` (session, small time scale) and `fleetwave simulate` as a subprocess started only after
the job ended: the robot was offline during the whole rollout. Waits poll the API with a deadline.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# A cap, not an expectation: the robot deploys within seconds once it is online.
DEADLINE_SECONDS = 60.0


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE_SECONDS:.0f} s")
        time.sleep(0.1)


def test_robot_offline_during_the_job_becomes_in_sync_when_it_comes_online(given, serve) -> None:
    # Given a fleet of one robot that is offline (no simulator runs for it)
    fleet = given.fleet(_unique("e2e-back"))
    robot = given.robot(_unique("e2e-back-robot"), fleet=fleet)
    version = given.application_version(_unique("e2e-back-app"))

    # When a job deploys to it with the minimum robot timeout (scaled by the stack to well under a second)
    job = given.job(fleet, version, deploymentConfig={"robotDeploymentTimeoutInSeconds": 60})
    done = _wait_for(
        "the job to end",
        lambda: (d := given.ok("describeDeploymentJob", {"job": job["arn"]}))["status"] == "Succeeded" and d,
    )

    # Then the robot timed out: NoResponse in the job and on the robot
    assert done["robotDeploymentSummary"][0]["status"] == "NoResponse"
    assert given.ok("describeRobot", {"robot": robot["arn"]})["status"] == "NoResponse"

    # When the robot comes online (`fleetwave simulate` for its fleet)
    log = Path(tempfile.mkdtemp(prefix="fleetwave-simulate-")) / "simulate.log"
    command = [
        sys.executable, "-m", "fleetwave.cli", "simulate",
        "--endpoint", serve.api_url, "--mqtt-url", serve.mqtt_url, "--fleet", fleet["name"],
        "--poll-seconds", "0.2", "--time-scale", serve.time_scale,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        # Then it runs the retained deploy command and becomes InSync with that job
        described = _wait_for(
            "the robot to become InSync",
            lambda: (r := given.ok("describeRobot", {"robot": robot["arn"]}))["status"] == "InSync" and r,
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{log.read_text(errors='replace')}") from None
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert described["lastDeploymentJob"] == job["arn"]
    # and the job's history is as it ended
    after = given.ok("describeDeploymentJob", {"job": job["arn"]})
    assert after["robotDeploymentSummary"] == done["robotDeploymentSummary"]
    assert after["status"] == "Succeeded"
