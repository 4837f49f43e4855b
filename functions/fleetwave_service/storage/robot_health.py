"""What robots say about themselves, kept on the robot row: ``applicationHealth`` and ``connectivity``.

Both are written with a condition on the time the robot (or the service, for a last will) stamped them,
so a report that arrives late (QoS 1 redelivery, an outbox replayed after a restart) never overwrites a
newer one; and only while the robot exists, so a report from a deleted robot does not bring its row back.
`mark_not_running` / `mark_running_again` move the robot's own status between InSync and Failed while the
application of its last deployment stops and starts running (logic/robot_messages.py).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from fleetwave_service.storage import dynamo
from fleetwave_service.storage.robots import robot_key


def _update(robot_name: str, **request: Any) -> bool:
    """One conditional UpdateItem on the robot row; False when its condition does not hold."""
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(), Key=dynamo.key(*robot_key(robot_name)), **request
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def _record(robot_name: str, attribute: str, value: dict[str, Any]) -> bool:
    return _update(
        robot_name,
        UpdateExpression="SET #attribute = :value",
        ConditionExpression=(
            "attribute_exists(pk) AND (attribute_not_exists(#attribute) OR #attribute.updatedAt < :at)"
        ),
        ExpressionAttributeNames={"#attribute": attribute},
        ExpressionAttributeValues=dynamo.values(value=value, at=value["updatedAt"]),
    )


def _set_status(robot_name: str, job_arn: str, update: str, condition: str, **values: Any) -> bool:
    return _update(
        robot_name,
        UpdateExpression=update,
        ConditionExpression=f"attribute_exists(pk) AND lastDeploymentJob = :job AND {condition}",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=dynamo.values(job=job_arn, **values),
    )


def mark_not_running(robot_name: str, job_arn: str) -> bool:
    """An InSync robot whose application of its last deployment no longer runs is Failed (remembering why)."""
    return _set_status(
        robot_name,
        job_arn,
        "SET #status = :failed, healthFailedJob = :job",
        "#status = :insync",
        failed="Failed",
        insync="InSync",
    )


def mark_running_again(robot_name: str, job_arn: str) -> bool:
    """Undo `mark_not_running` once that application runs again (never a deployment's own failure)."""
    return _set_status(
        robot_name,
        job_arn,
        "SET #status = :insync REMOVE healthFailedJob",
        "#status = :failed AND healthFailedJob = :job",
        failed="Failed",
        insync="InSync",
    )


def record_health(robot_name: str, health: dict[str, Any]) -> bool:
    """Keep the robot's application health (``updatedAt`` required); False when older than the one kept."""
    return _record(robot_name, "applicationHealth", health)


def record_connectivity(robot_name: str, connectivity: dict[str, Any]) -> bool:
    """Keep whether the robot's agent is connected (``updatedAt`` required)."""
    return _record(robot_name, "connectivity", connectivity)
