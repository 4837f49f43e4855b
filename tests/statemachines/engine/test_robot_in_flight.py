"""A RoboMaker job's release writes nothing on its robots' own rows (fleet/in_flight.py): their readers
(DescribeRobot, ListRobots and its status filter, DescribeFleet) find the deployment in flight through the
fleet's running job, and the robot's own row takes the job with its outcome."""

from __future__ import annotations

from fleetwave_service.fleet import store as fleet_store
from support.rollout_harness import HOLD, SUCCEED


def _by_name(rollout, **filters) -> dict[str, dict]:
    body = {"filters": [{"name": k, "values": [v]} for k, v in filters.items()]} if filters else {}
    return {r["name"]: r for r in rollout.given.ok("listRobots", body)["robots"]}


def test_a_released_robot_reads_deploying_through_its_fleets_job_and_its_row_takes_the_outcome(rollout):
    # Given 4 robots in waves of 50%; the first wave's robots hold their command (no report yet)
    fleet = rollout.given.fleet("warehouse")
    robots = {f"r{i:02d}": rollout.given.robot(f"r{i:02d}", fleet=fleet) for i in range(4)}
    for name in robots:
        rollout.robots.behave(name, HOLD)
    job = rollout.start(
        fleet,
        rollout.given.application_version("nav"),
        deploymentConfig={"concurrentDeploymentPercentage": 50},
    )
    rollout.pump_until(lambda: len(rollout.robots.held) == 2, "the first wave's commands")
    first = sorted(rollout.robots.held)
    later = sorted(set(robots) - set(first))
    described = rollout.describe(job)

    # Then the robots' own rows are as they were (the release wrote nothing on them) ...
    assert {fleet_store.get_robot(name)["status"] for name in robots} == {"Registered"}
    assert all("lastDeploymentJob" not in fleet_store.get_robot(name) for name in robots)
    # ... yet every reader shows the first wave Deploying, with the job as its last deployment
    for name in first:
        robot = rollout.given.ok("describeRobot", {"robot": robots[name]["arn"]})
        assert robot["status"] == "Deploying"
        assert robot["lastDeploymentJob"] == job["arn"]
        assert robot["lastDeploymentTime"] == described["createdAt"]
    later_robot = rollout.given.ok("describeRobot", {"robot": robots[later[0]]["arn"]})
    assert later_robot["status"] == "Registered" and "lastDeploymentJob" not in later_robot
    listed = _by_name(rollout)
    assert {name: listed[name]["status"] for name in robots} == {
        **dict.fromkeys(first, "Deploying"),
        **dict.fromkeys(later, "Registered"),
    }
    assert sorted(_by_name(rollout, status="Deploying")) == first
    assert sorted(_by_name(rollout, status="Registered")) == later
    in_fleet = rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})["robots"]
    assert {r["name"]: r["status"] for r in in_fleet} == {name: listed[name]["status"] for name in robots}

    # When every robot deploys
    for name in first:
        rollout.robots.finish(name, SUCCEED)
    rollout.pump_until(
        lambda: len(rollout.robots.held) == 2 and set(rollout.robots.held) == set(later), "wave 2"
    )
    for name in later:
        rollout.robots.finish(name, SUCCEED)
    done = rollout.wait(job)

    # Then the job succeeded and each robot's own row holds its outcome and the job
    assert done["status"] == "Succeeded"
    for name in robots:
        row = fleet_store.get_robot(name)
        assert (row["status"], row["lastDeploymentJob"]) == ("InSync", job["arn"])
        assert row["lastDeploymentTime"] == described["createdAt"]
    assert sorted(_by_name(rollout, status="InSync")) == sorted(robots)
    assert _by_name(rollout, status="Deploying") == {}
