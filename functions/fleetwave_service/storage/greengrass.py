"""Greengrass V2 rows (docs/greengrass.md): deployments are engine job rows, plus target and component rows.

- deployment: ``JOB#<id>`` / ``JOB`` with ``frontDoor = "greengrass"``; listed through
  ``gsi1pk = GGDEPLOYMENTS`` (never ``JOBS``: RoboMaker's ListDeploymentJobs does not see it) and per
  target through ``gsi2pk = GGTARGETDEPLOYMENTS#<targetArn>``.
- target: ``GGTARGET#<targetArn>`` / ``TARGET``: the revision counter and the current deployment id.
- component version: ``GGCOMPONENT#<name>`` / ``VERSION#<version>``, listed through ``gsi1pk = GGCOMPONENTS``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from fleetwave_service.core import dynamo
from fleetwave_service.core.dynamo import Row
from fleetwave_service.storage.jobs import job_key

DEPLOYMENTS_PARTITION = "GGDEPLOYMENTS"
COMPONENTS_PARTITION = "GGCOMPONENTS"


def target_partition(target_arn: str) -> str:
    return f"GGTARGETDEPLOYMENTS#{target_arn}"


def target_key(target_arn: str) -> tuple[str, str]:
    return f"GGTARGET#{target_arn}", "TARGET"


def component_key(name: str, version: str) -> tuple[str, str]:
    return f"GGCOMPONENT#{name}", f"VERSION#{version}"


def _listing_key(row: Row) -> str:
    return f"{row['createdAt']:017.6f}#{row['id']}"


# --- deployments ------------------------------------------------------------------------------------


def get_deployment(deployment_id: str) -> Row | None:
    row = dynamo.get(*job_key(deployment_id))
    if row is None or dynamo.is_expired(row) or row.get("frontDoor") != "greengrass":
        return None
    return row


def put_deployment(row: Row) -> None:
    pk, sk = job_key(row["id"])
    listing = _listing_key(row)
    item = {
        **row,
        "pk": pk,
        "sk": sk,
        "gsi1pk": DEPLOYMENTS_PARTITION,
        "gsi1sk": listing,
        "gsi2pk": target_partition(row["targetArn"]),
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
        Key=dynamo.key(*target_key(target_arn)),
        UpdateExpression="SET deploymentId = :id, targetArn = :target ADD revision :one",
        ExpressionAttributeValues=dynamo.values(id=deployment_id, target=target_arn, one=1),
        ReturnValues="ALL_OLD",
    )
    old = dynamo.deserialize(response.get("Attributes") or {})
    return int(old.get("revision", 0)) + 1, old.get("deploymentId")


def current_deployment_id(target_arn: str) -> str | None:
    row = dynamo.get(*target_key(target_arn))
    return None if row is None else row.get("deploymentId")


def update_deployment(deployment_id: str, fields: dict[str, Any]) -> bool:
    """Set ``fields`` on a deployment that still exists."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    params = {f"v{i}": value for i, value in enumerate(fields.values())}
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.key(*job_key(deployment_id)),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=dynamo.values(**params),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def delete_deployment(deployment_id: str) -> None:
    dynamo.client().delete_item(TableName=dynamo.table_name(), Key=dynamo.key(*job_key(deployment_id)))


def list_deployments(target_arn: str | None) -> list[Row]:
    """Every live deployment, newest first (optionally of one target)."""
    if target_arn:
        query = {
            "IndexName": "gsi2",
            "KeyConditionExpression": "gsi2pk = :p",
            "ExpressionAttributeValues": dynamo.values(p=target_partition(target_arn)),
        }
    else:
        query = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": dynamo.values(p=DEPLOYMENTS_PARTITION),
        }
    rows = dynamo.query_all(ScanIndexForward=False, **query)
    return [row for row in rows if not dynamo.is_expired(row)]


def robot_deployment(deployment_id: str, robot_name: str) -> Row | None:
    return dynamo.get(f"JOB#{deployment_id}", f"ROBOT#{robot_name}")


def put_robot_deployment(deployment_id: str, row: Row) -> bool:
    """A robot row for a dispatch outside the waves; False when the robot already has one in this job."""
    item = {**row, "pk": f"JOB#{deployment_id}", "sk": f"ROBOT#{row['robotName']}"}
    return dynamo.put_new(item)


# --- components -------------------------------------------------------------------------------------


def put_component_version(row: Row) -> bool:
    """False when that name and version exist already."""
    pk, sk = component_key(row["componentName"], row["componentVersion"])
    item = {
        **row,
        "pk": pk,
        "sk": sk,
        "gsi1pk": COMPONENTS_PARTITION,
        "gsi1sk": f"{row['componentName']}#{row['componentVersion']}",
    }
    return dynamo.put_new(item)


def get_component_version(name: str, version: str) -> Row | None:
    return dynamo.get(*component_key(name, version))


def component_versions(name: str) -> list[Row]:
    return dynamo.query_all(
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues=dynamo.values(p=component_key(name, "")[0]),
    )


def all_component_versions() -> list[Row]:
    return dynamo.query_all(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues=dynamo.values(p=COMPONENTS_PARTITION),
    )


def delete_component_version(name: str, version: str) -> None:
    dynamo.client().delete_item(TableName=dynamo.table_name(), Key=dynamo.key(*component_key(name, version)))


def set_component_tags(name: str, version: str, tags: dict[str, str]) -> bool:
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.key(*component_key(name, version)),
            UpdateExpression="SET tags = :t",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=dynamo.values(t=tags),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True
