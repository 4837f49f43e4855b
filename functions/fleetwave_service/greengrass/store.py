"""Greengrass V2 rows (docs/greengrass.md): deployments are engine job rows, plus target and component rows.

- deployment: ``JOB#<id>`` / ``JOB`` with ``frontDoor = "greengrass"``; listed through
  ``gsi1pk = GGDEPLOYMENTS`` (never ``JOBS``: RoboMaker's ListDeploymentJobs does not see it) and per
  target through ``gsi2pk = GGTARGETDEPLOYMENTS#<targetArn>``.
- target: ``GGTARGET#<targetArn>`` / ``TARGET``: the revision counter and the current deployment id.
- component version: ``GGCOMPONENT#<name>`` / ``VERSION#<version>``, listed through ``gsi1pk = GGCOMPONENTS``.
"""

from __future__ import annotations

from typing import Any

from fleetwave_service.core import dynamo, keys
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.keys import gg_component_key, gg_target_key, job_key, robot_deployment_key

FRONT_DOOR = "greengrass"


# --- deployments ------------------------------------------------------------------------------------


def get_deployment(deployment_id: str) -> Row | None:
    row = dynamo.get(*job_key(deployment_id))
    if row is None or dynamo.is_expired(row) or row.get("frontDoor") != FRONT_DOOR:
        return None
    return row


def put_deployment(row: Row) -> None:
    listing = keys.listing_sort_key(row)
    item = {
        **row,
        **job_key(row["id"]).item(),
        "gsi1pk": keys.GG_DEPLOYMENTS,
        "gsi1sk": listing,
        "gsi2pk": keys.gg_target_deployments_partition(row["targetArn"]),
        "gsi2sk": listing,
    }
    dynamo.client().put_item(
        TableName=dynamo.table_name(),
        Item=dynamo.serialize(item),
        ConditionExpression="attribute_not_exists(pk)",
    )


def next_revision(target_arn: str, deployment_id: str) -> tuple[int, str | None]:
    """Make ``deployment_id`` the target's current deployment: (its revision, the previous deployment id)."""
    response = dynamo.client().update_item(
        TableName=dynamo.table_name(),
        Key=dynamo.key(*gg_target_key(target_arn)),
        UpdateExpression="SET deploymentId = :id, targetArn = :target ADD revision :one",
        ExpressionAttributeValues=dynamo.values(id=deployment_id, target=target_arn, one=1),
        ReturnValues="ALL_OLD",
    )
    old = dynamo.deserialize(response.get("Attributes") or {})
    return int(old.get("revision", 0)) + 1, old.get("deploymentId")


def current_deployment_id(target_arn: str) -> str | None:
    row = dynamo.get(*gg_target_key(target_arn))
    return None if row is None else row.get("deploymentId")


def update_deployment(deployment_id: str, fields: dict[str, Any]) -> bool:
    """Set ``fields`` on a deployment that still exists."""
    return dynamo.update(job_key(deployment_id), sets=fields, condition="attribute_exists(pk)")


def delete_deployment(deployment_id: str) -> None:
    dynamo.delete(job_key(deployment_id))


def list_deployments(target_arn: str | None) -> list[Row]:
    """Every live deployment, newest first (optionally of one target)."""
    if target_arn:
        index, partition = "gsi2", keys.gg_target_deployments_partition(target_arn)
    else:
        index, partition = "gsi1", keys.GG_DEPLOYMENTS
    rows = dynamo.query_all(
        IndexName=index,
        KeyConditionExpression=f"{index}pk = :p",
        ExpressionAttributeValues=dynamo.values(p=partition),
        ScanIndexForward=False,
    )
    return [row for row in rows if not dynamo.is_expired(row)]


def robot_deployment(deployment_id: str, robot_name: str) -> Row | None:
    return dynamo.get(*robot_deployment_key(deployment_id, robot_name))


def put_robot_deployment(deployment_id: str, row: Row) -> bool:
    """A robot row for a dispatch outside the waves; False when the robot already has one in this job."""
    return dynamo.put_new({**row, **robot_deployment_key(deployment_id, row["robotName"]).item()})


# --- components -------------------------------------------------------------------------------------


def put_component_version(row: Row) -> bool:
    """False when that name and version exist already."""
    key = gg_component_key(row["componentName"], row["componentVersion"])
    item = {
        **row,
        **key.item(),
        "gsi1pk": keys.GG_COMPONENTS,
        "gsi1sk": f"{row['componentName']}#{row['componentVersion']}",
    }
    return dynamo.put_new(item)


def get_component_version(name: str, version: str) -> Row | None:
    return dynamo.get(*gg_component_key(name, version))


def component_versions(name: str) -> list[Row]:
    return dynamo.query_all(
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues=dynamo.values(p=keys.gg_component_partition(name)),
    )


def all_component_versions() -> list[Row]:
    return dynamo.query_all(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues=dynamo.values(p=keys.GG_COMPONENTS),
    )


def delete_component_version(name: str, version: str) -> None:
    dynamo.delete(gg_component_key(name, version))


def set_component_tags(name: str, version: str, tags: dict[str, str]) -> bool:
    return dynamo.update(
        gg_component_key(name, version), sets={"tags": tags}, condition="attribute_exists(pk)"
    )
