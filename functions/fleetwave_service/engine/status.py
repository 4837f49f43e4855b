"""Robot status reports: an SQS batch fed by the IoT rule on ``fleetwave/robots/+/status``.

Each record body is the robot's message JSON plus ``robotName``, which the rule's SQL takes from the
topic (``SELECT *, topic(3) AS robotName FROM 'fleetwave/robots/+/status'``): the IoT policy lets a robot
publish only on its own topic, so the name is trustworthy; any robot name inside the payload is not. The
topic carries the robot's IoT thing name (``robot_of_thing`` maps a derived one back to the robot).
A message with a ``kind`` (health, presence, link request) goes to engine/robot_messages.py; one without is
a StatusReport of a deployment.

A record that can never be applied (not JSON, not a report, no robot name) is logged and dropped: retrying
it cannot help. A record that hits a transient error is reported as a partial batch failure, so SQS
redelivers just that record; applying a report twice changes nothing (engine/reports.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from fleetwave_service.core import ids
from fleetwave_service.engine.messages import ROBOT_MESSAGE_KINDS, StatusReport
from fleetwave_service.engine.ports import get_ports
from fleetwave_service.engine.reports import handle_report
from fleetwave_service.engine.robot_messages import handle_robot_message

logger = Logger(service="fleetwave-status")
processor = BatchProcessor(event_type=EventType.SQS)

_ROBOT_NAME = re.compile(r"^[a-zA-Z0-9_\-]{1,255}$")


def _no_lookup(thing: str) -> str | None:
    return None


# The robot a derived thing name belongs to; fleet/'s store answers it, plugged in by the composition root
# (handlers.py): the engine does not import fleet/.
_robot_of_derived_thing: Callable[[str], str | None] = _no_lookup


def resolve_derived_things_with(lookup: Callable[[str], str | None]) -> None:
    global _robot_of_derived_thing
    _robot_of_derived_thing = lookup


def robot_of_thing(thing: str) -> str | None:
    """The robot whose topics carry ``thing``: topics are built from the IoT thing name, which is the
    robot's name unless that is longer than IoT allows (core/ids.py iot_name: 128 characters ending in a
    hash); such a name is looked up. None when no robot has it."""
    if ids.iot_name_prefix(thing) is None:
        return thing
    return _robot_of_derived_thing(thing)


def record_handler(record: SQSRecord) -> str:
    try:
        body = json.loads(record.body)
    except (TypeError, ValueError):
        logger.warning("status record dropped: body is not JSON", extra={"messageId": record.message_id})
        return "dropped"
    thing = body.get("robotName") if isinstance(body, dict) else None
    if not isinstance(thing, str) or not _ROBOT_NAME.match(thing):
        logger.warning("status record dropped: no valid robotName", extra={"messageId": record.message_id})
        return "dropped"
    robot_name = robot_of_thing(thing)
    if robot_name is None:
        logger.warning("status record dropped: no robot has this thing name", extra={"thingName": thing})
        return "dropped"
    if body.get("kind") in ROBOT_MESSAGE_KINDS:  # health, presence, link requests: not a deployment step
        return handle_robot_message(robot_name, body, get_ports())
    try:
        report = StatusReport.model_validate(body)
    except ValidationError as error:
        logger.warning(
            "status record dropped: not a status report",
            extra={
                "messageId": record.message_id,
                "robot": robot_name,
                "errors": error.errors(include_url=False),
            },
        )
        return "dropped"
    return handle_report(robot_name, report, get_ports()).value


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
