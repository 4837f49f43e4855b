"""Fleet and robot rows (docs/storage.md).

- fleet: ``FLEET#<name>`` / ``FLEET``, listed through gsi1 ``FLEETS``; ``activeJobId`` is a deployment
  job's lock on the fleet.
- robot: ``ROBOT#<name>`` / ``ROBOT``; gsi1 ``ROBOTS`` lists all, gsi2 ``FLEETROBOTS#<fleet>`` the robots
  registered in a fleet.
"""

from __future__ import annotations

import time
from typing import Any

from fleetwave_service.core import dynamo, ids, keys
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.keys import fleet_key, robot_key
from fleetwave_service.core.settings import get_settings


def _item(key: keys.Key, list_partition: str, row: Row) -> Row:
    return dict(row, **key.item(), gsi1pk=list_partition, gsi1sk=row["name"])


def _create(key: keys.Key, list_partition: str, row: Row) -> bool:
    return dynamo.put_new(_item(key, list_partition, row))


def _find_by_iot_name(
    list_partition: str, iot_name: str, attribute: str, get: Any, iot_name_of: Any
) -> Row | None:
    """The row whose IoT name (``attribute``) is ``iot_name``: a name of up to 128 characters is its own
    IoT name; a longer one was hashed to one (ids.iot_name), and the rows whose names share its readable
    prefix are few, so that query stays small."""
    row = get(iot_name)
    if row is not None and iot_name_of(row) == iot_name:
        return row
    prefix = ids.iot_name_prefix(iot_name)
    if prefix is None:
        return None
    rows = dynamo.query_all(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p AND begins_with(gsi1sk, :prefix)",
        FilterExpression=f"{attribute} = :iot",
        ExpressionAttributeValues=dynamo.values(p=list_partition, prefix=prefix, iot=iot_name),
    )
    return rows[0] if rows else None


# --- fleets -----------------------------------------------------------------------------------------
def create_fleet(row: Row) -> bool:
    """Store a new fleet; False when a fleet of that name exists."""
    return _create(fleet_key(row["name"]), keys.FLEETS, row)


def get_fleet(name: str) -> Row | None:
    return dynamo.get(*fleet_key(name))


def thing_group_name(row: Row) -> str:
    """The fleet's IoT thing group name (rows written before ``thingGroupName`` had names <= 128 chars)."""
    return str(row.get("thingGroupName") or ids.iot_name(row["name"]))


def find_by_thing_group_name(group: str) -> Row | None:
    """The fleet whose IoT thing group is ``group``, or None (see find_by_thing_name)."""
    return _find_by_iot_name(keys.FLEETS, group, "thingGroupName", get_fleet, thing_group_name)


def delete_fleet(name: str) -> bool:
    """Delete a fleet that has no active job; False when one started meanwhile."""
    return dynamo.delete(fleet_key(name), condition="attribute_not_exists(activeJobId)")


def count_fleets() -> int:
    return dynamo.count(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues=dynamo.values(p=keys.FLEETS),
    )


def count_active_jobs() -> int:
    """Fleets holding a job lock, i.e. deployment jobs that are Pending, Preparing or InProgress."""
    return dynamo.count(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        FilterExpression="attribute_exists(activeJobId)",
        ExpressionAttributeValues=dynamo.values(p=keys.FLEETS),
    )


def list_fleets_page(
    limit: int, start_key: dict[str, Any] | None, name: str | None = None
) -> tuple[list[Row], dict[str, Any] | None]:
    condition = "gsi1pk = :p AND gsi1sk = :n" if name is not None else "gsi1pk = :p"
    params = {"p": keys.FLEETS, **({"n": name} if name is not None else {})}
    return dynamo.query_page(
        limit,
        start_key,
        IndexName="gsi1",
        KeyConditionExpression=condition,
        ExpressionAttributeValues=dynamo.values(**params),
    )


# How long a reader trusts what it read of a fleet's lock (seconds, times the time scale; fleet/in_flight.py):
# a job that starts meanwhile shows its released robots that much later to a reader that read the fleet
# without it (in AWS, per function instance); this process's own changes of a lock are seen at once.
ACTIVE_JOB_CACHE_SECONDS = 1.0
_ACTIVE_JOB_CACHE_LIMIT = 10_000
_active_jobs: dict[str, tuple[float, str | None]] = {}  # fleet name -> (trusted until, activeJobId)


def active_job(fleet_name: str) -> str | None:
    """The id of the job that holds the fleet's lock (``activeJobId``), as read moments ago at most."""
    now = time.monotonic()
    cached = _active_jobs.get(fleet_name)
    if cached is not None and cached[0] > now:
        return cached[1]
    job_id = (get_fleet(fleet_name) or {}).get("activeJobId")
    if len(_active_jobs) >= _ACTIVE_JOB_CACHE_LIMIT:
        _active_jobs.clear()
    _active_jobs[fleet_name] = (now + ACTIVE_JOB_CACHE_SECONDS * get_settings().time_scale, job_id)
    return job_id


def forget_active_job(fleet_name: str) -> None:
    """The fleet's lock changes (a job takes it or gives it back): ``active_job`` reads it again."""
    _active_jobs.pop(fleet_name, None)


def release_job_lock(name: str, job_id: str, last_deployment: dict[str, Any] | None = None) -> bool:
    """Remove ``activeJobId`` if it is still ``job_id`` (and record the fleet's last deployment).

    False when the lock is held by another job or already gone: then nothing is written.
    """
    released = dynamo.update(
        fleet_key(name),
        sets=last_deployment,
        removes=("activeJobId",),
        condition="activeJobId = :job",
        values={":job": job_id},
    )
    forget_active_job(name)
    return released


def finish_deployment(fleet_name: str, job_id: str, fields: dict[str, Any]) -> bool:
    """Record the fleet's last deployment and drop its lock when the lock is still this job's.

    When cancel already dropped the lock, the last-deployment fields are still written unless a newer job
    holds the fleet now (that job is the fleet's last deployment, not this one). True: lock released here.
    """
    if release_job_lock(fleet_name, job_id, fields):
        return True
    dynamo.update(
        fleet_key(fleet_name),
        sets=fields,
        condition="attribute_exists(pk) AND attribute_not_exists(activeJobId)",
    )
    return False


# --- robots -----------------------------------------------------------------------------------------
def create_robot(row: Row) -> bool:
    """Store a new robot; False when a robot of that name exists."""
    return _create(robot_key(row["name"]), keys.ROBOTS, row)


def get_robot(name: str) -> Row | None:
    return dynamo.get(*robot_key(name))


def thing_name(row: Row) -> str:
    """The robot's IoT thing name (rows written before ``thingName`` existed had names <= 128 chars)."""
    return str(row.get("thingName") or ids.iot_name(row["name"]))


def find_by_thing_name(thing: str) -> Row | None:
    """The robot whose IoT thing is ``thing``, or None."""
    return _find_by_iot_name(keys.ROBOTS, thing, "thingName", get_robot, thing_name)


def delete_robot(name: str) -> None:
    dynamo.delete(robot_key(name))


def _membership(name: str, fleet_name: str, fleet_arn: str) -> Row:
    """What a robot row holds while it is registered in a fleet."""
    return {
        "fleetName": fleet_name,
        "fleetArn": fleet_arn,
        "gsi2pk": keys.fleet_robots_partition(fleet_name),
        "gsi2sk": name,
        "status": "Registered",
    }


def register(name: str, arn: str, fleet_name: str, fleet_arn: str) -> bool:
    """Put a robot that is in no fleet into one (status Registered); False when it is in a fleet or gone."""
    return dynamo.update(
        robot_key(name),
        sets=_membership(name, fleet_name, fleet_arn),
        condition="arn = :arn AND attribute_not_exists(fleetName)",
        values={":arn": arn},
    )


def put_registered_robots(rows: list[Row], fleet_name: str, fleet_arn: str) -> int:
    """Store new robots already registered in a fleet, 25 rows a request, without condition (the caller
    knows the names are free): the simulated copy of a fleet a rehearsal makes (fleetwave rehearse)."""
    items = []
    for row in rows:
        key = robot_key(row["name"])
        items.append(
            (key, {**_item(key, keys.ROBOTS, row), **_membership(row["name"], fleet_name, fleet_arn)})
        )
    return dynamo.put_rows(items)


def deregister(name: str, fleet_name: str) -> bool:
    """Take the robot out of ``fleet_name`` (it becomes Available); False when it is not in that fleet."""
    return dynamo.update(
        robot_key(name),
        sets={"status": "Available"},
        removes=("fleetName", "fleetArn", "gsi2pk", "gsi2sk"),
        condition="fleetName = :fleet",
        values={":fleet": fleet_name},
    )


def in_fleet(fleet_name: str, limit: int | None = None) -> list[Row]:
    """The robots registered in the fleet, in name order: all of them, or the first ``limit``."""
    query = {
        "IndexName": "gsi2",
        "KeyConditionExpression": "gsi2pk = :p",
        # The index is eventually consistent: trust the row's own fleetName over the index key.
        "FilterExpression": "fleetName = :fleet",
        "ExpressionAttributeValues": dynamo.values(
            p=keys.fleet_robots_partition(fleet_name), fleet=fleet_name
        ),
    }
    if limit is None:
        return dynamo.query_all(**query)
    return dynamo.query_page(limit, None, **query)[0]


def registered_robots(fleet_name: str) -> list[Row]:
    """The fleet's robots as a rollout snapshots them: listed through gsi2, then re-read consistently so
    that a robot deregistered a moment ago is gone."""
    listed = dynamo.query_all(
        IndexName="gsi2",
        KeyConditionExpression="gsi2pk = :pk",
        ExpressionAttributeValues=dynamo.values(pk=keys.fleet_robots_partition(fleet_name)),
    )
    robots = dynamo.batch_get([robot_key(row["name"]) for row in listed])
    return [robot for robot in robots if robot.get("fleetName") == fleet_name]


def list_robots_page(
    limit: int,
    start_key: dict[str, Any] | None,
    *,
    fleet_name: str | None = None,
    status: str | None = None,
) -> tuple[list[Row], dict[str, Any] | None]:
    filters: dict[str, Any] = {}
    if fleet_name is not None:
        index, partition = "gsi2", keys.fleet_robots_partition(fleet_name)
        filters["fleetName"] = fleet_name
    else:
        index, partition = "gsi1", keys.ROBOTS
    if status is not None:
        filters["status"] = status
    return dynamo.index_page(limit, start_key, index, partition, filters)
