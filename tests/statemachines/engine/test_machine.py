"""The rollout state machine, executed by moto from statemachines/rollout.asl.json, every path.

Jobs are created through the API handler (which starts the execution); robots answer through the real
status handler; results are read back through DescribeDeploymentJob / DescribeFleet / DescribeRobot.
"""

from __future__ import annotations

from support.rollout_harness import HOLD, SILENT, fail_at, report


def _fleet_of(rollout, count: int, name: str = "warehouse", architecture: str = "X86_64"):
    fleet = rollout.given.fleet(name)
    for index in range(count):
        rollout.given.robot(f"r{index:02d}", architecture=architecture, fleet=fleet)
    return fleet


def test_rollout_multi_wave_success_releases_each_wave_after_the_previous_finished(rollout):
    # Given 10 robots and waves of 30% (ceil(3) robots: 3, 3, 3, 1)
    fleet = _fleet_of(rollout, 10)
    version = rollout.given.application_version("nav")

    # When the deployment runs and every robot succeeds
    job = rollout.run(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 30})

    # Then the job succeeded and every robot is InSync, finished
    assert job["status"] == "Succeeded"
    assert "failureCode" not in job
    summary = rollout.robot_summary(job)
    assert sorted(summary) == [f"r{i:02d}" for i in range(10)]
    for robot in summary.values():
        assert robot["status"] == "InSync"
        assert robot["progressDetail"]["currentProgress"] == "Finished"
        assert robot["progressDetail"]["percentDone"] == 100.0
        assert robot["deploymentFinishTime"] >= robot["deploymentStartTime"]
    # and wave n+1 was released only after every robot of wave n had finished
    timeline = rollout.robots.timeline
    waves = [["r00", "r01", "r02"], ["r03", "r04", "r05"], ["r06", "r07", "r08"], ["r09"]]
    for earlier, later in zip(waves, waves[1:], strict=False):
        last_finish = max(timeline.index(("finished", robot)) for robot in earlier)
        first_release = min(timeline.index(("deploy", robot)) for robot in later)
        assert last_finish < first_release, (earlier, later)
    # and the fleet and its robots record the deployment
    described = rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})
    assert described["lastDeploymentStatus"] == "Succeeded"
    assert described["lastDeploymentJob"] == job["arn"]
    for robot in described["robots"]:
        assert robot["status"] == "InSync"
        assert robot["lastDeploymentJob"] == job["arn"]


def test_rollout_threshold_breach_stops_releasing_and_aborts_robots_in_flight(rollout):
    # Given 10 robots in waves of 5, a 20% failure threshold; in wave 1 three robots fail, two keep working
    fleet = _fleet_of(rollout, 10)
    version = rollout.given.application_version("nav")
    for robot in ("r00", "r01", "r02"):
        rollout.robots.behave(robot, fail_at("DownloadingExtracting", "ExtractingBundleFailure"))
    for robot in ("r03", "r04"):
        rollout.robots.behave(robot, HOLD)

    # When the deployment runs
    job = rollout.run(
        fleet,
        version,
        deploymentConfig={"concurrentDeploymentPercentage": 50, "failureThresholdPercentage": 20},
    )

    # Then the job failed on the threshold, with a readable reason
    assert job["status"] == "Failed"
    assert job["failureCode"] == "FailureThresholdBreached"
    assert job["failureReason"] == "3 of 10 robots failed (30%), above the failure threshold of 20%"
    # and no robot of the second wave was ever released
    assert sorted(rollout.robots.commanded("deploy")) == ["r00", "r01", "r02", "r03", "r04"]
    # and the robots still in flight were told to abort and show it
    assert sorted(rollout.robots.commanded("abort")) == ["r03", "r04"]
    summary = rollout.robot_summary(job)
    assert summary["r00"]["status"] == "Failed"
    assert summary["r00"]["failureCode"] == "ExtractingBundleFailure"
    assert summary["r00"]["progressDetail"]["currentProgress"] == "DownloadingExtracting"
    assert summary["r03"]["status"] == "Failed"
    assert summary["r03"]["failureCode"] == "RobotDeploymentAborted"
    assert {summary[f"r0{i}"]["failureCode"] for i in range(5, 10)} == {"RobotDeploymentAborted"}
    assert "deploymentStartTime" not in summary["r07"]
    fleet_now = rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})
    assert fleet_now["lastDeploymentStatus"] == "Failed"


def test_rollout_silent_robot_times_out_as_no_response(rollout):
    # Given two robots, one of which never answers, and a 60 s robot timeout scaled to about a second
    rollout.time_scale(0.015)
    fleet = _fleet_of(rollout, 2)
    version = rollout.given.application_version("nav")
    rollout.robots.behave("r01", SILENT)

    # When the deployment runs (no failure threshold: the job completes)
    job = rollout.run(fleet, version, deploymentConfig={"robotDeploymentTimeoutInSeconds": 60})

    # Then the silent robot is NoResponse with RobotDeploymentNoResponse, the other InSync
    assert job["status"] == "Succeeded"
    summary = rollout.robot_summary(job)
    assert summary["r00"]["status"] == "InSync"
    assert summary["r01"]["status"] == "NoResponse"
    assert summary["r01"]["failureCode"] == "RobotDeploymentNoResponse"
    robot = rollout.given.ok("describeRobot", {"robot": _robot_arn(rollout, "r01")})
    assert robot["status"] == "NoResponse"
    # and the wave ended through the timeout path (sweep), not a robot report
    states = [
        e["stateEnteredEventDetails"]["name"] for e in rollout.history(job) if "stateEnteredEventDetails" in e
    ]
    assert "Sweep the silent robots" in states

    # When the silent robot reports success after its timeout
    command = rollout.robots.channel.deployments_for("r01")[-1]
    rollout.robots.send("r01", report(command.jobId, command.attempt, 6, "Finished", "InSync"))
    rollout.robots.deliver()

    # Then the job's history is unchanged (the robot itself becomes InSync: test_rollout_came_back.py)
    assert rollout.robot_summary(job)["r01"]["status"] == "NoResponse"


def _robot_arn(rollout, name: str) -> str:
    robots = rollout.given.ok("listRobots", {})["robots"]
    return next(r["arn"] for r in robots if r["name"] == name)


def test_rollout_cancel_mid_wave_ends_canceled_without_waiting_for_the_timeout(rollout):
    # Given 6 robots in waves of 50%, the first wave deploying (robots hold), the default 5-hour timeout
    fleet = _fleet_of(rollout, 6)
    version = rollout.given.application_version("nav")
    for index in range(6):
        rollout.robots.behave(f"r{index:02d}", HOLD)
    job = rollout.start(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})
    rollout.pump_until(lambda: len(rollout.robots.commanded("deploy")) == 3, "wave 1 released")

    # When the job is canceled through the API
    rollout.given.ok("cancelDeploymentJob", {"job": job["arn"]})

    # Then the rollout ends (long before any timeout) with the job Canceled
    described = rollout.wait(job)
    assert rollout.status(job) == "SUCCEEDED"
    assert described["status"] == "Canceled"
    # and nobody further was released, and the robots in flight were told to abort
    assert sorted(rollout.robots.commanded("deploy")) == ["r00", "r01", "r02"]
    assert sorted(rollout.robots.commanded("abort")) == ["r00", "r01", "r02"]
    summary = rollout.robot_summary(job)
    assert {summary[r]["failureCode"] for r in ("r00", "r01", "r02")} == {"RobotDeploymentAborted"}
    states = [
        e["stateEnteredEventDetails"]["name"] for e in rollout.history(job) if "stateEnteredEventDetails" in e
    ]
    assert "Mark the job canceled" in states
    assert "Sweep the silent robots" not in states
    # and the fleet is free for the next deployment
    assert "activeJobId" not in rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})
    rollout.robots.behaviours.clear()
    assert rollout.run(fleet, version)["status"] == "Succeeded"


def test_rollout_sync_deploys_only_to_robots_not_in_sync(rollout):
    # Given a fleet whose two robots got a deployment, and a robot registered afterwards
    fleet = _fleet_of(rollout, 2)
    version = rollout.given.application_version("nav")
    first = rollout.run(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})
    assert first["status"] == "Succeeded"
    rollout.given.robot("r99", fleet=fleet)
    deployed_before = len(rollout.robots.commanded("deploy"))

    # When the fleet is synced
    sync = rollout.given.ok("syncDeploymentJob", {"clientRequestToken": "sync-1", "fleet": fleet["arn"]})
    described = rollout.wait(sync)

    # Then only the new robot received the deployment, with the same application, and is InSync now
    assert described["status"] == "Succeeded"
    assert rollout.robots.commanded("deploy")[deployed_before:] == ["r99"]
    command = rollout.robots.channel.deployments_for("r99")[-1]
    assert command.application == version["arn"]
    assert command.applicationVersion == version["version"]
    assert list(rollout.robot_summary(sync)) == ["r99"]
    robot = rollout.given.ok("describeRobot", {"robot": _robot_arn(rollout, "r99")})
    assert robot["status"] == "InSync"


def test_rollout_robot_without_a_source_for_its_architecture_fails_without_release(rollout):
    # Given an application built for X86_64 only, an X86_64 robot and an ARM64 robot
    fleet = rollout.given.fleet("mixed")
    rollout.given.robot("x86", architecture="X86_64", fleet=fleet)
    rollout.given.robot("arm", architecture="ARM64", fleet=fleet)
    version = rollout.given.application_version("nav", architectures=("X86_64",))

    # When the deployment runs
    job = rollout.run(fleet, version)

    # Then the ARM64 robot failed with MissingRobotApplicationArchitecture and was never sent anything
    summary = rollout.robot_summary(job)
    assert summary["arm"]["status"] == "Failed"
    assert summary["arm"]["failureCode"] == "MissingRobotApplicationArchitecture"
    assert "ARM64" in summary["arm"]["failureReason"]
    assert rollout.robots.commanded("deploy") == ["x86"]
    # and the X86_64 robot got the X86_64 bundle through a presigned URL
    command = rollout.robots.channel.deployments_for("x86")[-1]
    assert command.bundle.architecture == "X86_64"
    assert command.bundle.s3Key == "nav/X86_64.tar.gz"
    assert "Signature" in command.bundle.url or "X-Amz-Signature" in command.bundle.url
    assert summary["x86"]["status"] == "InSync"
    assert job["status"] == "Succeeded"


class _BrokenChannel:
    """A channel whose adapter has a bug: every publish raises."""

    def publish_command(self, robot_name, command):
        raise RuntimeError("adapter bug")

    def publish_commands(self, items):
        raise RuntimeError("adapter bug")

    def clear_command(self, robot_name):
        pass


def test_rollout_internal_error_fails_the_job_instead_of_leaving_it_in_progress(rollout):
    # Given a robot channel that raises an unexpected error
    from fleetwave_service.engine.ports import use_ports

    fleet = _fleet_of(rollout, 2)
    version = rollout.given.application_version("nav")
    use_ports(channel=_BrokenChannel())

    # When the deployment runs
    job = rollout.run(fleet, version)

    # Then the job is Failed with InternalServerError (the machine itself ended normally)
    assert job["status"] == "Failed"
    assert job["failureCode"] == "InternalServerError"
    assert "RuntimeError" in job["failureReason"]
    assert rollout.status(job) == "SUCCEEDED"
    # and the fleet is released for the next deployment
    fleet_now = rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})
    assert fleet_now["lastDeploymentStatus"] == "Failed"
    use_ports(channel=rollout.robots.channel)
    assert rollout.run(fleet, version)["status"] == "Succeeded"


def test_rollout_transitions_grow_with_waves_not_robots(rollout):
    # Given two fleets of 4 and 40 robots, both deployed in 2 waves
    version = rollout.given.application_version("nav")
    small = rollout.given.fleet("small")
    for index in range(4):
        rollout.given.robot(f"s{index:02d}", fleet=small)
    large = rollout.given.fleet("large")
    for index in range(40):
        rollout.given.robot(f"l{index:02d}", fleet=large)

    # When both deploy
    small_job = rollout.run(small, version, deploymentConfig={"concurrentDeploymentPercentage": 50})
    large_job = rollout.run(large, version, deploymentConfig={"concurrentDeploymentPercentage": 50})

    # Then both succeeded with the same number of state transitions: 6 + 3 per wave (docs/rollout.md)
    assert small_job["status"] == large_job["status"] == "Succeeded"
    assert rollout.transitions(small_job) == rollout.transitions(large_job) == 6 + 3 * 2
