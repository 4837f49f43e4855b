"""Robot protocol messages (docs/robot-protocol.md): versioned models shared by service and agent.

Topics (QoS 1):
- command: ``fleetwave/robots/{robotName}/deployment``, **retained**: the robot's latest desired deployment,
  or an abort of the job it is running. A robot that was offline receives it when it subscribes.
- status:  ``fleetwave/robots/{robotName}/status``: everything a robot tells the service: progress and
  outcome of one attempt of one job (`StatusReport`, no ``kind``), its application's health
  (`HealthReport`), its Greengrass components' lifecycle states (`ComponentStatesReport`), whether its
  agent is connected (`PresenceReport`, also its last will), and requests for fresh download links
  (`LinkRequest`).
- links:   ``fleetwave/robots/{robotName}/links``: the service's answer to a `LinkRequest` (`LinkReply`).

The service trusts the robot name in the topic, never one in a payload. Sample payloads live in
tests/samples/messages/ and both sides are checked against them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

# The protocol's names live in a module without pydantic (what steps and API read without a message model);
# re-exported here, where the agent and the tests have always found them.
from fleetwave_service.engine.protocol import (  # noqa: F401
    COMMAND_TOPIC,
    COMMAND_TOPIC_FILTER,
    FAILURE_CODES,
    LINKS_TOPIC,
    LINKS_TOPIC_FILTER,
    LOCAL_RUNTIME_TOPIC,
    PUBLIC_COMPONENT_PREFIX,
    ROBOT_MESSAGE_KINDS,
    SCHEMA_VERSION,
    SKIPPED_REASON,
    SKIPPED_STATUS_CODE,
    STATUS_TOPIC,
    STATUS_TOPIC_FILTER,
    STEP_ORDER,
    ApplicationState,
    FailureCode,
    LifecycleState,
    ProgressStep,
    RobotReportStatus,
    StrEnum,
    command_topic,
    is_public_component,
    links_topic,
    robot_from_topic,
    status_topic,
)


class _Model(BaseModel):
    # Built on first use, not at import: every rollout step and the status function import this module, and
    # each uses few of its messages or none (docs/performance.md, cold import).
    model_config = ConfigDict(defer_build=True)


class _Message(_Model):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    schemaVersion: Literal["1"] = SCHEMA_VERSION


class Bundle(_Model):
    """Where the robot downloads its application: a short-lived presigned URL for its architecture."""

    url: str
    etag: str | None = None
    architecture: str
    s3Bucket: str | None = None
    s3Key: str | None = None


class DownloadCondition(_Model):
    url: str
    etag: str | None = None


class LaunchConfig(_Model):
    packageName: str
    launchFile: str
    preLaunchFile: str | None = None
    postLaunchFile: str | None = None
    environmentVariables: dict[str, str] = Field(default_factory=dict)


class ComponentSpec(_Model):
    """A Greengrass component the robot runs (Greengrass front door, docs/greengrass.md "Robots")."""

    componentVersion: str
    configurationUpdate: dict | None = None
    runWith: dict | None = None
    #: The registered recipe in the one JSON form robots read (greengrass/recipes.py ``robot_recipe``); None
    #: for a component that is not registered (public ``aws.greengrass.*`` ones).
    recipe: dict | None = None
    #: A short-lived presigned HTTPS URL for each S3 artifact URI of the recipe's manifests.
    artifactLinks: dict[str, str] = Field(default_factory=dict)
    #: False for a dependency the service resolved from the registry (not named by the deployment).
    root: bool = True


class DeploymentCommand(_Message):
    """Retained on the command topic: what the robot must run now."""

    kind: Literal["deploy"] = "deploy"
    jobId: str
    attempt: int = Field(ge=1, description="Bumped each time the same robot is dispatched again")
    application: str | None = None
    applicationVersion: str | None = None
    bundle: Bundle | None = None
    launchConfig: LaunchConfig | None = None
    downloadCondition: DownloadCondition | None = None
    components: dict[str, ComponentSpec] | None = None
    #: Greengrass platform of the robot as registered ({"os": "linux", "architecture": "amd64"}): what the
    #: agent matches recipe manifests against.
    platform: dict[str, str] | None = None
    componentUpdatePolicy: dict | None = None
    configurationValidationPolicy: dict | None = None
    failureHandlingPolicy: Literal["ROLLBACK", "DO_NOTHING"] = "DO_NOTHING"
    timeoutSeconds: float = Field(gt=0, description="Robot must report a terminal status within this")
    deadline: float = Field(description="Epoch seconds after which the service counts the robot NoResponse")
    issuedAt: float


class AbortCommand(_Message):
    """Replaces the retained command when a job is canceled or stopped: stop working on ``jobId``."""

    kind: Literal["abort"] = "abort"
    jobId: str
    attempt: int = Field(ge=1)
    reason: str = ""
    issuedAt: float


class ComponentResult(_Model):
    status: Literal["SUCCEEDED", "FAILED", "ROLLED_BACK", "SKIPPED"]
    version: str | None = None
    reason: str | None = None


class StatusReport(_Message):
    """Published by the robot on its status topic, once per step and once at the end."""

    jobId: str
    attempt: int = Field(ge=1)
    seq: int = Field(ge=0, description="Increases with every report of one attempt")
    step: ProgressStep
    status: RobotReportStatus
    percentDone: float = Field(default=0.0, ge=0, le=100)
    estimatedTimeRemainingSeconds: int | None = Field(default=None, ge=0)
    failureCode: str | None = None
    failureReason: str | None = Field(default=None, max_length=1024)
    components: dict[str, ComponentResult] | None = None
    sentAt: float


class HealthReport(_Message):
    """Published by the robot on its status topic whenever its application changes state."""

    kind: Literal["health"] = "health"
    state: ApplicationState
    jobId: str | None = Field(default=None, description="The deployment whose application this is")
    attempt: int | None = Field(default=None, ge=1)
    application: str | None = None
    applicationVersion: str | None = None
    restartCount: int = Field(default=0, ge=0)
    exitCode: int | None = None
    reason: str | None = Field(default=None, max_length=1024)
    sentAt: float


class ComponentState(_Model):
    """One component installed on the robot, as ListInstalledComponents shows it."""

    componentVersion: str
    lifecycleState: LifecycleState
    lifecycleStateDetails: str | None = Field(default=None, max_length=1024)
    lifecycleStatusCodes: list[str] = Field(default_factory=list)
    isRoot: bool = True
    lastStatusChangeTimestamp: float
    #: The deployment (job id) that brought this version of the component.
    lastInstallationSource: str | None = None


class ComponentStatesReport(_Message):
    """Published by the robot whenever one of its components changes lifecycle state: the whole set."""

    kind: Literal["components"] = "components"
    components: dict[str, ComponentState]
    sentAt: float


class PresenceReport(_Message):
    """The robot's agent came online (``connected`` true, on every connect) or went away (its last will)."""

    kind: Literal["presence"] = "presence"
    connected: bool
    agentVersion: str | None = None
    # Absent in the last will: the broker publishes it whenever the connection is lost.
    sentAt: float | None = None


class LinkRequest(_Message):
    """A robot asks for fresh presigned URLs of a deployment it was sent (the command's have expired)."""

    kind: Literal["linkRequest"] = "linkRequest"
    requestId: str = Field(min_length=1, max_length=64)
    jobId: str
    attempt: int = Field(ge=1)
    sentAt: float


class LinkReply(_Message):
    """The service's answer on the robot's links topic: the links, or why there are none."""

    kind: Literal["links"] = "links"
    requestId: str
    jobId: str
    bundle: Bundle | None = None
    downloadCondition: DownloadCondition | None = None
    #: Greengrass deployments: component name -> {artifact S3 URI -> presigned HTTPS URL}.
    artifacts: dict[str, dict[str, str]] | None = None
    error: str | None = Field(default=None, max_length=1024)
    sentAt: float


# One adapter: parse_command runs for every command every simulated robot receives; built on its first use.
Command = DeploymentCommand | AbortCommand
_COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command, config=ConfigDict(defer_build=True))


class LocalRuntimeInfo(_Message):
    """Retained on LOCAL_RUNTIME_TOPIC by `fleetwave serve`; never published in AWS (time scale 1 there)."""

    timeScale: float = Field(gt=0)


def parse_command(payload: bytes | str) -> Command:
    """Parse a command-topic payload; raises pydantic.ValidationError on anything else."""
    return _COMMAND_ADAPTER.validate_json(payload)
