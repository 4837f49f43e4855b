"""RoboMaker requests and responses: robot applications (Create, CreateVersion, Update, Describe, List,
Delete), deployment jobs (seeds 000 and 001, and Describe/List/Cancel) and tags (TagResource, UntagResource,
ListTagsForResource)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from fleetwave_service.core.wire import (
    Architecture,
    Arn,
    ClientRequestToken,
    DeploymentStatus,
    DeploymentVersion,
    Filters,
    MaxResults,
    Name,
    PaginationToken,
    RequestModel,
    ResponseModel,
    RevisionId,
    RobotStatus,
    S3Bucket,
    S3Etag,
    S3Key,
    TagMap,
    Timestamp,
    Version,
)

# --- robot applications ------------------------------------------------------------------------------
RobotSoftwareSuiteType = Literal["ROS", "ROS2", "General"]
RobotSoftwareSuiteVersionType = Literal["Kinetic", "Melodic", "Dashing", "Foxy"]


class RobotSoftwareSuite(RequestModel):
    name: RobotSoftwareSuiteType
    # "General" applications have no ROS distribution.
    version: RobotSoftwareSuiteVersionType | None = None


class SourceConfig(RequestModel):
    s3Bucket: S3Bucket
    s3Key: S3Key
    architecture: Architecture


def _one_source_per_architecture(sources: list[SourceConfig] | None) -> list[SourceConfig] | None:
    # Dispatch picks a robot's bundle by its architecture, so two bundles for one would be ambiguous.
    if sources is not None:
        seen = [source.architecture for source in sources]
        duplicates = sorted({arch for arch in seen if seen.count(arch) > 1})
        if duplicates:
            raise ValueError(f"at most one source per architecture; repeated: {', '.join(duplicates)}")
    return sources


Sources = Annotated[list[SourceConfig], Field(min_length=1, max_length=3)]


class CreateRobotApplicationRequest(RequestModel):
    name: Name
    sources: Sources
    robotSoftwareSuite: RobotSoftwareSuite
    tags: TagMap | None = None

    _check_sources = field_validator("sources")(_one_source_per_architecture)


class CreateRobotApplicationVersionRequest(RequestModel):
    application: Arn
    currentRevisionId: RevisionId | None = None
    # One etag per source, in the order of the application's sources: the version is only created if the
    # bundles in S3 are still the ones the caller tested.
    s3Etags: list[S3Etag] | None = None


class UpdateRobotApplicationRequest(RequestModel):
    application: Arn
    sources: Sources | None = None
    robotSoftwareSuite: RobotSoftwareSuite
    currentRevisionId: RevisionId | None = None

    _check_sources = field_validator("sources")(_one_source_per_architecture)


class RobotApplicationVersionRequest(RequestModel):
    """DescribeRobotApplication and DeleteRobotApplication."""

    application: Arn
    applicationVersion: Version | None = None


class ListRobotApplicationsRequest(RequestModel):
    versionQualifier: Literal["ALL"] | None = None
    nextToken: PaginationToken | None = None
    maxResults: Annotated[int, Field(ge=1, le=100)] | None = None
    filters: Filters | None = None


class Source(ResponseModel):
    s3Bucket: str
    s3Key: str
    etag: str | None = None
    architecture: Architecture


class RobotApplicationResponse(ResponseModel):
    """CreateRobotApplicationVersion and UpdateRobotApplication (no tags)."""

    arn: str
    name: str
    version: str
    sources: list[Source]
    robotSoftwareSuite: RobotSoftwareSuite
    lastUpdatedAt: Timestamp
    revisionId: str


class TaggedRobotApplicationResponse(RobotApplicationResponse):
    """CreateRobotApplication and DescribeRobotApplication."""

    tags: dict[str, str] = Field(default_factory=dict)


class RobotApplicationSummary(ResponseModel):
    name: str
    arn: str
    version: str
    lastUpdatedAt: Timestamp
    robotSoftwareSuite: RobotSoftwareSuite


class ListRobotApplicationsResponse(ResponseModel):
    robotApplicationSummaries: list[RobotApplicationSummary]
    nextToken: str | None = None


# --- deployment jobs ---------------------------------------------------------------------------------
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


# Fleetwave extension (docs/extensions.md): approval gates between waves.
MIN_APPROVAL_TIMEOUT_SECONDS = 60
MAX_APPROVAL_TIMEOUT_SECONDS = 30 * 24 * 3600  # a job lasts at most 30 days anyway


class ApprovalConfig(RequestModel):
    """``deploymentConfig.approval``: hold the rollout before wave 2 (``FirstWave``) or before every wave
    after the first (``EveryWave``) until ApproveDeploymentWave; after ``timeoutInSeconds`` without an
    approval the job ends ``Canceled`` (``Cancel``) or ``Failed`` (``Fail``)."""

    # Unknown members are refused here, unlike in the seed's shapes: a misspelt gate must not vanish.
    model_config = ConfigDict(strict=True, extra="forbid")

    after: Literal["FirstWave", "EveryWave"]
    timeoutInSeconds: (
        Annotated[int, Field(ge=MIN_APPROVAL_TIMEOUT_SECONDS, le=MAX_APPROVAL_TIMEOUT_SECONDS)] | None
    ) = None
    onTimeout: Literal["Cancel", "Fail"] | None = None


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
    # Fleetwave extension: absent on every job that does not ask for it.
    approval: ApprovalConfig | None = None


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


class WaitingForApproval(ResponseModel):
    """The approval gate an InProgress job waits at: before ``wave``, since when, until when."""

    wave: int
    since: float
    deadline: float


class DeploymentJob(ResponseModel):
    """One job as ListDeploymentJobs shows it; SyncDeploymentJob returns exactly this."""

    arn: str
    fleet: str
    status: DeploymentStatus
    deploymentApplicationConfigs: list[DeploymentApplicationConfig]
    deploymentConfig: DeploymentConfig | None = None
    failureReason: str | None = None
    failureCode: str | None = None
    createdAt: Timestamp
    # Fleetwave extensions (docs/extensions.md), present only on jobs that use them, so a job that uses
    # none reads byte for byte as before; clients that do not know them ignore them.
    waitingForApproval: WaitingForApproval | None = None
    paused: bool | None = None
    pausedAt: Timestamp | None = None
    retryOf: str | None = None
    retriedBy: list[str] | None = None
    rollbackFrom: str | None = None
    rollbackTo: str | None = None


class CreateDeploymentJobResponse(DeploymentJob):
    tags: dict[str, str] = Field(default_factory=dict)


class ProgressDetail(ResponseModel):
    currentProgress: str | None = None
    percentDone: float | None = None
    estimatedTimeRemainingSeconds: int | None = None
    targetResource: str | None = None


class RobotDeployment(ResponseModel):
    arn: str
    deploymentStartTime: Timestamp | None = None
    deploymentFinishTime: Timestamp | None = None
    status: RobotStatus | None = None
    progressDetail: ProgressDetail | None = None
    failureReason: str | None = None
    failureCode: str | None = None


class DescribeDeploymentJobResponse(CreateDeploymentJobResponse):
    robotDeploymentSummary: list[RobotDeployment] = Field(default_factory=list)


class ListDeploymentJobsResponse(ResponseModel):
    deploymentJobs: list[DeploymentJob]
    nextToken: str | None = None


# --- Fleetwave extension operations (docs/extensions.md) ---------------------------------------------
# Waves are numbered from 1; the first never waits for an approval. At most 100 waves (of 1% each).
GatedWave = Annotated[int, Field(ge=2, le=100)]


class ApproveDeploymentWaveRequest(RequestModel):
    job: Arn
    # Absent: the wave the job waits for now. Naming it makes a retried request safe, and approves ahead.
    wave: GatedWave | None = None


class ApproveDeploymentWaveResponse(ResponseModel):
    job: str
    wave: int


class RetryDeploymentJobRequest(RequestModel):
    clientRequestToken: ClientRequestToken
    job: Arn


class RollbackFleetRequest(RequestModel):
    clientRequestToken: ClientRequestToken
    fleet: Arn
    # Absent: the deployment configuration of the job whose deployment comes back.
    deploymentConfig: DeploymentConfig | None = None
