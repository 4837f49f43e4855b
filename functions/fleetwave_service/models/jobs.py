"""Deployment job requests and responses (seeds 000 and 001, and Describe/List/Cancel)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from fleetwave_service.core.wire import (
    Arn,
    ClientRequestToken,
    DeploymentStatus,
    DeploymentVersion,
    Filters,
    MaxResults,
    PaginationToken,
    RequestModel,
    ResponseModel,
    RobotStatus,
    S3Bucket,
    S3Etag,
    S3Key,
    TagMap,
)

DEFAULT_ROBOT_DEPLOYMENT_TIMEOUT_SECONDS = 18000  # 5 hours, the original's default
MIN_ROBOT_DEPLOYMENT_TIMEOUT_SECONDS = 60
MAX_ROBOT_DEPLOYMENT_TIMEOUT_SECONDS = 7 * 24 * 3600

Command = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[a-zA-Z0-9_.\-]*$")]
ScriptPath = Annotated[str, Field(min_length=1, max_length=1024)]
EnvironmentVariableKey = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[A-Z_][A-Z0-9_]*$")]
EnvironmentVariableValue = Annotated[str, Field(min_length=1, max_length=1024)]
Percentage = Annotated[int, Field(ge=1, le=100)]


class DeploymentLaunchConfig(RequestModel):
    packageName: Command
    launchFile: Command
    preLaunchFile: ScriptPath | None = None
    postLaunchFile: ScriptPath | None = None
    environmentVariables: (
        Annotated[dict[EnvironmentVariableKey, EnvironmentVariableValue], Field(max_length=20)] | None
    ) = None

    @field_validator("environmentVariables")
    @classmethod
    def _no_reserved_keys(cls, variables: dict[str, str] | None) -> dict[str, str] | None:
        reserved = sorted(key for key in variables or {} if key.startswith("AWS"))
        if reserved:
            raise ValueError(f"names starting with AWS are reserved: {', '.join(reserved)}")
        return variables


class DeploymentApplicationConfig(RequestModel):
    application: Arn
    # A numbered version only: $LATEST can change under a running rollout.
    applicationVersion: DeploymentVersion
    launchConfig: DeploymentLaunchConfig


class S3Object(RequestModel):
    bucket: S3Bucket
    key: S3Key
    etag: S3Etag | None = None


class DeploymentConfig(RequestModel):
    # Absent means "all robots at once" / "never stop early": the engine reads absent as 100.
    concurrentDeploymentPercentage: Percentage | None = None
    failureThresholdPercentage: Percentage | None = None
    robotDeploymentTimeoutInSeconds: (
        Annotated[
            int, Field(ge=MIN_ROBOT_DEPLOYMENT_TIMEOUT_SECONDS, le=MAX_ROBOT_DEPLOYMENT_TIMEOUT_SECONDS)
        ]
        | None
    ) = None
    downloadConditionFile: S3Object | None = None


DeploymentApplicationConfigs = Annotated[list[DeploymentApplicationConfig], Field(min_length=1, max_length=1)]


class CreateDeploymentJobRequest(RequestModel):
    clientRequestToken: ClientRequestToken
    fleet: Arn
    deploymentApplicationConfigs: DeploymentApplicationConfigs
    deploymentConfig: DeploymentConfig | None = None
    tags: TagMap | None = None


class SyncDeploymentJobRequest(RequestModel):
    clientRequestToken: ClientRequestToken
    fleet: Arn


class JobRequest(RequestModel):
    """DescribeDeploymentJob and CancelDeploymentJob: the job's ARN."""

    job: Arn


class ListDeploymentJobsRequest(RequestModel):
    filters: Filters | None = None
    nextToken: PaginationToken | None = None
    maxResults: MaxResults | None = None


class DeploymentJob(ResponseModel):
    """One job as ListDeploymentJobs shows it; SyncDeploymentJob returns exactly this."""

    arn: str
    fleet: str
    status: DeploymentStatus
    deploymentApplicationConfigs: list[DeploymentApplicationConfig]
    deploymentConfig: DeploymentConfig | None = None
    failureReason: str | None = None
    failureCode: str | None = None
    createdAt: float


class CreateDeploymentJobResponse(DeploymentJob):
    tags: dict[str, str] = Field(default_factory=dict)


class ProgressDetail(ResponseModel):
    currentProgress: str | None = None
    percentDone: float | None = None
    estimatedTimeRemainingSeconds: int | None = None
    targetResource: str | None = None


class RobotDeployment(ResponseModel):
    arn: str
    deploymentStartTime: float | None = None
    deploymentFinishTime: float | None = None
    status: RobotStatus | None = None
    progressDetail: ProgressDetail | None = None
    failureReason: str | None = None
    failureCode: str | None = None


class DescribeDeploymentJobResponse(CreateDeploymentJobResponse):
    robotDeploymentSummary: list[RobotDeployment] = Field(default_factory=list)


class ListDeploymentJobsResponse(ResponseModel):
    deploymentJobs: list[DeploymentJob]
    nextToken: str | None = None
