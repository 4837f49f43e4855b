"""Fleetwave's rollout control extensions as a user runs them (docs/extensions.md): `fleetwave serve` and
`fleetwave simulate` as subprocesses, every call signed over HTTP.

The session's serve runs at a small time scale (0.01 by default: a 300 s robot timeout lasts 3 s). Each test
makes its own fleet and simulator. Waits poll the API with a deadline; nothing asserts on elapsed time.
"""

from __future__ import annotations

from typing import Any

from support.rollouts import SAFE_TIMEOUT, names, robot_name, unique

HOLD_STATE = "Hold the rollout"


def received(simulator: Any, job: dict[str, Any]) -> set[str]:
    """Robots the simulator saw receive a deploy command of ``job``."""
    job_id = job["arn"].rsplit("/", 1)[-1]
    return {
        line.split()[0]
        for line in simulator.output().splitlines()
        if "received deploy" in line and job_id in line
    }


def holds(serve: Any, job: dict[str, Any]) -> int:
    """How often the job's execution entered its hold (read from the embedded Step Functions)."""
    sfn = serve.aws_client("stepfunctions")
    job_id = job["arn"].rsplit("/", 1)[-1]
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "fleetwave-rollout")
    execution = machine["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return sum(1 for e in events if e.get("stateEnteredEventDetails", {}).get("name") == HOLD_STATE)


def test_retry_reaches_only_the_failed_and_silent_robots(rollouts, simulate):
    # Given 4 robots: one fails its first deployment, one misses it (offline), the others are fine
    robots = names(unique("retry"), 4)
    fleet = rollouts.fleet(robots)
    failing, silent = robots[1], robots[2]
    simulator = simulate(fleet, {failing: "fail-once:PreLaunchFileFailure", silent: "silent-once"}, robots=4)
    job = rollouts.job(
        fleet,
        rollouts.version(),
        concurrentDeploymentPercentage=50,
        robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT,
    )
    first = rollouts.finished(job)
    summary = {robot_name(item["arn"]): item["status"] for item in first["robotDeploymentSummary"]}
    assert summary == {robots[0]: "InSync", failing: "Failed", silent: "NoResponse", robots[3]: "InSync"}

    # When the job is retried
    retry = rollouts.client.call(
        "retryDeploymentJob", {"clientRequestToken": unique("retry"), "job": job["arn"]}
    )
    done = rollouts.finished(retry)

    # Then only the failed and the silent robot were sent the deployment again, and both are InSync now
    assert done["status"] == "Succeeded", done
    assert {robot_name(item["arn"]): item["status"] for item in done["robotDeploymentSummary"]} == {
        failing: "InSync",
        silent: "InSync",
    }
    assert received(simulator, retry) == {failing, silent}, simulator.output()
    # with the same deployment and configuration, linked both ways
    assert done["retryOf"] == job["arn"]
    assert rollouts.describe(job)["retriedBy"] == [retry["arn"]]
    assert done["deploymentApplicationConfigs"] == first["deploymentApplicationConfigs"]
    assert done["deploymentConfig"] == first["deploymentConfig"]
    # and each robot's own record says which job it got its deployment from
    listed = rollouts.client.call(
        "listRobots", {"filters": [{"name": "fleetName", "values": [fleet["name"]]}]}
    )
    last = {robot["name"]: (robot["status"], robot["lastDeploymentJob"]) for robot in listed["robots"]}
    assert last == {
        robots[0]: ("InSync", job["arn"]),
        failing: ("InSync", retry["arn"]),
        silent: ("InSync", retry["arn"]),
        robots[3]: ("InSync", job["arn"]),
    }


def test_rollback_brings_the_fleet_back_to_the_earlier_version(rollouts, simulate):
    # Given a fleet that took version 1, then version 2
    robots = names(unique("rollback"), 3)
    fleet = rollouts.fleet(robots)
    simulator = simulate(fleet, {}, robots=3)
    v1 = rollouts.version()
    v2 = rollouts.version(of=v1)
    first = rollouts.job(fleet, v1, robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT)
    assert rollouts.finished(first)["status"] == "Succeeded"
    second = rollouts.job(fleet, v2, robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT)
    assert rollouts.finished(second)["status"] == "Succeeded"

    # When the fleet is rolled back
    rollback = rollouts.client.call(
        "rollbackFleet", {"clientRequestToken": unique("back"), "fleet": fleet["arn"]}
    )
    done = rollouts.finished(rollback)

    # Then a normal job deployed version 1 again to every robot
    assert done["status"] == "Succeeded", done
    assert (done["rollbackFrom"], done["rollbackTo"]) == (second["arn"], first["arn"])
    assert done["deploymentApplicationConfigs"][0]["applicationVersion"] == v1["version"] == "1"
    assert received(simulator, rollback) == set(robots), simulator.output()
    # and every robot's describeRobot shows it, InSync on the job that brought version 1 back
    for name in robots:
        robot_arn = next(
            item["arn"] for item in done["robotDeploymentSummary"] if robot_name(item["arn"]) == name
        )
        described = rollouts.client.call("describeRobot", {"robot": robot_arn})
        assert (described["status"], described["lastDeploymentJob"]) == ("InSync", rollback["arn"])
        deployed = rollouts.describe({"arn": described["lastDeploymentJob"]})
        assert deployed["deploymentApplicationConfigs"][0]["applicationVersion"] == "1"
    assert (
        rollouts.client.call("describeFleet", {"fleet": fleet["arn"]})["lastDeploymentJob"] == rollback["arn"]
    )


def test_gate_and_pause_hold_waves_until_approved_and_resumed(rollouts, simulate, serve):
    # Given 6 robots in waves of a third, a gate after the first wave
    robots = names(unique("control"), 6)
    fleet = rollouts.fleet(robots)
    simulate(fleet, {}, robots=6)
    job = rollouts.job(
        fleet,
        rollouts.version(),
        concurrentDeploymentPercentage=33,
        robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT,
        approval={"after": "FirstWave"},
    )

    # When the first wave has deployed, the job waits for the approval of wave 2, nobody else released
    waiting = rollouts.wait_for(
        "the gate before wave 2", lambda: rollouts.describe(job).get("waitingForApproval")
    )
    assert waiting["wave"] == 2
    statuses = {name: item["status"] for name, item in rollouts.robots_of(job).items()}
    assert statuses == {
        **dict.fromkeys(robots[:2], "InSync"),
        **dict.fromkeys(robots[2:], "PendingNewDeployment"),
    }

    # When the job is paused, then wave 2 approved: the pause still holds wave 2 back
    rollouts.client.call("pauseDeploymentJob", {"job": job["arn"]})
    assert rollouts.client.call("approveDeploymentWave", {"job": job["arn"]}) == {
        "job": job["arn"],
        "wave": 2,
    }
    rollouts.wait_for("the pause to hold", lambda: holds(serve, job) == 2)
    described = rollouts.describe(job)
    assert described["status"] == "InProgress" and described["paused"] is True
    assert "waitingForApproval" not in described
    assert {item["status"] for name, item in rollouts.robots_of(job).items() if name in robots[2:]} == {
        "PendingNewDeployment"
    }

    # When it is resumed
    rollouts.client.call("resumeDeploymentJob", {"job": job["arn"]})

    # Then the rest of the fleet deploys, and the job succeeds
    done = rollouts.finished(job)
    assert done["status"] == "Succeeded", done
    assert {item["status"] for item in done["robotDeploymentSummary"]} == {"InSync"}
    assert "paused" not in done


def test_rollout_control_on_a_finished_job_is_a_clear_400(api, rollouts):
    robots = names(unique("finished"), 1)
    fleet = rollouts.fleet(robots)
    job = rollouts.job(fleet, rollouts.version(), robotDeploymentTimeoutInSeconds=60)
    rollouts.client.call("cancelDeploymentJob", {"job": job["arn"]})
    rollouts.wait_for("the job to be canceled", lambda: rollouts.describe(job)["status"] == "Canceled")

    for operation in ("pauseDeploymentJob", "resumeDeploymentJob"):
        response = api.call(operation, {"job": job["arn"]})
        assert response.status == 400, (operation, response.json)
        assert response.headers["x-amzn-ErrorType"] == "InvalidParameterException"
        assert "is Canceled" in response.json["message"]
