"""Greengrass V2 deployments on the rollout engine (docs/greengrass.md).

A deployment is an engine job row with ``frontDoor = "greengrass"``; the engine's Greengrass policy
(logic/rollout_policies.py) turns its iotJobConfiguration and deploymentPolicies into batches, abort
criteria, a per-robot timeout and component commands. Targets are robots: ``thing/NAME`` is the robot whose
IoT thing is NAME, ``thinggroup/NAME`` the fleet whose thing group is NAME.
"""

from __future__ import annotations

import contextvars
import functools
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

from fleetwave_service import ids
from fleetwave_service.errors import (
    ConflictError,
    GreengrassResourceNotFoundError,
    RequestAlreadyInProgressError,
)
from fleetwave_service.logic import rollout_starter
from fleetwave_service.logic.greengrass_common import (
    deployment_arn,
    iot_job_arn,
    page,
    thing_arn,
    thing_group_arn,
    without_none,
)
from fleetwave_service.logic.rollout_cancel import notify_rollout_canceled
from fleetwave_service.logic.rollout_ports import get_ports
from fleetwave_service.models.greengrass import (
    CancelDeploymentResponse,
    CoreDevice,
    CreateDeploymentRequest,
    CreateDeploymentResponse,
    DeploymentSummary,
    EffectiveDeployment,
    EffectiveDeploymentStatusDetails,
    GetCoreDeviceResponse,
    GetDeploymentResponse,
    InstalledComponent,
    ListCoreDevicesResponse,
    ListDeploymentsResponse,
    ListEffectiveDeploymentsResponse,
    ListInstalledComponentsResponse,
)
from fleetwave_service.settings import get_settings
from fleetwave_service.storage import fleets, greengrass, jobs, robots
from fleetwave_service.storage.dynamo import Row

logger = Logger(service="fleetwave", child=True)

FRONT_DOOR = "greengrass"
IDEMPOTENCY_SECONDS = 8 * 3600
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
    row = robots.find_by_thing_name(name) if kind == "thing" else fleets.find_by_thing_group_name(name)
    if row is None:
        noun = "thing" if kind == "thing" else "thing group"
        raise GreengrassResourceNotFoundError(f"The {noun} {name} ({target_arn}) does not exist.")
    return kind, name, row


# --- idempotency ------------------------------------------------------------------------------------

# The invocation's Lambda context, so an in-progress idempotency record expires with the invocation
# (a crashed request does not block its client token for 8 hours).
_lambda_context: contextvars.ContextVar[Any] = contextvars.ContextVar("lambda_context", default=None)


def use_lambda_context(context: Any) -> None:
    _lambda_context.set(context)


def _persistence() -> DynamoDBPersistenceLayer:
    from fleetwave_service.storage import dynamo

    # Built per call on the service's own lazily created client, so moto (tests, serve) is up before it.
    return DynamoDBPersistenceLayer(
        table_name=get_settings().idempotency_table_name,
        boto3_client=dynamo.client(),
        static_pk_value="idempotency#fleetwave-greengrass",
    )


def idempotent_on_client_token(
    response_model: type, validated: tuple[str, ...]
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Powertools idempotency keyed by the request's clientToken (requests without one always run).

    The same token with the same request returns the first successful response for 8 hours; with a
    different request it is a ConflictException; while the first request still runs it is a
    RequestAlreadyInProgressException.
    """

    def decorate(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(function)
        def wrapper(request: Any) -> Any:
            if not getattr(request, "clientToken", None):
                return function(request)
            config = IdempotencyConfig(
                event_key_jmespath="clientToken",
                payload_validation_jmespath="[" + ", ".join(validated) + "]",
                expires_after_seconds=IDEMPOTENCY_SECONDS,
                raise_on_no_idempotency_key=True,
            )
            context = _lambda_context.get()
            if context is not None and hasattr(context, "get_remaining_time_in_millis"):
                config.register_lambda_context(context)

            @idempotent_function(
                data_keyword_argument="payload",
                persistence_store=_persistence(),
                config=config,
                output_serializer=PydanticSerializer(response_model),
            )
            def run(payload: dict[str, Any]) -> Any:
                return function(request)

            try:
                return run(payload=request.model_dump(mode="json", exclude_none=True))
            except IdempotencyAlreadyInProgressError as error:
                raise RequestAlreadyInProgressError(
                    f"clientToken: a request with token {request.clientToken} is still in progress."
                ) from error
            except IdempotencyValidationError as error:
                raise ConflictError(
                    f"clientToken: token {request.clientToken} was used for a different request."
                ) from error

        return wrapper

    return decorate


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
    greengrass.put_deployment(row)
    revision, previous_id = greengrass.next_revision(request.targetArn, deployment_id)
    greengrass.update_deployment(deployment_id, {"revisionId": str(revision)})
    if previous_id and previous_id != deployment_id:
        _supersede(previous_id, deployment_id)
    try:
        rollout_starter.start_rollout(deployment_id)
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
    greengrass.update_deployment(previous_id, {"isLatestForTarget": False, "supersededBy": deployment_id})
    previous = greengrass.get_deployment(previous_id)
    if previous is None or previous.get("status") not in ACTIVE_ENGINE_STATUSES:
        return
    # The wave token stays on the job for notify_rollout_canceled to claim (it wakes the waiting wave).
    if jobs.update_status(previous_id, "Canceled", ACTIVE_ENGINE_STATUSES, finishedAt=ids.now()):
        notify_rollout_canceled({**previous, "status": "Canceled"})
    logger.info("deployment superseded", extra={"deploymentId": previous_id, "by": deployment_id})


def _get(deployment_id: str) -> Row:
    row = greengrass.get_deployment(deployment_id)
    if row is None:
        raise GreengrassResourceNotFoundError(f"Deployment {deployment_id} does not exist.")
    return row


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
    rows = greengrass.list_deployments(target_arn)
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
    greengrass.update_deployment(deployment_id, {"ggCanceled": True, "canceledAt": ids.now()})
    if row.get("status") in ACTIVE_ENGINE_STATUSES and jobs.update_status(
        deployment_id, "Canceled", ACTIVE_ENGINE_STATUSES, finishedAt=ids.now()
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
    greengrass.delete_deployment(deployment_id)
    logger.info("deployment deleted", extra={"deploymentId": deployment_id})


# --- continuous deployment --------------------------------------------------------------------------


def dispatch_to_new_member(robot: Row, fleet: Row) -> bool:
    """A robot just joined ``fleet``: it receives the fleet's thing group's current deployment, if any.

    The dispatch is outside the waves (wave 0) and recorded as the robot's row in that deployment, so
    ListEffectiveDeployments shows it. True when a command went out.
    """
    target = thing_group_arn(fleets.thing_group_name(fleet))
    deployment_id = greengrass.current_deployment_id(target)
    if not deployment_id:
        return False
    job = greengrass.get_deployment(deployment_id)
    # Before prepare ran, the rollout's own snapshot of the fleet includes the robot.
    if (
        job is None
        or deployment_status(job) not in ("ACTIVE", "COMPLETED")
        or job.get("status")
        in (
            "Pending",
            "Preparing",
        )
    ):
        return False
    from fleetwave_service.logic.rollout_policies import greengrass_command, greengrass_timeout

    settings = get_settings()
    timeout = greengrass_timeout(job, settings.time_scale)
    now = ids.now()
    deadline = now + timeout
    if not greengrass.put_robot_deployment(
        deployment_id,
        {
            "robotName": robot["name"],
            "arn": robot["arn"],
            "architecture": robot.get("architecture"),
            "wave": 0,
            "status": "Deploying",
            "attempt": 1,
            "seq": -1,
            "deploymentStartTime": now,
            "deadline": deadline,
            "continuous": True,
            "expiresAt": job["expiresAt"],
            "progressDetail": {"percentDone": 0.0},
        },
    ):
        return False
    command = greengrass_command(job, 1, now, deadline, timeout)
    failures = get_ports().channel.publish_commands([(robot["name"], command)])
    logger.info(
        "continuous deployment dispatched",
        extra={"deploymentId": deployment_id, "robot": robot["name"], "undelivered": len(failures)},
    )
    return not failures


# --- core devices -----------------------------------------------------------------------------------


def _robot_for_thing(thing: str) -> Row:
    robot = robots.find_by_thing_name(thing)
    if robot is None:
        raise GreengrassResourceNotFoundError(f"Core device {thing} does not exist.")
    return robot


def _targets_of(robot: Row) -> list[str]:
    targets = [thing_arn(robots.thing_name(robot))]
    if robot.get("fleetName"):
        fleet = fleets.get(robot["fleetName"])
        if fleet is not None:
            targets.append(thing_group_arn(fleets.thing_group_name(fleet)))
    return targets


def _effective(robot: Row) -> list[tuple[Row, Row]]:
    """(deployment, robot row) of the current deployment of each target the robot belongs to."""
    found = []
    for target in _targets_of(robot):
        deployment_id = greengrass.current_deployment_id(target)
        job = greengrass.get_deployment(deployment_id) if deployment_id else None
        if job is None:
            continue
        robot_row = greengrass.robot_deployment(deployment_id, robot["name"])
        if robot_row is not None:
            found.append((job, robot_row))
    return found


def _status_details(robot_row: Row) -> EffectiveDeploymentStatusDetails | None:
    """The robot's failure code, then each component that did not succeed with its result."""
    if not robot_row.get("failureCode"):
        return None
    stack = [robot_row["failureCode"]]
    for name, result in sorted((robot_row.get("componentResults") or {}).items()):
        if result.get("status") != "SUCCEEDED":
            stack.append(f"{name}: {result.get('status')}")
    return EffectiveDeploymentStatusDetails(errorStack=stack, errorTypes=["DEPLOYMENT_FAILURE"])


def list_effective_deployments(
    thing: str, max_results: int | None, next_token: str | None
) -> ListEffectiveDeploymentsResponse:
    robot = _robot_for_thing(thing)
    items = []
    for job, robot_row in _effective(robot):
        status = execution_status(robot_row, job.get("targetKind", "thinggroup"))
        reason = robot_row.get("failureReason")
        modified = (
            robot_row.get("deploymentFinishTime")
            or robot_row.get("lastReportAt")
            or robot_row.get("deploymentStartTime")
            or job["createdAt"]
        )
        items.append(
            EffectiveDeployment(
                deploymentId=job["id"],
                deploymentName=job.get("deploymentName") or job["id"],
                iotJobId=job["id"],
                iotJobArn=iot_job_arn(job["id"]),
                targetArn=job["targetArn"],
                coreDeviceExecutionStatus=status,
                reason=reason,
                description=reason,
                creationTimestamp=job["createdAt"],
                modifiedTimestamp=modified,
                statusDetails=_status_details(robot_row),
            )
        )
    chunk, token = page(items, max_results, next_token, f"gg-effective|{thing}")
    return ListEffectiveDeploymentsResponse(effectiveDeployments=chunk, nextToken=token)


_ARCHITECTURES = {"X86_64": "amd64", "ARM64": "aarch64", "ARMHF": "arm"}


def _core_device_status(robot: Row) -> str:
    # Greengrass: UNHEALTHY when a component is in error (ERRORED, BROKEN); here, the robot's application.
    health = (robot.get("applicationHealth") or {}).get("status")
    failed = robot.get("status") in ("Failed", "NoResponse") or health in ("Restarting", "Broken")
    return "UNHEALTHY" if failed else "HEALTHY"


def _core_device(robot: Row) -> CoreDevice:
    updates = (
        robot.get("lastDeploymentTime") or robot.get("createdAt") or 0,
        (robot.get("applicationHealth") or {}).get("updatedAt") or 0,
    )
    return CoreDevice(
        coreDeviceThingName=robots.thing_name(robot),
        status=_core_device_status(robot),
        lastStatusUpdateTimestamp=max(updates),
        platform="linux",
        architecture=_ARCHITECTURES.get(robot.get("architecture") or "", robot.get("architecture")),
        runtime="fleetwave_agent",
    )


def _all_robots() -> list[Row]:
    rows: list[Row] = []
    start = None
    while True:
        chunk, start = robots.list_page(1000, start)
        rows.extend(chunk)
        if not start:
            return rows


def list_core_devices(
    thing_group_arn_filter: str | None, status: str | None, max_results: int | None, next_token: str | None
) -> ListCoreDevicesResponse:
    if thing_group_arn_filter:
        group = thing_group_arn_filter.split(":", 5)[5].partition("/")[2]
        fleet = fleets.find_by_thing_group_name(group)
        rows = robots.in_fleet(fleet["name"]) if fleet is not None else []
    else:
        rows = _all_robots()
    devices = sorted((_core_device(robot) for robot in rows), key=lambda d: d.coreDeviceThingName)
    if status:
        devices = [device for device in devices if device.status == status]
    scope = f"gg-core-devices|{thing_group_arn_filter}|{status}"
    chunk, token = page(devices, max_results, next_token, scope)
    return ListCoreDevicesResponse(coreDevices=chunk, nextToken=token)


def get_core_device(thing: str) -> GetCoreDeviceResponse:
    robot = _robot_for_thing(thing)
    device = _core_device(robot)
    return GetCoreDeviceResponse(
        coreDeviceThingName=device.coreDeviceThingName,
        coreVersion="fleetwave",
        platform=device.platform,
        architecture=device.architecture,
        runtime=device.runtime,
        status=device.status,
        lastStatusUpdateTimestamp=device.lastStatusUpdateTimestamp,
        tags=robot.get("tags") or {},
    )


def installed_components(robot: Row) -> list[InstalledComponent]:
    """Per target, the newest revision the robot runs: its last success, or a failure it kept (DO_NOTHING).

    A failed revision under ROLLBACK leaves the robot on the revision before it, so the walk goes on.
    """
    installed: dict[str, InstalledComponent] = {}
    for target in _targets_of(robot):
        for job in greengrass.list_deployments(target):
            row = greengrass.robot_deployment(job["id"], robot["name"])
            if row is None:
                continue
            status = row.get("status")
            policy = (job.get("deploymentPolicies") or {}).get("failureHandlingPolicy") or "ROLLBACK"
            if status == "InSync":
                state = "RUNNING"
            elif status in ("Failed", "NoResponse") and policy == "DO_NOTHING" and not row.get("notReleased"):
                state = "BROKEN"
            else:
                continue
            when = row.get("deploymentFinishTime") or job["createdAt"]
            for name, spec in (job.get("components") or {}).items():
                installed.setdefault(
                    name,
                    InstalledComponent(
                        componentName=name,
                        componentVersion=spec["componentVersion"],
                        lifecycleState=state,
                        isRoot=True,
                        lastStatusChangeTimestamp=when,
                        lastReportedTimestamp=row.get("lastReportAt") or when,
                        lastInstallationSource=target,
                    ),
                )
            break
    return sorted(installed.values(), key=lambda c: c.componentName)


def list_installed_components(
    thing: str, max_results: int | None, next_token: str | None
) -> ListInstalledComponentsResponse:
    robot = _robot_for_thing(thing)
    chunk, token = page(installed_components(robot), max_results, next_token, f"gg-installed|{thing}")
    return ListInstalledComponentsResponse(installedComponents=chunk, nextToken=token)
