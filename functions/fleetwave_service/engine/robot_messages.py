"""What robots tell the service besides deployment progress (docs/robot-protocol.md, status topic):

- ``health``: the state of the application the robot runs (Running, Restarting, Broken, Stopped), kept on
  the robot (``applicationHealth``), shown by DescribeRobot and the Greengrass core-device views. A robot
  whose last deployment's application no longer runs (Broken, Stopped) is not shown InSync: it becomes
  Failed, and InSync again when that application runs again;
- ``components``: the lifecycle states of the robot's Greengrass components (the whole set, on every
  change), kept on the robot (``componentStates``), shown by ListInstalledComponents and GetCoreDevice;
- ``presence``: the robot's agent connected, or went away (its last will), kept as ``connectivity``;
- ``linkRequest``: the presigned links of a command have expired (a robot that was offline for longer than
  their lifetime): the service signs new ones and answers on the robot's links topic. Only for a job the
  robot is a target of, and only the links of the robot's own architecture.

The robot name always comes from the topic (the IoT rule adds it), never from the payload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids
from fleetwave_service.core.ids import iot_name
from fleetwave_service.engine import inbound
from fleetwave_service.engine.channels import ChannelError
from fleetwave_service.engine.inbound import (
    ComponentStatesReport,
    HealthReport,
    PresenceReport,
    UnreadableMessage,
)
from fleetwave_service.engine.policy import policy_for
from fleetwave_service.engine.ports import Ports
from fleetwave_service.engine.protocol import ApplicationState, links_topic

if TYPE_CHECKING:
    # A link request is read, and answered, with its models: rare (links outlive most absences), so the
    # status function loads pydantic for it alone (engine/inbound.py).
    from fleetwave_service.engine.messages import LinkReply, LinkRequest

logger = Logger(service="fleetwave-status", child=True)


def handle_robot_message(robot_name: str, body: dict[str, Any], ports: Ports) -> str:
    """Apply one robot message of a known ``kind``; the outcome, for the log and the tests."""
    kind = body.get("kind")
    try:
        if kind == "health":
            return _health(robot_name, inbound.read(HealthReport, body), ports)
        if kind == "presence":
            return _presence(robot_name, inbound.read(PresenceReport, body), ports)
        if kind == "linkRequest":
            return answer_link_request(robot_name, _link_request(body), ports)
        if kind == "components":
            return _component_states(robot_name, inbound.read(ComponentStatesReport, body), ports)
    except UnreadableMessage as error:
        logger.warning(
            "robot message dropped: unreadable",
            extra={"robot": robot_name, "kind": kind, "errors": error.errors},
        )
        return "dropped"
    return "dropped"


def _link_request(body: dict[str, Any]) -> LinkRequest:
    from pydantic import ValidationError

    from fleetwave_service.engine.messages import LinkRequest

    try:
        return LinkRequest.model_validate(body)
    except ValidationError as error:
        raise UnreadableMessage(error.errors(include_url=False)) from None


def _health(robot_name: str, report: HealthReport, ports: Ports) -> str:
    health = {
        "status": report.state.value,
        "deploymentJob": ids.deployment_job_arn(report.jobId) if report.jobId else None,
        "application": report.application,
        "applicationVersion": report.applicationVersion,
        "restartCount": report.restartCount,
        "lastExitCode": report.exitCode,
        "reason": report.reason,
        "updatedAt": report.sentAt,
    }
    applied = ports.store.record_health(robot_name, {k: v for k, v in health.items() if v is not None})
    logger.info(
        "application health" if applied else "application health ignored (older than the one kept)",
        extra={"robot": robot_name, "state": report.state.value, "restarts": report.restartCount},
    )
    job_arn = health["deploymentJob"]
    if applied and job_arn:
        if report.state in (ApplicationState.BROKEN, ApplicationState.STOPPED):
            if ports.store.mark_not_running(robot_name, job_arn):
                logger.warning(
                    "robot no longer runs its deployment", extra={"robot": robot_name, "job": job_arn}
                )
        elif report.state is ApplicationState.RUNNING:
            ports.store.mark_running_again(robot_name, job_arn)
    return "health" if applied else "stale health"


def _component_states(robot_name: str, report: ComponentStatesReport, ports: Ports) -> str:
    # The whole set each time: applying a snapshot twice, or an older one after a newer, changes nothing.
    states = {
        "updatedAt": report.sentAt,
        "components": {name: inbound.dump(state) for name, state in report.components.items()},
    }
    applied = ports.store.record_component_states(robot_name, states)
    logger.info(
        "component states" if applied else "component states ignored (older than the ones kept)",
        extra={
            "robot": robot_name,
            "states": {name: state.lifecycleState.value for name, state in report.components.items()},
        },
    )
    return "components" if applied else "stale components"


def _presence(robot_name: str, report: PresenceReport, ports: Ports) -> str:
    # The service's clock, not the robot's: a last will carries no time of its own.
    connectivity = {"status": "Online" if report.connected else "Offline", "updatedAt": ids.now()}
    if report.agentVersion:
        connectivity["agentVersion"] = report.agentVersion
    ports.store.record_connectivity(robot_name, connectivity)
    logger.info("robot presence", extra={"robot": robot_name, "connected": report.connected})
    return "presence"


def answer_link_request(robot_name: str, request: LinkRequest, ports: Ports) -> str:
    reply = _links(robot_name, request, ports)
    try:
        ports.channel.publish_reply(
            robot_name, links_topic(iot_name(robot_name)), reply.model_dump_json(exclude_none=True).encode()
        )
    except ChannelError as error:
        # The robot asks again when no answer comes; nothing to retry here.
        logger.warning("link reply not delivered", extra={"robot": robot_name, "reason": error.reason})
        return "link reply not delivered"
    logger.info(
        "link request answered",
        extra={"robot": robot_name, "jobId": request.jobId, "error": reply.error},
    )
    return "links" if reply.error is None else "links refused"


def _links(robot_name: str, request: LinkRequest, ports: Ports) -> LinkReply:
    from fleetwave_service.engine.messages import LinkReply

    def refuse(reason: str) -> LinkReply:
        return LinkReply(requestId=request.requestId, jobId=request.jobId, error=reason, sentAt=ids.now())

    row = ports.store.get_robot_deployment(request.jobId, robot_name)
    job = ports.store.get_job(request.jobId) if row is not None else None
    if row is None or job is None:
        return refuse(f"robot {robot_name} has no deployment in job {request.jobId}")
    links = policy_for(job).links(job, row.get("architecture"), ports)
    if links.refused is not None:
        return refuse(links.refused)
    return LinkReply(
        requestId=request.requestId,
        jobId=request.jobId,
        bundle=links.bundle,
        downloadCondition=links.download_condition,
        artifacts=links.artifacts,
        sentAt=ids.now(),
    )
