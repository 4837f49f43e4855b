"""Robot rows: ``ROBOT#<name>`` / ``ROBOT``; gsi1 ``ROBOTS`` lists all, gsi2 ``FLEETROBOTS#<fleet>``."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from fleetwave_service.core import dynamo, ids
from fleetwave_service.core.dynamo import Row

LIST_PARTITION = "ROBOTS"


def robot_key(name: str) -> tuple[str, str]:
    return f"ROBOT#{name}", "ROBOT"


def fleet_partition(fleet_name: str) -> str:
    return f"FLEETROBOTS#{fleet_name}"


def create(row: Row) -> bool:
    """Store a new robot; False when a robot of that name exists."""
    pk, sk = robot_key(row["name"])
    item = dict(row, pk=pk, sk=sk, gsi1pk=LIST_PARTITION, gsi1sk=row["name"])
    return dynamo.put_new(item)


def get(name: str) -> Row | None:
    return dynamo.get(*robot_key(name))


def thing_name(row: Row) -> str:
    """The robot's IoT thing name (rows written before ``thingName`` existed had names <= 128 chars)."""
    return str(row.get("thingName") or ids.iot_name(row["name"]))


def find_by_thing_name(thing: str) -> Row | None:
    """The robot whose IoT thing is ``thing``, or None.

    A name of up to 128 characters is its own thing name; a longer one was hashed to one (ids.iot_name),
    and the robots whose names share its readable prefix are few, so that query stays small.
    """
    row = get(thing)
    if row is not None and thing_name(row) == thing:
        return row
    prefix = ids.iot_name_prefix(thing)
    if prefix is None:
        return None
    rows = dynamo.query_all(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p AND begins_with(gsi1sk, :prefix)",
        FilterExpression="thingName = :thing",
        ExpressionAttributeValues=dynamo.values(p=LIST_PARTITION, prefix=prefix, thing=thing),
    )
    return rows[0] if rows else None


def delete(name: str) -> None:
    dynamo.client().delete_item(TableName=dynamo.table_name(), Key=dynamo.key(*robot_key(name)))


def register(name: str, arn: str, fleet_name: str, fleet_arn: str) -> bool:
    """Put a robot that is in no fleet into one (status Registered); False when it is in a fleet or gone."""
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.key(*robot_key(name)),
            UpdateExpression=(
                "SET fleetName = :fleet, fleetArn = :fleetArn, gsi2pk = :partition, gsi2sk = :name, "
                "#status = :registered"
            ),
            ConditionExpression="arn = :arn AND attribute_not_exists(fleetName)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=dynamo.values(
                fleet=fleet_name,
                fleetArn=fleet_arn,
                partition=fleet_partition(fleet_name),
                name=name,
                registered="Registered",
                arn=arn,
            ),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def deregister(name: str, fleet_name: str) -> bool:
    """Take the robot out of ``fleet_name`` (it becomes Available); False when it is not in that fleet."""
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.key(*robot_key(name)),
            UpdateExpression="SET #status = :available REMOVE fleetName, fleetArn, gsi2pk, gsi2sk",
            ConditionExpression="fleetName = :fleet",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=dynamo.values(available="Available", fleet=fleet_name),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def in_fleet(fleet_name: str, limit: int | None = None) -> list[Row]:
    """The robots registered in the fleet, in name order: all of them, or the first ``limit``."""
    query = {
        "IndexName": "gsi2",
        "KeyConditionExpression": "gsi2pk = :p",
        # The index is eventually consistent: trust the row's own fleetName over the index key.
        "FilterExpression": "fleetName = :fleet",
        "ExpressionAttributeValues": dynamo.values(p=fleet_partition(fleet_name), fleet=fleet_name),
    }
    if limit is None:
        return dynamo.query_all(**query)
    return dynamo.query_page(limit, None, **query)[0]


def list_page(
    limit: int,
    start_key: dict[str, Any] | None,
    *,
    fleet_name: str | None = None,
    status: str | None = None,
) -> tuple[list[Row], dict[str, Any] | None]:
    names: dict[str, str] = {}
    params: dict[str, Any] = {}
    filters: list[str] = []
    if fleet_name is not None:
        request: dict[str, Any] = {"IndexName": "gsi2", "KeyConditionExpression": "gsi2pk = :p"}
        params["p"] = fleet_partition(fleet_name)
        params["fleet"] = fleet_name
        filters.append("fleetName = :fleet")
    else:
        request = {"IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :p"}
        params["p"] = LIST_PARTITION
    if status is not None:
        names["#status"] = "status"
        params["status"] = status
        filters.append("#status = :status")
    if filters:
        request["FilterExpression"] = " AND ".join(filters)
    if names:
        request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = dynamo.values(**params)
    return dynamo.query_page(limit, start_key, **request)
