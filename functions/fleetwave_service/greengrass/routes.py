"""The Greengrass V2 front door: botocore ``greengrassv2`` paths under ``/greengrass/v2/`` (a Router the API
handler includes). Path parameters arrive percent-encoded (botocore encodes ':' in ARNs and thing names)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from fleetwave_service.core.errors import ValidationError
from fleetwave_service.greengrass import components, core_devices, deployments
from fleetwave_service.greengrass.models import (
    CancelDeploymentResponse,
    CreateComponentVersionRequest,
    CreateDeploymentRequest,
    DefaultMaxResults,
    DescribeComponentResponse,
    GetCoreDeviceResponse,
    GetDeploymentResponse,
    ListComponentsResponse,
    ListComponentVersionsResponse,
    ListCoreDevicesResponse,
    ListDeploymentsResponse,
    ListEffectiveDeploymentsResponse,
    ListInstalledComponentsResponse,
    TargetArn,
    ThingGroupArn,
)

router = APIGatewayRouter()

PREFIX = "/greengrass/v2"


def _created(body: object) -> Response:
    return Response(status_code=201, content_type="application/json", body=body)


def _no_content() -> Response:
    return Response(status_code=204, content_type="application/json", body="")


def _thing(raw: str) -> str:
    thing = unquote(raw)
    if not 1 <= len(thing) <= 128:
        raise ValidationError("coreDeviceThingName: must be 1-128 characters")
    return thing


# --- deployments ------------------------------------------------------------------------------------


@router.post(f"{PREFIX}/deployments")
def create_deployment(body: CreateDeploymentRequest):
    return _created(deployments.create_deployment(body).model_dump(mode="json", exclude_none=True))


@router.get(f"{PREFIX}/deployments")
def list_deployments(
    targetArn: Annotated[TargetArn | None, Query()] = None,  # noqa: N803 - wire names
    historyFilter: Annotated[Literal["ALL", "LATEST_ONLY"] | None, Query()] = None,  # noqa: N803
    parentTargetArn: Annotated[ThingGroupArn | None, Query()] = None,  # noqa: N803
    maxResults: Annotated[DefaultMaxResults | None, Query()] = None,  # noqa: N803
    nextToken: Annotated[str | None, Query()] = None,  # noqa: N803
) -> ListDeploymentsResponse:
    return deployments.list_deployments(targetArn, historyFilter, parentTargetArn, maxResults, nextToken)


@router.get(f"{PREFIX}/deployments/<deploymentId>")
def get_deployment(deploymentId: str) -> GetDeploymentResponse:  # noqa: N803
    return deployments.get_deployment(unquote(deploymentId))


@router.post(f"{PREFIX}/deployments/<deploymentId>/cancel")
def cancel_deployment(deploymentId: str) -> CancelDeploymentResponse:  # noqa: N803
    return deployments.cancel_deployment(unquote(deploymentId))


@router.delete(f"{PREFIX}/deployments/<deploymentId>")
def delete_deployment(deploymentId: str):  # noqa: N803
    deployments.delete_deployment(unquote(deploymentId))
    return _no_content()


# --- core devices -----------------------------------------------------------------------------------


@router.get(f"{PREFIX}/coreDevices")
def list_core_devices(
    thingGroupArn: Annotated[ThingGroupArn | None, Query()] = None,  # noqa: N803
    status: Annotated[Literal["HEALTHY", "UNHEALTHY"] | None, Query()] = None,
    maxResults: Annotated[DefaultMaxResults | None, Query()] = None,  # noqa: N803
    nextToken: Annotated[str | None, Query()] = None,  # noqa: N803
    runtime: Annotated[str | None, Query()] = None,
) -> ListCoreDevicesResponse:
    return core_devices.list_core_devices(thingGroupArn, status, maxResults, nextToken)


@router.get(f"{PREFIX}/coreDevices/<coreDeviceThingName>")
def get_core_device(coreDeviceThingName: str) -> GetCoreDeviceResponse:  # noqa: N803
    return core_devices.get_core_device(_thing(coreDeviceThingName))


@router.get(f"{PREFIX}/coreDevices/<coreDeviceThingName>/effectiveDeployments")
def list_effective_deployments(
    coreDeviceThingName: str,  # noqa: N803
    maxResults: Annotated[DefaultMaxResults | None, Query()] = None,  # noqa: N803
    nextToken: Annotated[str | None, Query()] = None,  # noqa: N803
) -> ListEffectiveDeploymentsResponse:
    return core_devices.list_effective_deployments(_thing(coreDeviceThingName), maxResults, nextToken)


@router.get(f"{PREFIX}/coreDevices/<coreDeviceThingName>/installedComponents")
def list_installed_components(
    coreDeviceThingName: str,  # noqa: N803
    maxResults: Annotated[DefaultMaxResults | None, Query()] = None,  # noqa: N803
    nextToken: Annotated[str | None, Query()] = None,  # noqa: N803
    topologyFilter: Annotated[Literal["ALL", "ROOT"] | None, Query()] = None,  # noqa: N803
) -> ListInstalledComponentsResponse:
    return core_devices.list_installed_components(
        _thing(coreDeviceThingName), maxResults, nextToken, topologyFilter
    )


# --- components -------------------------------------------------------------------------------------


@router.post(f"{PREFIX}/createComponentVersion")
def create_component_version(body: CreateComponentVersionRequest):
    response = components.create_component_version(body)
    return _created(response.model_dump(mode="json", exclude_none=True))


@router.get(f"{PREFIX}/components")
def list_components(
    scope: Annotated[Literal["PRIVATE", "PUBLIC"] | None, Query()] = None,
    maxResults: Annotated[DefaultMaxResults | None, Query()] = None,  # noqa: N803
    nextToken: Annotated[str | None, Query()] = None,  # noqa: N803
) -> ListComponentsResponse:
    return components.list_components(scope, maxResults, nextToken)


@router.get(f"{PREFIX}/components/<arn>/metadata")
def describe_component(arn: str) -> DescribeComponentResponse:
    return components.describe_component(unquote(arn))


@router.get(f"{PREFIX}/components/<arn>/versions")
def list_component_versions(
    arn: str,
    maxResults: Annotated[DefaultMaxResults | None, Query()] = None,  # noqa: N803
    nextToken: Annotated[str | None, Query()] = None,  # noqa: N803
) -> ListComponentVersionsResponse:
    return components.list_component_versions(unquote(arn), maxResults, nextToken)


@router.get(f"{PREFIX}/components/<arn>")
def get_component(
    arn: str,
    recipeOutputFormat: Annotated[Literal["JSON", "YAML"] | None, Query()] = None,  # noqa: N803
) -> dict:
    return components.get_component(unquote(arn), recipeOutputFormat)


@router.delete(f"{PREFIX}/components/<arn>")
def delete_component(arn: str):
    components.delete_component(unquote(arn))
    return _no_content()
