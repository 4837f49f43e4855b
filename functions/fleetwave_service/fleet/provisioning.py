"""The pre-provisioning hook of fleet provisioning by claim: only robots the operator created are admitted.

IoT Core calls it (the stack's provisioning template names it; `fleetwave serve` calls the same handler)
with the parameters the robot sent in RegisterThing. A robot asks with ``RobotName``; the hook admits it
only when a robot of that name was created (CreateRobot), and overrides ``ThingName`` with that robot's
thing name (core/ids.py: long names have a derived one), so a claim can never name a thing of its own
choosing. Anything else is refused and logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.fleet import store

logger = Logger(service="fleetwave", child=True)

ROBOT_NAME_PARAMETER = "RobotName"


def pre_provisioning_hook(event: dict[str, Any]) -> dict[str, Any]:
    parameters = event.get("parameters") or {}
    name = parameters.get(ROBOT_NAME_PARAMETER) if isinstance(parameters, dict) else None
    row = store.get_robot(name) if isinstance(name, str) and 0 < len(name) <= 255 else None
    if row is None:
        logger.warning(
            "claim refused: no robot of that name was created",
            extra={
                "robot": name,
                "certificateId": event.get("certificateId"),
                "clientId": event.get("clientId"),
            },
        )
        return {"allowProvisioning": False}
    thing = store.thing_name(row)
    logger.info("claim admitted", extra={"robot": row["name"], "thingName": thing})
    return {"allowProvisioning": True, "parameterOverrides": {"ThingName": thing}}


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """IoT Core's pre-provisioning hook (the stack's provisioning template): ``allowProvisioning``."""
    return pre_provisioning_hook(event)
