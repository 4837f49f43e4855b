"""Continuous deployment: a robot that joins a fleet receives the current deployment of the fleet's thing
group (docs/store.md)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.settings import get_settings
from fleetwave_service.engine.ports import get_ports
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.greengrass import store
from fleetwave_service.greengrass.common import thing_group_arn
from fleetwave_service.greengrass.deployments import deployment_status
from fleetwave_service.greengrass.policy import greengrass_command, greengrass_timeout

logger = Logger(service="fleetwave", child=True)


def dispatch_to_new_member(robot: Row, fleet: Row) -> bool:
    """A robot just joined ``fleet``: it receives the fleet's thing group's current deployment, if any.

    The dispatch is outside the waves (wave 0) and recorded as the robot's row in that deployment, so
    ListEffectiveDeployments shows it. True when a command went out.
    """
    target = thing_group_arn(fleet_store.thing_group_name(fleet))
    deployment_id = store.current_deployment_id(target)
    if not deployment_id:
        return False
    job = store.get_deployment(deployment_id)
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

    settings = get_settings()
    timeout = greengrass_timeout(job, settings.time_scale)
    now = ids.now()
    deadline = now + timeout
    if not store.put_robot_deployment(
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
    ports = get_ports()
    command = greengrass_command(
        job, 1, now, deadline, timeout, signer=ports.signer, architecture=robot.get("architecture")
    )
    failures = ports.channel.publish_commands([(robot["name"], command)])
    logger.info(
        "continuous deployment dispatched",
        extra={"deploymentId": deployment_id, "robot": robot["name"], "undelivered": len(failures)},
    )
    return not failures


def on_robot_joined(robot: Row, fleet: Row) -> None:
    """fleet.events.robot_joined: the registration stands whatever happens here; a robot that misses its
    group's deployment gets the group's next revision, or a SyncDeploymentJob."""
    try:
        dispatch_to_new_member(robot, fleet)
    except Exception:
        logger.exception("continuous deployment not dispatched", extra={"robot": robot["name"]})
