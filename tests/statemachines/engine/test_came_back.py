"""An offline robot shows NoResponse; when it comes back it runs its retained command and becomes InSync.

The job's history stays as it ended (its status, counters and robotDeploymentSummary keep NoResponse);
only the robot's own status (DescribeRobot / ListRobots) follows the late outcome, while that job is still
the robot's latest deployment.
"""

from __future__ import annotations

from fleetwave_service.engine.messages import AbortCommand, DeploymentCommand
from support.rollout_harness import HOLD, SILENT, fail_at, report

TIMEOUT = {"robotDeploymentTimeoutInSeconds": 60}


def _fleet_of(rollout, count: int):
    fleet = rollout.given.fleet("warehouse")
    for index in range(count):
        rollout.given.robot(f"r{index:02d}", fleet=fleet)
    return fleet


def _robot(rollout, name: str) -> dict:
    robots = rollout.given.ok("listRobots", {})["robots"]
    arn = next(r["arn"] for r in robots if r["name"] == name)
    return rollout.given.ok("describeRobot", {"robot": arn})


def _listed_status(rollout, name: str) -> str:
    return next(r["status"] for r in rollout.given.ok("listRobots", {})["robots"] if r["name"] == name)


def _late(rollout, robot: str, command: DeploymentCommand, status: str = "InSync", **extra) -> None:
    step = "Finished" if status == "InSync" else "ExecutingPreLaunch"
    rollout.robots.send(robot, report(command.jobId, command.attempt, 6, step, status, **extra))
    rollout.robots.deliver()


def test_rollout_robot_back_after_its_timeout_becomes_in_sync_without_changing_the_job(rollout):
    # Given a robot that was offline during a job: it timed out (NoResponse) and the job succeeded
    rollout.time_scale(0.015)
    fleet = _fleet_of(rollout, 2)
    version = rollout.given.application_version("nav")
    rollout.robots.behave("r01", SILENT)
    job = rollout.run(fleet, version, deploymentConfig=TIMEOUT)
    assert job["status"] == "Succeeded"
    assert _robot(rollout, "r01")["status"] == "NoResponse"

    # Then its desired state is still the job's deploy command (retained), not an abort
    command = rollout.robots.channel.retained["r01"]
    assert isinstance(command, DeploymentCommand) and command.jobId == job["arn"].rsplit("/", 1)[-1]

    # When it comes back, runs that command and reports InSync long after its deadline
    _late(rollout, "r01", command)

    # Then the robot is InSync, with this job as its last deployment
    robot = _robot(rollout, "r01")
    assert robot["status"] == "InSync"
    assert robot["lastDeploymentJob"] == job["arn"]
    assert robot["lastDeploymentTime"] == job["createdAt"]
    assert _listed_status(rollout, "r01") == "InSync"
    # and the job's history is as it ended: status, counts and the robot's summary entry
    assert rollout.describe(job) == job
    assert rollout.robot_summary(job)["r01"]["status"] == "NoResponse"

    # When the same report is delivered again
    _late(rollout, "r01", command)

    # Then nothing changes
    assert _robot(rollout, "r01") == robot
    assert rollout.describe(job) == job


def test_rollout_late_report_of_an_older_job_changes_nothing_and_a_late_failure_shows_failed(rollout):
    # Given r01 timed out in a first job, then timed out again in a second job (its latest deployment)
    rollout.time_scale(0.015)
    fleet = _fleet_of(rollout, 2)
    version = rollout.given.application_version("nav")
    rollout.robots.behave("r01", SILENT)
    first = rollout.run(fleet, version, deploymentConfig=TIMEOUT)
    first_command = rollout.robots.channel.deployments_for("r01")[-1]
    second = rollout.run(fleet, version, deploymentConfig=TIMEOUT)
    second_command = rollout.robots.channel.deployments_for("r01")[-1]
    assert second_command.jobId != first_command.jobId
    before = _robot(rollout, "r01")
    assert (before["status"], before["lastDeploymentJob"]) == ("NoResponse", second["arn"])

    # When a late InSync report of the first job arrives
    _late(rollout, "r01", first_command)

    # Then nothing changes: the second job is the robot's latest deployment
    assert _robot(rollout, "r01") == before
    assert rollout.describe(first) == first

    # When the robot runs the second job's command late and its pre-launch script fails
    _late(rollout, "r01", second_command, "Failed", failureCode="PreLaunchFileFailure")

    # Then the robot shows Failed; the second job still shows it NoResponse
    assert _robot(rollout, "r01")["status"] == "Failed"
    assert rollout.describe(second) == second
    assert rollout.robot_summary(second)["r01"]["status"] == "NoResponse"


def test_rollout_threshold_stop_aborts_robots_in_flight_but_timed_out_robots_keep_the_command(rollout):
    # Given 4 robots in waves of 2 and a 40% threshold: r00 is offline in wave 1; in wave 2 r02 fails
    # while r03 is still deploying (2 of 4 failed: breached)
    rollout.time_scale(0.015)
    fleet = _fleet_of(rollout, 4)
    version = rollout.given.application_version("nav")
    rollout.robots.behave("r00", SILENT)
    rollout.robots.behave("r02", fail_at("ExecutingPreLaunch", "PreLaunchFileFailure"))
    rollout.robots.behave("r03", HOLD)

    job = rollout.run(
        fleet,
        version,
        deploymentConfig={
            **TIMEOUT,
            "concurrentDeploymentPercentage": 50,
            "failureThresholdPercentage": 40,
        },
    )

    # Then the job failed on the threshold; r03 (in flight) was told to abort, r00 (timed out) was not
    assert (job["status"], job["failureCode"]) == ("Failed", "FailureThresholdBreached")
    retained = rollout.robots.channel.retained
    assert isinstance(retained["r03"], AbortCommand)
    assert isinstance(retained["r00"], DeploymentCommand)

    # When r00 comes back and deploys the retained command
    _late(rollout, "r00", retained["r00"])

    # Then r00 is InSync and the failed job is unchanged
    assert _robot(rollout, "r00")["status"] == "InSync"
    assert rollout.describe(job) == job


def test_rollout_cancel_withdraws_the_command_from_robots_that_timed_out(rollout):
    # Given 4 robots in waves of 2: r00 is offline and times out in wave 1; wave 2 is deploying
    rollout.time_scale(0.015)
    fleet = _fleet_of(rollout, 4)
    version = rollout.given.application_version("nav")
    rollout.robots.behave("r00", SILENT)
    rollout.robots.behave("r02", HOLD)
    rollout.robots.behave("r03", HOLD)
    job = rollout.start(fleet, version, deploymentConfig={**TIMEOUT, "concurrentDeploymentPercentage": 50})
    rollout.pump_until(lambda: {"r02", "r03"} <= set(rollout.robots.commanded("deploy")), "wave 2 released")

    # When the job is canceled
    rollout.given.ok("cancelDeploymentJob", {"job": job["arn"]})
    described = rollout.wait(job)

    # Then no robot keeps the canceled deployment as its desired state: the one that timed out gets an
    # abort too, so coming back later installs nothing; its history stays NoResponse
    assert described["status"] == "Canceled"
    retained = rollout.robots.channel.retained
    assert all(isinstance(retained[name], AbortCommand) for name in ("r00", "r02", "r03")), retained
    assert isinstance(retained["r01"], DeploymentCommand)  # finished InSync before the cancel
    assert rollout.robot_summary(job)["r00"]["status"] == "NoResponse"
