"""Greengrass V2 deployments on the rollout engine (docs/store.md).

A deployment is an engine job row with ``frontDoor = "greengrass"``; the engine's Greengrass policy
(greengrass/policy.py) turns its iotJobConfiguration and deploymentPolicies into batches, abort
criteria, a per-robot timeout and component commands. Targets are robots: ``thing/NAME`` is the robot whose
IoT thing is NAME, ``thinggroup/NAME`` the fleet whose thing group is NAME.
"""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import ConflictError, GreengrassResourceNotFoundError
from fleetwave_service.engine import starter
from fleetwave_service.engine.cancel import notify_rollout_canceled
from fleetwave_service.engine.ports import get_ports
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.greengrass import store
from fleetwave_service.greengrass.common import deployment_arn, found, iot_job_arn, page, without_none
from fleetwave_service.greengrass.idempotency import idempotent_on_client_token
from fleetwave_service.greengrass.models import (
    CancelDeploymentResponse,
    CreateDeploymentRequest,
    CreateDeploymentResponse,
    DeploymentSummary,
    GetDeploymentResponse,
    ListDeploymentsResponse,
)
from fleetwave_service.greengrass.store import FRONT_DOOR

logger = Logger(service="fleetwave", child=True)

ACTIVE_ENGINE_STATUSES = ("Pending", "Preparing", "InProgress")


# --- status vocabulary ------------------------------------------------------------------------------


def deployment_status(row: Row) -> str:
    """ACTIVE | COMPLETED | CANCELED | FAILED | INACTIVE from the engine's status and the target's history."""
    engine = row.get("status")
    if row.get("ggCanceled"):
        return "CANCELED"
    if not row.get("isLatestForTarget", True):
        return "INACTIVE"
    if engine == "Canceled":
        return "CANCELED"
    if engine == "Failed":
        return "FAILED"
    if engine == "Succeeded":
        return "COMPLETED"
    return "ACTIVE"


def execution_status(robot_row: Row, target_kind: str = "thinggroup") -> str:
    """A robot deployment row as a core device execution status (ListEffectiveDeployments).

    Success reads as Greengrass reports it: COMPLETED for a deployment to the thing itself, SUCCEEDED for
    one to a thing group.
    """
    status = robot_row.get("status")
    if status == "InSync":
        return "COMPLETED" if target_kind == "thing" else "SUCCEEDED"
    if status == "NoResponse":
        return "TIMED_OUT"
    if status == "Failed":
        if robot_row.get("notReleased") or robot_row.get("failureCode") == "RobotDeploymentAborted":
            return "CANCELED"
        return "FAILED"
    if status == "Deploying":
        # A robot dispatched outside the waves (it joined the group later) has no sweep behind it: past its
        # deadline it reads as TIMED_OUT (its late reports are rejected like any other late report).
        deadline = robot_row.get("deadline")
        if robot_row.get("continuous") and deadline is not None and float(deadline) < ids.now():
            return "TIMED_OUT"
        return "IN_PROGRESS"
    return "QUEUED"


# --- targets ----------------------------------------------------------------------------------------


def parse_target(target_arn: str) -> tuple[str, str]:
    """("thing" | "thinggroup", NAME) of a target ARN (already pattern-checked)."""
    resource = target_arn.split(":", 5)[5]
    kind, _, name = resource.partition("/")
    return kind, name


def resolve_target(target_arn: str) -> tuple[str, str, Row]:
    """(kind, name, robot or fleet row); ResourceNotFoundException when no robot/fleet answers to it."""
    kind, name = parse_target(target_arn)
    row = (
        fleet_store.find_by_thing_name(name)
        if kind == "thing"
        else fleet_store.find_by_thing_group_name(name)
    )
    if row is None:
        noun = "thing" if kind == "thing" else "thing group"
        raise GreengrassResourceNotFoundError(f"The {noun} {name} ({target_arn}) does not exist.")
    return kind, name, row


# --- deployments ------------------------------------------------------------------------------------

_DEPLOYMENT_FIELDS = (
    "targetArn",
    "deploymentName",
    "components",
    "iotJobConfiguration",
    "deploymentPolicies",
    "parentTargetArn",
    "tags",
)


@idempotent_on_client_token(CreateDeploymentResponse, _DEPLOYMENT_FIELDS)
def create_deployment(request: CreateDeploymentRequest) -> CreateDeploymentResponse:
    """The target's next revision; the previous one becomes INACTIVE and its rollout stops."""
    kind, name, target = resolve_target(request.targetArn)
    deployment_id = str(uuid.uuid4())
    now = ids.now()
    body = request.model_dump(mode="json", exclude_none=True)
    fleet_name = target["name"] if kind == "thinggroup" else target.get("fleetName")
    row: Row = {
        "id": deployment_id,
        "arn": deployment_arn(deployment_id),
        "frontDoor": FRONT_DOOR,
        "status": "Pending",
        "createdAt": now,
        "expiresAt": ids.expires_at(now),
        "targetArn": request.targetArn,
        "targetKind": kind,
        "targetName": name,
        "fleetName": fleet_name,
        "isLatestForTarget": True,
        "tags": request.tags or {},
        "clientToken": request.clientToken,
        **{field: body[field] for field in _DEPLOYMENT_FIELDS if field in body and field != "tags"},
    }
    store.put_deployment(row)
    revision, previous_id = store.next_revision(request.targetArn, deployment_id)
    store.update_deployment(deployment_id, {"revisionId": str(revision)})
    if previous_id and previous_id != deployment_id:
        _supersede(previous_id, deployment_id)
    try:
        starter.start_rollout(deployment_id)
    except Exception:
        logger.exception("rollout not started", extra={"deploymentId": deployment_id})
        get_ports().store.finish_job(
            deployment_id,
            "Failed",
            {"failureCode": "InternalServerError", "failureReason": "The rollout could not start."},
        )
    logger.info(
        "deployment created",
        extra={"deploymentId": deployment_id, "targetArn": request.targetArn, "revision": revision},
    )
    return CreateDeploymentResponse(
        deploymentId=deployment_id, iotJobId=deployment_id, iotJobArn=iot_job_arn(deployment_id)
    )


def _supersede(previous_id: str, deployment_id: str) -> None:
    """The previous revision is INACTIVE; its rollout stops without telling robots to abort (the new
    revision's command replaces theirs)."""
    store.update_deployment(previous_id, {"isLatestForTarget": False, "supersededBy": deployment_id})
    previous = store.get_deployment(previous_id)
    if previous is None or previous.get("status") not in ACTIVE_ENGINE_STATUSES:
        return
    # The wave token stays on the job for notify_rollout_canceled to claim (it wakes the waiting wave).
    if get_ports().store.update_status(
        previous_id, "Canceled", ACTIVE_ENGINE_STATUSES, {"finishedAt": ids.now()}
    ):
        notify_rollout_canceled({**previous, "status": "Canceled"})
    logger.info("deployment superseded", extra={"deploymentId": previous_id, "by": deployment_id})


def _get(deployment_id: str) -> Row:
    return found(store.get_deployment(deployment_id), f"Deployment {deployment_id}")


def get_deployment(deployment_id: str) -> GetDeploymentResponse:
    row = _get(deployment_id)
    return GetDeploymentResponse(
        targetArn=row["targetArn"],
        revisionId=str(row.get("revisionId", "1")),
        deploymentId=row["id"],
        deploymentName=row.get("deploymentName"),
        deploymentStatus=deployment_status(row),
        iotJobId=row["id"],
        iotJobArn=iot_job_arn(row["id"]),
        components=without_none(row.get("components")),
        deploymentPolicies=effective_policies(row.get("deploymentPolicies")),
        iotJobConfiguration=row.get("iotJobConfiguration") or {},
        creationTimestamp=row["createdAt"],
        isLatestForTarget=bool(row.get("isLatestForTarget", True)),
        parentTargetArn=row.get("parentTargetArn"),
        tags=row.get("tags") or {},
    )


def effective_policies(policies: dict[str, Any] | None) -> dict[str, Any]:
    """The deployment's policies with Greengrass's defaults filled in, as GetDeployment reports them."""
    policies = policies or {}
    return {
        "failureHandlingPolicy": policies.get("failureHandlingPolicy") or "ROLLBACK",
        "componentUpdatePolicy": {
            "timeoutInSeconds": 60,
            "action": "NOTIFY_COMPONENTS",
            **(policies.get("componentUpdatePolicy") or {}),
        },
        "configurationValidationPolicy": {
            "timeoutInSeconds": 30,
            **(policies.get("configurationValidationPolicy") or {}),
        },
    }


def _summary(row: Row) -> DeploymentSummary:
    return DeploymentSummary(
        targetArn=row["targetArn"],
        revisionId=str(row.get("revisionId", "1")),
        deploymentId=row["id"],
        deploymentName=row.get("deploymentName"),
        creationTimestamp=row["createdAt"],
        deploymentStatus=deployment_status(row),
        isLatestForTarget=bool(row.get("isLatestForTarget", True)),
        parentTargetArn=row.get("parentTargetArn"),
    )


def list_deployments(
    target_arn: str | None,
    history_filter: str | None,
    parent_target_arn: str | None,
    max_results: int | None,
    next_token: str | None,
) -> ListDeploymentsResponse:
    rows = store.list_deployments(target_arn)
    if (history_filter or "LATEST_ONLY") == "LATEST_ONLY":
        rows = [row for row in rows if row.get("isLatestForTarget", True)]
    if parent_target_arn:
        rows = [row for row in rows if row.get("parentTargetArn") == parent_target_arn]
    scope = f"gg-deployments|{target_arn}|{history_filter}|{parent_target_arn}"
    chunk, token = page(rows, max_results, next_token, scope)
    return ListDeploymentsResponse(deployments=[_summary(row) for row in chunk], nextToken=token)


def cancel_deployment(deployment_id: str) -> CancelDeploymentResponse:
    row = _get(deployment_id)
    status = deployment_status(row)
    if status == "CANCELED":
        return CancelDeploymentResponse(message=f"Deployment {deployment_id} is canceled.")
    if status not in ("ACTIVE", "COMPLETED"):
        raise ConflictError(f"Deployment {deployment_id} is {status} and cannot be canceled.")
    store.update_deployment(deployment_id, {"ggCanceled": True, "canceledAt": ids.now()})
    if row.get("status") in ACTIVE_ENGINE_STATUSES and get_ports().store.update_status(
        deployment_id, "Canceled", ACTIVE_ENGINE_STATUSES, {"finishedAt": ids.now()}
    ):
        notify_rollout_canceled({**row, "status": "Canceled"})
    logger.info("deployment canceled", extra={"deploymentId": deployment_id, "was": status})
    return CancelDeploymentResponse(message=f"Deployment {deployment_id} is canceled.")


def delete_deployment(deployment_id: str) -> None:
    row = _get(deployment_id)
    status = deployment_status(row)
    if status not in ("CANCELED", "COMPLETED"):
        raise ConflictError(
            f"Deployment {deployment_id} is {status}; only a canceled or completed deployment can be deleted."
        )
    store.delete_deployment(deployment_id)
    logger.info("deployment deleted", extra={"deploymentId": deployment_id})
