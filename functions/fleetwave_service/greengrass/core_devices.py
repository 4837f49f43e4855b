"""Core devices: every robot, seen as a Greengrass core device named by its thing name
(ListCoreDevices, GetCoreDevice, ListEffectiveDeployments, ListInstalledComponents)."""

from __future__ import annotations

from fleetwave_service.core.dynamo import Row
from fleetwave_service.engine.protocol import SKIPPED_REASON, SKIPPED_STATUS_CODE, is_public_component
from fleetwave_service.fleet import in_flight
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.greengrass import store
from fleetwave_service.greengrass.common import (
    found,
    greengrass_architecture,
    iot_job_arn,
    page,
    thing_arn,
    thing_group_arn,
)
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


def _reported_components(robot: Row) -> dict[str, dict]:
    """The lifecycle states the robot's agent last reported ({} when it never did: simulated robots)."""
    states = robot.get("componentStates") or {}
    return states.get("components") or {}


def _core_device_status(robot: Row) -> str:
    # Greengrass: UNHEALTHY when a component is in error (ERRORED, BROKEN); here also the robot's application
    # and its last deployment.
    health = (robot.get("applicationHealth") or {}).get("status")
    failed = robot.get("status") in ("Failed", "NoResponse") or health in ("Restarting", "Broken")
    errored = any(
        state.get("lifecycleState") in ("ERRORED", "BROKEN") for state in _reported_components(robot).values()
    )
    return "UNHEALTHY" if failed or errored else "HEALTHY"


def _core_device(robot: Row) -> CoreDevice:
    updates = (
        robot.get("lastDeploymentTime") or robot.get("createdAt") or 0,
        (robot.get("applicationHealth") or {}).get("updatedAt") or 0,
        (robot.get("componentStates") or {}).get("updatedAt") or 0,
    )
    return CoreDevice(
        coreDeviceThingName=fleet_store.thing_name(robot),
        status=_core_device_status(robot),
        lastStatusUpdateTimestamp=max(updates),
        platform="linux",
        architecture=greengrass_architecture(robot["architecture"]) if robot.get("architecture") else None,
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
    devices = sorted(
        (_core_device(robot) for robot in in_flight.overlay(rows)), key=lambda d: d.coreDeviceThingName
    )
    if status:
        devices = [device for device in devices if device.status == status]
    scope = f"gg-core-devices|{thing_group_arn_filter}|{status}"
    chunk, token = page(devices, max_results, next_token, scope)
    return ListCoreDevicesResponse(coreDevices=chunk, nextToken=token)


def get_core_device(thing: str) -> GetCoreDeviceResponse:
    robot = _robot_for_thing(thing)
    device = _core_device(in_flight.overlay([robot])[0])
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
    """What the robot's agent last reported; for a robot that never reported component states (simulated
    robots), what its deployments imply (`_implied_components`)."""
    if not robot.get("componentStates"):
        return _implied_components(robot)
    reported = _reported_components(robot)  # {} once every component was removed: nothing is installed
    at = (robot.get("componentStates") or {}).get("updatedAt")
    return sorted(
        (
            InstalledComponent(
                componentName=name,
                componentVersion=state["componentVersion"],
                lifecycleState=state["lifecycleState"],
                lifecycleStateDetails=state.get("lifecycleStateDetails"),
                lifecycleStatusCodes=state.get("lifecycleStatusCodes") or None,
                isRoot=bool(state.get("isRoot", True)),
                lastStatusChangeTimestamp=state.get("lastStatusChangeTimestamp"),
                lastReportedTimestamp=at,
                lastInstallationSource=state.get("lastInstallationSource"),
            )
            for name, state in reported.items()
        ),
        key=lambda c: c.componentName,
    )


def _implied_components(robot: Row) -> list[InstalledComponent]:
    """Per target, the newest revision the robot runs: its last success, or a failure it kept (DO_NOTHING).

    A failed revision under ROLLBACK leaves the robot on the revision before it, so the walk goes on.
    Public ``aws.greengrass.*`` components read FINISHED with the reason they were skipped.
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
            resolved = (job.get("resolvedSources") or {}).get("components") or job.get("components") or {}
            for name, spec in resolved.items():
                skipped = is_public_component(name)
                installed.setdefault(
                    name,
                    InstalledComponent(
                        componentName=name,
                        componentVersion=spec["componentVersion"],
                        lifecycleState="FINISHED" if skipped else state,
                        lifecycleStateDetails=SKIPPED_REASON if skipped else None,
                        lifecycleStatusCodes=[SKIPPED_STATUS_CODE] if skipped else None,
                        isRoot=bool(spec.get("root", True)),
                        lastStatusChangeTimestamp=when,
                        lastReportedTimestamp=row.get("lastReportAt") or when,
                        lastInstallationSource=job["id"],
                    ),
                )
            break
    return sorted(installed.values(), key=lambda c: c.componentName)


def list_installed_components(
    thing: str, max_results: int | None, next_token: str | None, topology_filter: str | None = None
) -> ListInstalledComponentsResponse:
    """``topologyFilter`` ROOT (the default, as in AWS) lists the components deployments named; ALL adds
    the dependencies resolved for them."""
    robot = _robot_for_thing(thing)
    components = installed_components(robot)
    if (topology_filter or "ROOT") == "ROOT":
        components = [component for component in components if component.isRoot]
    scope = f"gg-installed|{thing}|{topology_filter or 'ROOT'}"
    chunk, token = page(components, max_results, next_token, scope)
    return ListInstalledComponentsResponse(installedComponents=chunk, nextToken=token)
