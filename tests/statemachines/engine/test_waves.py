"""A wave's robots are found from its row (a range of robot names), not from a row per member."""

from __future__ import annotations

import time

from fleetwave_service.core import dynamo, keys
from fleetwave_service.engine.ports import get_ports
from support.rollout_harness import HOLD, STEPS, fail_at, report


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
    # and the job's rows are a row per robot (each written by the robot's own news, or r02's by prepare),
    # one per wave and its plan rows: no membership rows
    rows = _partition(job["arn"].rsplit("/", 1)[-1])
    kinds = sorted({row["sk"].split("#")[0] for row in rows})
    assert kinds == ["JOB", "PLAN", "ROBOT", "WAVE"]
    assert sorted(row["robotName"] for row in rows if row["sk"].startswith("ROBOT#")) == [
        f"r{index:02d}" for index in range(7)
    ]
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


def _seconds(value) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _stored(job: dict, robot: str) -> dict:
    """The robot's deployment row as stored (not as the engine reads it)."""
    job_id = job["arn"].rsplit("/", 1)[-1]
    return dynamo.get(*keys.robot_deployment_key(job_id, robot)) or {}


def test_waves_release_in_place_without_a_write_per_robot_and_robots_read_as_deploying(rollout):
    # Given 4 robots in waves of 50% that receive their command and hold on to it
    fleet = rollout.fleet_of(4, "in-place")
    for index in range(4):
        rollout.robots.behave(f"r{index:02d}", HOLD)
    version = rollout.given.application_version("nav")
    job = rollout.start(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})

    # When wave 1 is released
    rollout.pump_until(lambda: len(rollout.robots.commanded("deploy")) == 2, "wave 1 released")

    # Then neither prepare nor the release wrote a row per robot: r00 and r01 have none of their own yet
    # (prepare planned them in their wave's plan rows)
    assert [_stored(job, r) for r in ("r00", "r01", "r02")] == [{}] * 3
    # and yet they read as Deploying, started at the wave's release, while wave 2 is still pending
    job_id = job["arn"].rsplit("/", 1)[-1]
    released_at = get_ports().store.get_wave(job_id, 1)["releasedAt"]
    summary = rollout.robot_summary(job)
    assert [summary[r]["status"] for r in ("r00", "r01", "r02", "r03")] == [
        "Deploying",
        "Deploying",
        "PendingNewDeployment",
        "PendingNewDeployment",
    ]
    assert summary["r00"]["deploymentStartTime"] == summary["r01"]["deploymentStartTime"]
    assert abs(_seconds(summary["r00"]["deploymentStartTime"]) - float(released_at)) < 1
    deploying = get_ports().store.job_robot_deployments(job_id, ("Deploying",))
    assert sorted(row["robotName"] for row in deploying) == ["r00", "r01"]

    # When r00 reports progress, then succeeds, and r01 fails, both once and again (duplicates)
    command = rollout.robots.held.pop("r00")
    progress = report(command.jobId, command.attempt, 1, STEPS[1])
    rollout.robots.send("r00", progress)
    rollout.pump_until(lambda: _stored(job, "r00").get("status") == "Deploying", "r00's progress")
    # Then its first write of its own stored its plan and its release: status, attempt, deadline, start
    stored = _stored(job, "r00")
    assert (stored["robotName"], stored["wave"], stored["architecture"]) == ("r00", 1, "X86_64")
    assert stored["arn"] == summary["r00"]["arn"] and stored["expiresAt"]
    assert (stored["attempt"], float(stored["deploymentStartTime"])) == (1, float(released_at))
    assert stored["deadline"] == get_ports().store.get_wave(job_id, 1)["robotDeadline"]
    final = report(command.jobId, command.attempt, len(STEPS) - 1, STEPS[-1], "InSync")
    rollout.robots.send("r00", final)
    rollout.robots.send("r00", final)
    rollout.robots.finish("r01", fail_at(STEPS[2], "RobotApplicationLaunchFailed"))
    rollout.pump_until(lambda: len(rollout.robots.commanded("deploy")) == 4, "wave 2 released")
    for robot in ("r02", "r03"):
        rollout.robots.finish(robot)
    job = rollout.wait(job)

    # Then each robot finished once, counted once, with the start its wave gave it
    assert job["status"] == "Succeeded"
    summary = rollout.robot_summary(job)
    assert {r: s["status"] for r, s in summary.items()} == {
        "r00": "InSync",
        "r01": "Failed",
        "r02": "InSync",
        "r03": "InSync",
    }
    assert all(s.get("deploymentStartTime") for s in summary.values())
    assert get_ports().store.get_wave(job_id, 1)["succeededCount"] == 1
    assert get_ports().store.get_wave(job_id, 1)["failedCount"] == 1
