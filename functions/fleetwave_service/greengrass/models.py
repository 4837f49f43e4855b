"""Greengrass V2 wire shapes (seed 002, reference/greengrass-v2.md, botocore's greengrassv2 model).

Constraints are the model's; patterns are anchored because pydantic matches a ``pattern`` anywhere.
Requests ignore unknown members (newer clients keep working); responses omit absent members.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from fleetwave_service.core.wire import RequestModel, ResponseModel

TargetArn = Annotated[
    str, Field(max_length=2048, pattern=r"^arn:[^:]*:iot:[^:]*:[0-9]+:(thing|thinggroup)/.+$")
]
ThingGroupArn = Annotated[str, Field(max_length=2048, pattern=r"^arn:[^:]*:iot:[^:]*:[0-9]+:thinggroup/.+$")]
ClientToken = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9-]+$")]
NonEmpty = Annotated[str, Field(min_length=1)]
ComponentVersion = Annotated[str, Field(min_length=1, max_length=64)]
GgTagKey = Annotated[str, Field(min_length=1, max_length=128)]
GgTagValue = Annotated[str, Field(max_length=256)]
GgTagMap = Annotated[dict[GgTagKey, GgTagValue], Field(min_length=1, max_length=200)]
MAX_GG_TAGS = 200
DefaultMaxResults = Annotated[int, Field(ge=1, le=100)]
# Bounds for request lists and maps the contract leaves open (docs/reliability.md): every one is bounded
# before it reaches storage.
ComponentName = Annotated[str, Field(min_length=1, max_length=128)]
MAX_COMPONENTS_PER_DEPLOYMENT = 100
MAX_RESET_PATHS = 256
MAX_ABORT_CRITERIA = 10

DeploymentStatus = Literal["ACTIVE", "COMPLETED", "CANCELED", "FAILED", "INACTIVE"]
ExecutionStatus = Literal[
    "IN_PROGRESS", "QUEUED", "FAILED", "COMPLETED", "TIMED_OUT", "CANCELED", "REJECTED", "SUCCEEDED"
]


# --- CreateDeployment -------------------------------------------------------------------------------


class SystemResourceLimits(RequestModel):
    memory: Annotated[int, Field(ge=0, le=9223372036854771712)] | None = None
    cpus: Annotated[float, Field(ge=0, le=1024)] | None = None


class ComponentRunWith(RequestModel):
    posixUser: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    systemResourceLimits: SystemResourceLimits | None = None
    windowsUser: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class ComponentConfigurationUpdate(RequestModel):
    merge: Annotated[str, Field(min_length=1, max_length=10_485_760)] | None = None
    reset: (
        Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=MAX_RESET_PATHS)] | None
    ) = None


class ComponentDeploymentSpecification(RequestModel):
    componentVersion: ComponentVersion
    configurationUpdate: ComponentConfigurationUpdate | None = None
    runWith: ComponentRunWith | None = None


class RateIncreaseCriteria(RequestModel):
    numberOfNotifiedThings: Annotated[int, Field(ge=1)] | None = None
    numberOfSucceededThings: Annotated[int, Field(ge=1)] | None = None


class ExponentialRate(RequestModel):
    baseRatePerMinute: Annotated[int, Field(ge=1, le=1000)]
    incrementFactor: Annotated[float, Field(ge=1, le=5)]
    rateIncreaseCriteria: RateIncreaseCriteria


class RolloutConfig(RequestModel):
    exponentialRate: ExponentialRate | None = None
    maximumPerMinute: Annotated[int, Field(ge=1, le=1000)] | None = None


class AbortCriteria(RequestModel):
    failureType: Literal["FAILED", "REJECTED", "TIMED_OUT", "ALL"]
    action: Literal["CANCEL"]
    thresholdPercentage: Annotated[float, Field(ge=0, le=100)]
    minNumberOfExecutedThings: Annotated[int, Field(ge=1)]


class AbortConfig(RequestModel):
    criteriaList: Annotated[list[AbortCriteria], Field(min_length=1, max_length=MAX_ABORT_CRITERIA)]


class TimeoutConfig(RequestModel):
    inProgressTimeoutInMinutes: Annotated[int, Field(ge=1, le=10080)] | None = None


class IotJobConfiguration(RequestModel):
    jobExecutionsRolloutConfig: RolloutConfig | None = None
    abortConfig: AbortConfig | None = None
    timeoutConfig: TimeoutConfig | None = None


class ComponentUpdatePolicy(RequestModel):
    timeoutInSeconds: Annotated[int, Field(ge=0, le=2_147_483_647)] | None = None
    action: Literal["NOTIFY_COMPONENTS", "SKIP_NOTIFY_COMPONENTS"] | None = None


class ConfigurationValidationPolicy(RequestModel):
    timeoutInSeconds: Annotated[int, Field(ge=0, le=2_147_483_647)] | None = None


class DeploymentPolicies(RequestModel):
    failureHandlingPolicy: Literal["ROLLBACK", "DO_NOTHING"] | None = None
    componentUpdatePolicy: ComponentUpdatePolicy | None = None
    configurationValidationPolicy: ConfigurationValidationPolicy | None = None


class CreateDeploymentRequest(RequestModel):
    targetArn: TargetArn
    deploymentName: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    components: (
        Annotated[
            dict[ComponentName, ComponentDeploymentSpecification],
            Field(max_length=MAX_COMPONENTS_PER_DEPLOYMENT),
        ]
        | None
    ) = None
    iotJobConfiguration: IotJobConfiguration | None = None
    deploymentPolicies: DeploymentPolicies | None = None
    parentTargetArn: ThingGroupArn | None = None
    tags: GgTagMap | None = None
    clientToken: ClientToken | None = None


class CreateDeploymentResponse(ResponseModel):
    deploymentId: str
    iotJobId: str | None = None
    iotJobArn: str | None = None


class GetDeploymentResponse(ResponseModel):
    targetArn: str
    revisionId: str
    deploymentId: str
    deploymentName: str | None = None
    deploymentStatus: DeploymentStatus
    iotJobId: str | None = None
    iotJobArn: str | None = None
    components: dict[str, Any] | None = None
    deploymentPolicies: dict[str, Any] | None = None
    iotJobConfiguration: dict[str, Any] | None = None
    creationTimestamp: float
    isLatestForTarget: bool
    parentTargetArn: str | None = None
    tags: dict[str, str] | None = None


class DeploymentSummary(ResponseModel):
    targetArn: str
    revisionId: str
    deploymentId: str
    deploymentName: str | None = None
    creationTimestamp: float
    deploymentStatus: DeploymentStatus
    isLatestForTarget: bool
    parentTargetArn: str | None = None


class ListDeploymentsResponse(ResponseModel):
    deployments: list[DeploymentSummary]
    nextToken: str | None = None


class CancelDeploymentResponse(ResponseModel):
    message: str


class EffectiveDeploymentStatusDetails(ResponseModel):
    errorStack: list[str] | None = None
    errorTypes: list[str] | None = None


class EffectiveDeployment(ResponseModel):
    deploymentId: str
    deploymentName: str
    iotJobId: str | None = None
    iotJobArn: str | None = None
    description: str | None = None
    targetArn: str
    coreDeviceExecutionStatus: ExecutionStatus
    reason: str | None = None
    creationTimestamp: float
    modifiedTimestamp: float
    statusDetails: EffectiveDeploymentStatusDetails | None = None


class ListEffectiveDeploymentsResponse(ResponseModel):
    effectiveDeployments: list[EffectiveDeployment]
    nextToken: str | None = None


# --- components -------------------------------------------------------------------------------------


class CreateComponentVersionRequest(RequestModel):
    # A blob: botocore sends it base64-encoded in the JSON body.
    inlineRecipe: Annotated[str, Field(min_length=1)] | None = None
    lambdaFunction: dict[str, Any] | None = None
    tags: GgTagMap | None = None
    clientToken: ClientToken | None = None


class CloudComponentStatus(ResponseModel):
    componentState: Literal["REQUESTED", "INITIATED", "DEPLOYABLE", "FAILED", "DEPRECATED"]
    message: str | None = None
    errors: dict[str, str] | None = None


class CreateComponentVersionResponse(ResponseModel):
    arn: str
    componentName: str
    componentVersion: str
    creationTimestamp: float
    status: CloudComponentStatus


class DescribeComponentResponse(ResponseModel):
    arn: str
    componentName: str
    componentVersion: str
    creationTimestamp: float
    publisher: str | None = None
    description: str | None = None
    status: CloudComponentStatus
    platforms: list[dict[str, Any]] | None = None
    tags: dict[str, str] | None = None


class ComponentLatestVersion(ResponseModel):
    arn: str
    componentVersion: str
    creationTimestamp: float
    description: str | None = None
    publisher: str | None = None
    platforms: list[dict[str, Any]] | None = None


class ComponentSummary(ResponseModel):
    arn: str
    componentName: str
    latestVersion: ComponentLatestVersion


class ListComponentsResponse(ResponseModel):
    components: list[ComponentSummary]
    nextToken: str | None = None


class ComponentVersionListItem(ResponseModel):
    componentName: str
    componentVersion: str
    arn: str


class ListComponentVersionsResponse(ResponseModel):
    componentVersions: list[ComponentVersionListItem]
    nextToken: str | None = None


# --- core devices -----------------------------------------------------------------------------------

CoreDeviceStatus = Literal["HEALTHY", "UNHEALTHY"]


class CoreDevice(ResponseModel):
    coreDeviceThingName: str
    status: CoreDeviceStatus
    lastStatusUpdateTimestamp: float
    platform: str | None = None
    architecture: str | None = None
    runtime: str | None = None


class ListCoreDevicesResponse(ResponseModel):
    coreDevices: list[CoreDevice]
    nextToken: str | None = None


class GetCoreDeviceResponse(ResponseModel):
    coreDeviceThingName: str
    coreVersion: str | None = None
    platform: str | None = None
    architecture: str | None = None
    runtime: str | None = None
    status: CoreDeviceStatus
    lastStatusUpdateTimestamp: float
    tags: dict[str, str] | None = None


class InstalledComponent(ResponseModel):
    componentName: str
    componentVersion: str
    lifecycleState: Literal[
        "NEW", "INSTALLED", "STARTING", "RUNNING", "STOPPING", "ERRORED", "BROKEN", "FINISHED"
    ]
    lifecycleStateDetails: str | None = None
    lifecycleStatusCodes: list[str] | None = None
    isRoot: bool = True
    lastStatusChangeTimestamp: float | None = None
    lastReportedTimestamp: float | None = None
    lastInstallationSource: str | None = None


class ListInstalledComponentsResponse(ResponseModel):
    installedComponents: list[InstalledComponent]
    nextToken: str | None = None
