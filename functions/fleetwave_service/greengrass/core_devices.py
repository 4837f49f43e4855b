"""Core devices: every robot, seen as a Greengrass core device named by its thing name
(ListCoreDevices, GetCoreDevice, ListEffectiveDeployments, ListInstalledComponents)."""

from __future__ import annotations

from fleetwave_service.core.dynamo import Row
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.greengrass import store
from fleetwave_service.greengrass.common import found, iot_job_arn, page, thing_arn, thing_group_arn
from fleetwave_service.greengrass.deployments import execution_status
from fleetwave_service.greengrass.models import (
    CoreDevice,
    EffectiveDeployment,
    EffectiveDeploymentStatusDetails,
    GetCoreDeviceResponse,
    InstalledComponent,
    ListCoreDevicesResponse,
    ListEffectiveDeploymentsResponse,
    ListInstalledComponentsResponse,
)


def _robot_for_thing(thing: str) -> Row:
    return found(fleet_store.find_by_thing_name(thing), f"Core device {thing}")


def _targets_of(robot: Row) -> list[str]:
    targets = [thing_arn(fleet_store.thing_name(robot))]
    if robot.get("fleetName"):
        fleet = fleet_store.get_fleet(robot["fleetName"])
        if fleet is not None:
            targets.append(thing_group_arn(fleet_store.thing_group_name(fleet)))
    return targets


def _effective(robot: Row) -> list[tuple[Row, Row]]:
    """(deployment, robot row) of the current deployment of each target the robot belongs to."""
    found = []
    for target in _targets_of(robot):
        deployment_id = store.current_deployment_id(target)
        job = store.get_deployment(deployment_id) if deployment_id else None
        if job is None:
            continue
        robot_row = store.robot_deployment(deployment_id, robot["name"])
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
        coreDeviceThingName=fleet_store.thing_name(robot),
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
        chunk, start = fleet_store.list_robots_page(1000, start)
        rows.extend(chunk)
        if not start:
            return rows


def list_core_devices(
    thing_group_arn_filter: str | None, status: str | None, max_results: int | None, next_token: str | None
) -> ListCoreDevicesResponse:
    if thing_group_arn_filter:
        group = thing_group_arn_filter.split(":", 5)[5].partition("/")[2]
        fleet = fleet_store.find_by_thing_group_name(group)
        rows = fleet_store.in_fleet(fleet["name"]) if fleet is not None else []
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
        for job in store.list_deployments(target):
            row = store.robot_deployment(job["id"], robot["name"])
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
