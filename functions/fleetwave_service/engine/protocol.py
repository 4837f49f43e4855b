"""The robot protocol's names (docs/robot-protocol.md): topics, steps, statuses, failure codes, states.

No pydantic here: the rollout steps and the API read these names without loading the message models
(engine/messages.py, which re-exports all of them), which cost a cold start about a third of ``import
boto3`` (docs/performance.md, "Cold import per function").
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):  # noqa: UP036 - the agent side runs on 3.10
    from enum import StrEnum  # novermin
else:  # ROS 2 Humble's Python: the agent imports this module on robots (docs/robot-agent.md)
    from enum import Enum

    class StrEnum(str, Enum):  # noqa: UP042 - enum.StrEnum is 3.11+
        """enum.StrEnum of 3.11: members are their values for str() and format() too."""

        __str__ = str.__str__
        __format__ = str.__format__


SCHEMA_VERSION = "1"
COMMAND_TOPIC = "fleetwave/robots/{robot}/deployment"
STATUS_TOPIC = "fleetwave/robots/{robot}/status"
COMMAND_TOPIC_FILTER = "fleetwave/robots/+/deployment"
# Local runtime only (`fleetwave serve`): retained facts about the stack, e.g. its time scale, so that
# simulated robots run on the same clock as the engine's scaled waits and timeouts.
LOCAL_RUNTIME_TOPIC = "fleetwave/local/runtime"
STATUS_TOPIC_FILTER = "fleetwave/robots/+/status"
LINKS_TOPIC = "fleetwave/robots/{robot}/links"
LINKS_TOPIC_FILTER = "fleetwave/robots/+/links"


def command_topic(robot_name: str) -> str:
    return COMMAND_TOPIC.format(robot=robot_name)


def status_topic(robot_name: str) -> str:
    return STATUS_TOPIC.format(robot=robot_name)


def links_topic(robot_name: str) -> str:
    return LINKS_TOPIC.format(robot=robot_name)


def robot_from_topic(topic: str) -> str | None:
    """The robot name a topic belongs to, or None when the topic is not a Fleetwave robot topic."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "fleetwave" and parts[1] == "robots" and parts[2]:
        return parts[2]
    return None


class ProgressStep(StrEnum):
    """The steps a robot runs, in order (reference/robomaker-api.md)."""

    VALIDATING = "Validating"
    EXECUTING_DOWNLOAD_CONDITION = "ExecutingDownloadCondition"
    DOWNLOADING_EXTRACTING = "DownloadingExtracting"
    EXECUTING_PRE_LAUNCH = "ExecutingPreLaunch"
    LAUNCHING = "Launching"
    EXECUTING_POST_LAUNCH = "ExecutingPostLaunch"
    FINISHED = "Finished"


STEP_ORDER: dict[str, int] = {step.value: index for index, step in enumerate(ProgressStep)}


class RobotReportStatus(StrEnum):
    """What a robot says of its attempt: still working, done and in sync, or failed."""

    DEPLOYING = "Deploying"
    IN_SYNC = "InSync"
    FAILED = "Failed"


class FailureCode(StrEnum):
    """Why a robot deployment (or a job) failed: the reference's full enum, spelled as on the wire."""

    RESOURCE_NOT_FOUND = "ResourceNotFound"
    ENVIRONMENT_SETUP_ERROR = "EnvironmentSetupError"
    ETAG_MISMATCH = "EtagMismatch"
    FAILURE_THRESHOLD_BREACHED = "FailureThresholdBreached"
    ROBOT_DEPLOYMENT_ABORTED = "RobotDeploymentAborted"
    ROBOT_DEPLOYMENT_NO_RESPONSE = "RobotDeploymentNoResponse"
    ROBOT_AGENT_CONNECTION_TIMEOUT = "RobotAgentConnectionTimeout"
    GREENGRASS_DEPLOYMENT_FAILED = "GreengrassDeploymentFailed"
    INVALID_GREENGRASS_GROUP = "InvalidGreengrassGroup"
    MISSING_ROBOT_ARCHITECTURE = "MissingRobotArchitecture"
    MISSING_ROBOT_APPLICATION_ARCHITECTURE = "MissingRobotApplicationArchitecture"
    MISSING_ROBOT_DEPLOYMENT_RESOURCE = "MissingRobotDeploymentResource"
    GREENGRASS_GROUP_VERSION_DOES_NOT_EXIST = "GreengrassGroupVersionDoesNotExist"
    LAMBDA_DELETED = "LambdaDeleted"
    EXTRACTING_BUNDLE_FAILURE = "ExtractingBundleFailure"
    PRE_LAUNCH_FILE_FAILURE = "PreLaunchFileFailure"
    POST_LAUNCH_FILE_FAILURE = "PostLaunchFileFailure"
    BAD_PERMISSION_ERROR = "BadPermissionError"
    DOWNLOAD_CONDITION_FAILED = "DownloadConditionFailed"
    BAD_LAMBDA_ASSOCIATED = "BadLambdaAssociated"
    INTERNAL_SERVER_ERROR = "InternalServerError"
    ROBOT_APPLICATION_DOES_NOT_EXIST = "RobotApplicationDoesNotExist"
    DEPLOYMENT_FLEET_DOES_NOT_EXIST = "DeploymentFleetDoesNotExist"
    FLEET_DEPLOYMENT_TIMEOUT = "FleetDeploymentTimeout"


FAILURE_CODES: frozenset[str] = frozenset(code.value for code in FailureCode)


#: Greengrass's public components that run inside the nucleus (CLI, log manager, shadow manager...): the
#: Fleetwave agent accepts them in a deployment and reports them skipped (docs/greengrass.md).
PUBLIC_COMPONENT_PREFIX = "aws.greengrass."
SKIPPED_REASON = "runs inside the AWS IoT Greengrass nucleus; the Fleetwave agent does not run it (skipped)"
SKIPPED_STATUS_CODE = "NOT_SUPPORTED_ON_FLEETWAVE_AGENT"


def is_public_component(name: str) -> bool:
    return name.startswith(PUBLIC_COMPONENT_PREFIX)


class ApplicationState(StrEnum):
    """What a robot says of the application it runs (docs/robot-agent.md, "Supervision")."""

    RUNNING = "Running"
    RESTARTING = "Restarting"  # it exited and is restarted after a backoff
    BROKEN = "Broken"  # it exited more often than the restart limit allows; it stays down
    STOPPED = "Stopped"  # nothing runs (a first deployment failed, or the agent stopped it)


class LifecycleState(StrEnum):
    """A Greengrass component's lifecycle state on the robot (as the nucleus reports them)."""

    NEW = "NEW"
    INSTALLED = "INSTALLED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    ERRORED = "ERRORED"
    BROKEN = "BROKEN"
    FINISHED = "FINISHED"


#: ``kind`` of every robot-to-service message that is not a `StatusReport`.
ROBOT_MESSAGE_KINDS = frozenset({"health", "presence", "linkRequest", "components"})
