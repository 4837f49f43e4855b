"""A robot's deployment in flight, as the robot's readers see it (DescribeRobot, ListRobots, DescribeFleet).

A RoboMaker deployment job holds its fleet's lock (``activeJobId``) from its creation to its end, and the
release of a wave writes nothing on its robots' own rows (one DynamoDB write per robot less:
docs/performance.md): a robot's own row takes the job with its outcome (its status, ``lastDeploymentJob``,
``lastDeploymentTime``). Until then a robot of a released wave reads as the job's row for it says
(Deploying; or its outcome, in the moment between the job's write and the robot's), with the job as its
last deployment; a robot of a wave not yet released keeps what its own row says, as before the release.

fleet/ imports only core: the reading of a job's robot rows is plugged in by the composition root
(``read_jobs_with``), like the events of fleet/events.py.

What a fleet's lock says is read through fleet/store.py ``active_job`` (briefly cached: a DescribeRobot
costs one DynamoDB read, not two); a job that ended wrote its outcomes on the robots before its lock went.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from fleetwave_service.core.dynamo import Row
from fleetwave_service.fleet import store

# (job id, robot names) -> (the job's row or None, its rows for those robots by robot name)
JobRobots = Callable[[str, list[str]], tuple[Row | None, Mapping[str, Row]]]
_read_job: JobRobots | None = None
_NOT_RELEASED = "PendingNewDeployment"


def read_jobs_with(reader: JobRobots) -> None:
    global _read_job
    _read_job = reader


def overlay(robots: list[Row], fleets: Mapping[str, Row] | None = None) -> list[Row]:
    """``robots`` (own rows) with their deployment in flight, where their fleet's running job released them.
    ``fleets``: fleet rows already read, by name (for the others, what their lock says is read, or cached)."""
    if _read_job is None:
        return robots
    by_fleet: dict[str, list[str]] = defaultdict(list)
    for robot in robots:
        if robot.get("fleetName"):
            by_fleet[robot["fleetName"]].append(robot["name"])
    in_flight: dict[str, dict[str, Any]] = {}
    for fleet_name, names in by_fleet.items():
        fleet = (fleets or {}).get(fleet_name)
        job_id = fleet.get("activeJobId") if fleet is not None else store.active_job(fleet_name)
        if not job_id:
            continue
        job, rows = _read_job(job_id, names)
        if job is None:
            continue
        for name in names:
            row = rows.get(name) or {}
            status = row.get("status")
            # Never released (a wave not yet out, or stopped before it went out): nothing reached the robot.
            if status and status != _NOT_RELEASED and not row.get("notReleased"):
                in_flight[name] = {
                    "status": status,
                    "lastDeploymentJob": job["arn"],
                    "lastDeploymentTime": job["createdAt"],
                }
    if not in_flight:
        return robots
    return [
        # A robot whose own row has the job already (its outcome, or prepare's failure) says the latest.
        {**robot, **in_flight[robot["name"]]}
        if robot.get("name") in in_flight
        and robot.get("lastDeploymentJob") != in_flight[robot["name"]]["lastDeploymentJob"]
        else robot
        for robot in robots
    ]
