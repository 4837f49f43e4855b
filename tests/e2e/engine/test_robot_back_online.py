"""An offline robot shows NoResponse; when it comes back it pulls the latest deployment and becomes InSync.

`fleetwave serve` (session, small time scale) and `fleetwave simulate` as a subprocess started only after
the job ended: the robot was offline during the whole rollout. Waits poll the API with a deadline.
"""

from __future__ import annotations

import uuid

from support.simulate_process import SimulateProcess
from support.waiting import wait_for


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_robot_offline_during_the_job_becomes_in_sync_when_it_comes_online(given, serve) -> None:
    # Given a fleet of one robot that is offline (no simulator runs for it)
    fleet = given.fleet(_unique("e2e-back"))
    robot = given.robot(_unique("e2e-back-robot"), fleet=fleet)
    version = given.application_version(_unique("e2e-back-app"))

    # When a job deploys to it with the minimum robot timeout (scaled by the stack to well under a second)
    job = given.job(fleet, version, deploymentConfig={"robotDeploymentTimeoutInSeconds": 60})
    done = wait_for(
        "the job to end",
        lambda: (d := given.ok("describeDeploymentJob", {"job": job["arn"]}))["status"] == "Succeeded" and d,
    )

    # Then the robot timed out: NoResponse in the job and on the robot
    assert done["robotDeploymentSummary"][0]["status"] == "NoResponse"
    assert given.ok("describeRobot", {"robot": robot["arn"]})["status"] == "NoResponse"

    # When the robot comes online (`fleetwave simulate` for its fleet)
    simulator = SimulateProcess(serve, fleet["name"])
    try:
        # Then it runs the retained deploy command and becomes InSync with that job
        described = wait_for(
            "the robot to become InSync",
            lambda: (r := given.ok("describeRobot", {"robot": robot["arn"]}))["status"] == "InSync" and r,
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{simulator.output()}") from None
    finally:
        simulator.stop()
    assert described["lastDeploymentJob"] == job["arn"]
    # and the job's history is as it ended
    after = given.ok("describeDeploymentJob", {"job": job["arn"]})
    assert after["robotDeploymentSummary"] == done["robotDeploymentSummary"]
    assert after["status"] == "Succeeded"
