"""Robot status reports: an SQS batch fed by the IoT rule on ``fleetwave/robots/+/status``.

Each record body is the robot's message JSON plus ``robotName``, which the rule's SQL takes from the topic
(``SELECT *, topic(3) AS robotName FROM 'fleetwave/robots/+/status'``): the IoT policy lets a robot publish
only on its own topic, so the name is trustworthy; any robot name inside the payload is not.

What a record is decides where it goes (``dispatch``): a deployment's StatusReport (no ``kind``) joins the
batch's other reports, which engine/reports.py applies as one batch; a message with a ``kind`` (health,
presence, link request) goes, record by record, to engine/robot_messages.py.

A record that can never be applied (not JSON, no robot name, not a message of a known kind) is logged and
dropped: retrying it cannot help. A record whose processing failed (a transient error) is answered as a
partial batch failure (``batchItemFailures``), so SQS redelivers just that record; applying a report twice
changes nothing (engine/reports.py), and the batch's other records are not applied again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from fleetwave_service.core import ids
from fleetwave_service.engine import inbound
from fleetwave_service.engine.inbound import StatusReport, UnreadableMessage
from fleetwave_service.engine.ports import Ports, get_ports
from fleetwave_service.engine.protocol import ROBOT_MESSAGE_KINDS
from fleetwave_service.engine.reports import Inbound, apply_reports
from fleetwave_service.engine.robot_messages import handle_robot_message

logger = Logger(service="fleetwave-status")

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


def _robot_and_body(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    message_id = record.get("messageId")
    try:
        body = json.loads(record.get("body") or "")
    except (TypeError, ValueError):
        logger.warning("status record dropped: body is not JSON", extra={"messageId": message_id})
        return None
    thing = body.get("robotName") if isinstance(body, dict) else None
    if not isinstance(thing, str) or not _ROBOT_NAME.match(thing):
        logger.warning("status record dropped: no valid robotName", extra={"messageId": message_id})
        return None
    robot_name = robot_of_thing(thing)  # a lookup that fails fails the record (dispatch)
    if robot_name is None:
        logger.warning("status record dropped: no robot has this thing name", extra={"thingName": thing})
        return None
    return robot_name, body


def _report(message_id: str, robot_name: str, body: dict[str, Any]) -> Inbound | None:
    try:
        return Inbound(message_id, robot_name, inbound.read(StatusReport, body))
    except UnreadableMessage as error:
        logger.warning(
            "status record dropped: not a status report",
            extra={"messageId": message_id, "robot": robot_name, "errors": error.errors},
        )
        return None


def dispatch(records: list[Mapping[str, Any]], ports: Ports) -> set[str]:
    """Handle one SQS batch; returns the message ids of the records that failed (to be redelivered)."""
    reports: list[Inbound] = []
    failed: set[str] = set()
    for record in records:
        message_id = str(record.get("messageId"))
        try:
            parsed = _robot_and_body(record)
        except Exception:
            logger.exception("status record not read", extra={"messageId": message_id})
            failed.add(message_id)
            continue
        if parsed is None:
            continue
        robot_name, body = parsed
        if body.get("kind") in ROBOT_MESSAGE_KINDS:  # health, presence, link requests: not a deployment step
            # One record at a time: what fails here fails this record only (a link request is redelivered
            # alone; a health report delivered again is kept again).
            try:
                handle_robot_message(robot_name, body, ports)
            except Exception:
                logger.exception(
                    "robot message not handled", extra={"messageId": message_id, "kind": body["kind"]}
                )
                failed.add(message_id)
            continue
        report = _report(message_id, robot_name, body)
        if report is not None:
            reports.append(report)
    return failed | apply_reports(reports, ports)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    failed = dispatch(records, get_ports())
    return {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]} for record in records if record.get("messageId") in failed
        ]
    }
