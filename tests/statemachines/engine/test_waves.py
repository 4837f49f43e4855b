"""A wave's robots are found from its row (a range of robot names), not from a row per member."""

from __future__ import annotations

import time

from fleetwave_service.core import dynamo, keys
from fleetwave_service.engine.ports import get_ports


def _partition(job_id: str) -> list[dict]:
    return dynamo.query_all(
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=dynamo.values(pk=keys.job_partition(job_id)),
    )


def test_waves_release_exactly_their_robots_when_a_robot_failed_before_release_falls_in_their_range(rollout):
    # Given 7 robots of which r02 has an architecture the application has no bundle for, waves of 50%:
    # wave 1 is r00, r01, r03, r04 (r02 sits in its name range, failed before release), wave 2 is r05, r06
    fleet = rollout.given.fleet("ranges")
    for index in range(7):
        rollout.given.robot(f"r{index:02d}", architecture="ARM64" if index == 2 else "X86_64", fleet=fleet)
    version = rollout.given.application_version("nav")

    # When the deployment runs
    job = rollout.run(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})

    # Then each wave released its own robots, in order, and r02 was never sent anything
    assert job["status"] == "Succeeded"
    assert rollout.robots.commanded("deploy") == ["r00", "r01", "r03", "r04", "r05", "r06"]
    summary = rollout.robot_summary(job)
    assert summary["r02"]["failureCode"] == "MissingRobotApplicationArchitecture"
    # and the job's rows are a row per robot and one per wave: no membership rows
    rows = _partition(job["arn"].rsplit("/", 1)[-1])
    kinds = sorted({row["sk"].split("#")[0] for row in rows})
    assert kinds == ["JOB", "ROBOT", "WAVE"]
    waves = {
        row["wave"]: (row["firstRobot"], row["lastRobot"], row["size"])
        for row in rows
        if row["sk"].startswith("WAVE#")
    }
    assert waves == {1: ("r00", "r04", 4), 2: ("r05", "r06", 2)}


def test_waves_of_jobs_started_before_the_ranges_are_read_from_their_member_rows(aws):
    # Given a wave written by an earlier version: a wave row without a range, and a member row per robot
    store = get_ports().store
    job_id = "deployment-oldoldoldold"
    expires = int(time.time()) + 86400
    rows = [(keys.wave_key(job_id, 1), {"wave": 1, "size": 2, "expiresAt": expires})]
    for name in ("b", "a"):
        member = {
            "robotName": name,
            "arn": f"arn:robot/{name}",
            "architecture": "X86_64",
            "wave": 1,
            "expiresAt": expires,
        }
        rows.append((keys.member_key(job_id, 1, name), member))
        rows.append((keys.robot_deployment_key(job_id, name), {**member, "status": "Deploying"}))
    store.put_rows(rows)

    # Then its members and their deployment rows are found as before
    assert sorted(m["robotName"] for m in store.wave_members(job_id, 1)) == ["a", "b"]
    assert sorted((r["robotName"], r["status"]) for r in store.wave_robot_deployments(job_id, 1)) == [
        ("a", "Deploying"),
        ("b", "Deploying"),
    ]
