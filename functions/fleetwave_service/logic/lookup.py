"""Resolving the ARNs in a request to stored rows: not found -> ResourceNotFoundException.

A name can be reused after a delete, and its new ARN carries a new timestamp, so a row only answers to
the exact ARN it was created with.
"""

from __future__ import annotations

from fleetwave_service.core import arns
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import ResourceNotFoundError
from fleetwave_service.core.wire import LATEST
from fleetwave_service.storage import applications, fleets, jobs, robots


def fleet(arn: str, field: str = "fleet") -> Row:
    row = fleets.get(arns.name_of(arn, arns.FLEET, field))
    if row is None or row["arn"] != arn:
        raise ResourceNotFoundError(f"fleet {arn} does not exist")
    return row


def robot(arn: str, field: str = "robot") -> Row:
    row = robots.get(arns.name_of(arn, arns.ROBOT, field))
    if row is None or row["arn"] != arn:
        raise ResourceNotFoundError(f"robot {arn} does not exist")
    return row


def application(arn: str, field: str = "application") -> Row:
    """The application's $LATEST row."""
    row = applications.get_latest(arns.name_of(arn, arns.ROBOT_APPLICATION, field))
    if row is None or row["arn"] != arn:
        raise ResourceNotFoundError(f"robot application {arn} does not exist")
    return row


def application_version(arn: str, version: str, field: str = "application") -> Row:
    latest = application(arn, field)
    row = latest if version == LATEST else applications.get_version(latest["name"], version)
    if row is None:
        raise ResourceNotFoundError(f"robot application {arn} has no version {version}")
    return row


def job(arn: str, field: str = "job") -> Row:
    row = jobs.get(arns.name_of(arn, arns.DEPLOYMENT_JOB, field))
    if row is None or row["arn"] != arn:
        raise ResourceNotFoundError(f"deployment job {arn} does not exist")
    return row
