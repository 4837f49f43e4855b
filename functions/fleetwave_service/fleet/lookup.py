"""The fleet or robot a request's ARN names: not found -> ResourceNotFoundException.

A name can be reused after a delete, and its new ARN carries a new timestamp, so a row only answers to
the exact ARN it was created with.
"""

from __future__ import annotations

from fleetwave_service.core import arns
from fleetwave_service.core.dynamo import Row
from fleetwave_service.fleet import store


def fleet(arn: str, field: str = "fleet") -> Row:
    return arns.resolve(arn, arns.FLEET, field, store.get_fleet)


def robot(arn: str, field: str = "robot") -> Row:
    return arns.resolve(arn, arns.ROBOT, field, store.get_robot)
