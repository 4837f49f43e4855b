"""RetryDeploymentJob and RollbackFleet (docs/extensions.md): new jobs on the same engine, run by moto from
statemachines/rollout.asl.json, driven through the API handler, robots answering through the status handler.
"""

from __future__ import annotations

from support.rollout_harness import SILENT, fail_at, report


def _fleet_of(rollout, count: int, name: str = "warehouse"):
    fleet = rollout.given.fleet(name)
    robots = [rollout.given.robot(f"r{index:02d}", fleet=fleet) for index in range(count)]
    return fleet, {robot["name"]: robot for robot in robots}


def _robot(rollout, robot):
    return rollout.given.ok("describeRobot", {"robot": robot["arn"]})


# --- retry --------------------------------------------------------------------------------------


def test_retry_deploys_again_to_the_failed_and_silent_robots_only(rollout):
    # Given 4 robots in waves of 50%: r01 fails, r02 and r03 do not answer in time (60 s, about a second
    # here), and r03 comes back later and finishes
    rollout.time_scale(0.015)
    fleet, robots = _fleet_of(rollout, 4)
    version = rollout.given.application_version("nav")
    rollout.robots.behave("r01", fail_at("ExecutingPreLaunch", "PreLaunchFileFailure"))
    rollout.robots.behave("r02", SILENT)
    rollout.robots.behave("r03", SILENT)
    config = {"concurrentDeploymentPercentage": 50, "robotDeploymentTimeoutInSeconds": 60}
    first = rollout.run(fleet, version, deploymentConfig=config)
    assert first["status"] == "Succeeded"
    late = rollout.robots.channel.deployments_for("r03")[-1]
    rollout.robots.send("r03", report(late.jobId, late.attempt, 6, "Finished", "InSync"))
    rollout.robots.deliver()
    assert _robot(rollout, robots["r03"])["status"] == "InSync"
    assert rollout.robot_summary(first)["r03"]["status"] == "NoResponse"
    deployed_before = len(rollout.robots.commanded("deploy"))

    # When the cause is fixed and the job is retried
    rollout.robots.behaviours.clear()
    retry = rollout.given.ok("retryDeploymentJob", {"clientRequestToken": "retry-1", "job": first["arn"]})
    done = rollout.wait(retry)

    # Then a new job, linked both ways, with the same deployment and configuration, reached only them
    assert retry["retryOf"] == first["arn"]
    assert retry["deploymentApplicationConfigs"] == first["deploymentApplicationConfigs"]
    assert retry["deploymentConfig"] == first["deploymentConfig"]
    assert rollout.describe(first)["retriedBy"] == [retry["arn"]]
    assert done["status"] == "Succeeded"
    assert sorted(rollout.robots.commanded("deploy")[deployed_before:]) == ["r01", "r02"]
    assert sorted(rollout.robot_summary(retry)) == ["r01", "r02"]
    for name in ("r01", "r02"):
        described = _robot(rollout, robots[name])
        assert (described["status"], described["lastDeploymentJob"]) == ("InSync", retry["arn"])
    # and the robots that were fine keep the first job
    assert _robot(rollout, robots["r00"])["lastDeploymentJob"] == first["arn"]
    # and the same request again returns the same retry
    again = rollout.given.ok("retryDeploymentJob", {"clientRequestToken": "retry-1", "job": first["arn"]})
    assert again["arn"] == retry["arn"]
    # and only the fleet's latest job can be retried now
    stale = rollout.api.call("retryDeploymentJob", {"clientRequestToken": "retry-2", "job": first["arn"]})
    assert stale.status == 400
    assert stale.headers["x-amzn-ErrorType"] == "InvalidParameterException"
    assert retry["arn"] in stale.json["message"]
    # and a sync now finds every robot in sync: on the first job, its retry, or back after its timeout
    sync = rollout.wait(
        rollout.given.ok("syncDeploymentJob", {"clientRequestToken": "sync", "fleet": fleet["arn"]})
    )
    assert (sync["status"], sync["robotDeploymentSummary"]) == ("Succeeded", [])


def test_retry_reaches_robots_the_failed_job_never_released(rollout):
    # Given 4 robots in waves of 25%, a 20% failure threshold: r00 fails, so r01..r03 are never released
    fleet, _ = _fleet_of(rollout, 4)
    version = rollout.given.application_version("nav")
    rollout.robots.behave("r00", fail_at("DownloadingExtracting", "ExtractingBundleFailure"))
    first = rollout.run(
        fleet,
        version,
        deploymentConfig={"concurrentDeploymentPercentage": 25, "failureThresholdPercentage": 20},
    )
    assert (first["status"], first["failureCode"]) == ("Failed", "FailureThresholdBreached")

    # When it is retried after the fix
    rollout.robots.behaviours.clear()
    retry = rollout.given.ok("retryDeploymentJob", {"clientRequestToken": "retry", "job": first["arn"]})
    done = rollout.wait(retry)

    # Then every robot the first job left Failed (tried or not) gets the deployment, in the same waves
    assert done["status"] == "Succeeded"
    assert sorted(rollout.robot_summary(retry)) == ["r00", "r01", "r02", "r03"]
    timeline = [robot for event, robot in rollout.robots.timeline if event == "deploy"]
    assert timeline[-4:] == ["r00", "r01", "r02", "r03"]


def test_retry_refuses_jobs_that_cannot_be_retried(rollout):
    # Given a job that succeeded on every robot, and one still running
    fleet, _ = _fleet_of(rollout, 1)
    version = rollout.given.application_version("nav")
    clean = rollout.run(fleet, version)

    # Then retrying the clean job is a clear 400: nothing failed
    answer = rollout.api.call("retryDeploymentJob", {"clientRequestToken": "r-1", "job": clean["arn"]})
    assert (answer.status, answer.headers["x-amzn-ErrorType"]) == (400, "InvalidParameterException")
    assert "no Failed or NoResponse robots" in answer.json["message"]
    # and an unknown job is ResourceNotFoundException, as for DescribeDeploymentJob
    unknown = clean["arn"][: -len("000000000000")] + "000000000000"
    answer = rollout.api.call("retryDeploymentJob", {"clientRequestToken": "r-2", "job": unknown})
    assert (answer.status, answer.headers["x-amzn-ErrorType"]) == (400, "ResourceNotFoundException")


# --- rollback ----------------------------------------------------------------------------------


def test_rollback_brings_the_fleet_back_to_its_previous_successful_deployment(rollout, events):
    # Given a fleet that took v1, then v2, successfully
    fleet, robots = _fleet_of(rollout, 3)
    v1 = rollout.given.application_version("nav")
    first = rollout.run(fleet, v1, deploymentConfig={"concurrentDeploymentPercentage": 50})
    v2 = rollout.given.ok("createRobotApplicationVersion", {"application": v1["arn"]})
    second = rollout.run(fleet, v2)
    assert first["status"] == second["status"] == "Succeeded"
    deployed_before = len(rollout.robots.commanded("deploy"))

    # When the fleet is rolled back
    rollback = rollout.given.ok("rollbackFleet", {"clientRequestToken": "back-1", "fleet": fleet["arn"]})
    done = rollout.wait(rollback)

    # Then a normal job deployed v1 (its launch config and deployment config) to every robot
    assert (rollback["rollbackFrom"], rollback["rollbackTo"]) == (second["arn"], first["arn"])
    assert rollback["deploymentApplicationConfigs"] == first["deploymentApplicationConfigs"]
    assert rollback["deploymentConfig"] == first["deploymentConfig"]
    assert done["status"] == "Succeeded"
    assert sorted(rollout.robots.commanded("deploy")[deployed_before:]) == ["r00", "r01", "r02"]
    for name in robots:
        command = rollout.robots.channel.deployments_for(name)[-1]
        assert command.applicationVersion == v1["version"] == "1"
        described = _robot(rollout, robots[name])
        assert (described["status"], described["lastDeploymentJob"]) == ("InSync", rollback["arn"])
    assert rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})["lastDeploymentJob"] == rollback["arn"]
    # and subscribers heard about the rollback
    started = [detail for kind, detail, _ in events.published if kind == "Fleet Rollback Started"]
    assert started == [
        {
            "jobId": rollback["arn"].rsplit("/", 1)[-1],
            "arn": rollback["arn"],
            "fleet": fleet["arn"],
            "rollbackFrom": second["arn"],
            "rollbackTo": first["arn"],
            "application": v1["arn"],
            "applicationVersion": "1",
        }
    ]

    # When it is rolled back again: v2 was rolled back from, and nothing succeeded before v1
    again = rollout.api.call("rollbackFleet", {"clientRequestToken": "back-2", "fleet": fleet["arn"]})

    # Then it does not roll forth: a clear 400
    assert (again.status, again.headers["x-amzn-ErrorType"]) == (400, "InvalidParameterException")
    assert "no earlier successful deployment" in again.json["message"]


def test_rollback_after_a_failed_rollout_reaches_only_robots_not_on_the_earlier_version(rollout):
    # Given v1 everywhere, then v2 failing on its first robot (threshold 20%: the others keep v1)
    fleet, _ = _fleet_of(rollout, 4)
    v1 = rollout.given.application_version("nav")
    rollout.run(fleet, v1)
    v2 = rollout.given.ok("createRobotApplicationVersion", {"application": v1["arn"]})
    rollout.robots.behave("r00", fail_at("Launching", "MissingRobotDeploymentResource"))
    failed = rollout.run(
        fleet, v2, deploymentConfig={"concurrentDeploymentPercentage": 25, "failureThresholdPercentage": 20}
    )
    assert failed["status"] == "Failed"
    rollout.robots.behaviours.clear()
    deployed_before = len(rollout.robots.commanded("deploy"))

    # When the fleet is rolled back, with a deployment configuration of its own
    rollback = rollout.given.ok(
        "rollbackFleet",
        {
            "clientRequestToken": "back",
            "fleet": fleet["arn"],
            "deploymentConfig": {"robotDeploymentTimeoutInSeconds": 600},
        },
    )
    done = rollout.wait(rollback)

    # Then only the robot that left v1 is deployed to
    assert done["status"] == "Succeeded"
    assert done["deploymentConfig"] == {"robotDeploymentTimeoutInSeconds": 600}
    assert rollout.robots.commanded("deploy")[deployed_before:] == ["r00"]


def test_rollback_of_a_fleet_without_an_earlier_success_is_a_clear_400(rollout):
    fleet, _ = _fleet_of(rollout, 1)
    # no deployment at all
    answer = rollout.api.call("rollbackFleet", {"clientRequestToken": "b-1", "fleet": fleet["arn"]})
    assert (answer.status, answer.headers["x-amzn-ErrorType"]) == (400, "InvalidParameterException")
    assert "no earlier successful deployment" in answer.json["message"]
    # one successful deployment only: nothing earlier to go back to
    version = rollout.given.application_version("nav")
    assert rollout.run(fleet, version)["status"] == "Succeeded"
    answer = rollout.api.call("rollbackFleet", {"clientRequestToken": "b-2", "fleet": fleet["arn"]})
    assert (answer.status, answer.headers["x-amzn-ErrorType"]) == (400, "InvalidParameterException")
