"""Fleet rows: ``FLEET#<name>`` / ``FLEET``, listed through gsi1 ``FLEETS``."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from fleetwave_service.core import dynamo, ids
from fleetwave_service.core.dynamo import Row

LIST_PARTITION = "FLEETS"


def fleet_key(name: str) -> tuple[str, str]:
    return f"FLEET#{name}", "FLEET"


def create(row: Row) -> bool:
    """Store a new fleet; False when a fleet of that name exists."""
    pk, sk = fleet_key(row["name"])
    item = dict(row, pk=pk, sk=sk, gsi1pk=LIST_PARTITION, gsi1sk=row["name"])
    return dynamo.put_new(item)


def get(name: str) -> Row | None:
    return dynamo.get(*fleet_key(name))


def thing_group_name(row: Row) -> str:
    """The fleet's IoT thing group name (rows written before ``thingGroupName`` had names <= 128 chars)."""
    return str(row.get("thingGroupName") or ids.iot_name(row["name"]))


def find_by_thing_group_name(group: str) -> Row | None:
    """The fleet whose IoT thing group is ``group``, or None (see robots.find_by_thing_name)."""
    row = get(group)
    if row is not None and thing_group_name(row) == group:
        return row
    prefix = ids.iot_name_prefix(group)
    if prefix is None:
        return None
    rows = dynamo.query_all(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p AND begins_with(gsi1sk, :prefix)",
        FilterExpression="thingGroupName = :group",
        ExpressionAttributeValues=dynamo.values(p=LIST_PARTITION, prefix=prefix, group=group),
    )
    return rows[0] if rows else None


def delete(name: str) -> bool:
    """Delete a fleet that has no active job; False when one started meanwhile."""
    try:
        dynamo.client().delete_item(
            TableName=dynamo.table_name(),
            Key=dynamo.key(*fleet_key(name)),
            ConditionExpression="attribute_not_exists(activeJobId)",
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def count() -> int:
    return dynamo.count(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues=dynamo.values(p=LIST_PARTITION),
    )


def count_active_jobs() -> int:
    """Fleets holding a job lock, i.e. deployment jobs that are Pending, Preparing or InProgress."""
    return dynamo.count(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        FilterExpression="attribute_exists(activeJobId)",
        ExpressionAttributeValues=dynamo.values(p=LIST_PARTITION),
    )


def list_page(
    limit: int, start_key: dict[str, Any] | None, name: str | None = None
) -> tuple[list[Row], dict[str, Any] | None]:
    condition = "gsi1pk = :p AND gsi1sk = :n" if name is not None else "gsi1pk = :p"
    params = {"p": LIST_PARTITION, **({"n": name} if name is not None else {})}
    return dynamo.query_page(
        limit,
        start_key,
        IndexName="gsi1",
        KeyConditionExpression=condition,
        ExpressionAttributeValues=dynamo.values(**params),
    )


def release_job_lock(name: str, job_id: str, last_deployment: dict[str, Any] | None = None) -> bool:
    """Remove ``activeJobId`` if it is still ``job_id`` (and record the fleet's last deployment).

    False when the lock is held by another job or already gone: then nothing is written.
    """
    update = "REMOVE activeJobId"
    names: dict[str, str] = {}
    params: dict[str, Any] = {"job": job_id}
    if last_deployment:
        assignments = []
        for index, (attribute, value) in enumerate(sorted(last_deployment.items())):
            names[f"#a{index}"] = attribute
            params[f"v{index}"] = value
            assignments.append(f"#a{index} = :v{index}")
        update = "SET " + ", ".join(assignments) + " " + update
    request: dict[str, Any] = {
        "TableName": dynamo.table_name(),
        "Key": dynamo.key(*fleet_key(name)),
        "UpdateExpression": update,
        "ConditionExpression": "activeJobId = :job",
        "ExpressionAttributeValues": dynamo.values(**params),
    }
    if names:
        request["ExpressionAttributeNames"] = names
    try:
        dynamo.client().update_item(**request)
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True
