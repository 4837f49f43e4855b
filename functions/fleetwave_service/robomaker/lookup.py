"""The robot application, version or deployment job a request's ARN names: not found ->
ResourceNotFoundException (a row only answers to the exact ARN it was created with)."""

from __future__ import annotations

from fleetwave_service.core import arns
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import ResourceNotFoundError
from fleetwave_service.core.keys import LATEST
from fleetwave_service.robomaker import store


def application(arn: str, field: str = "application") -> Row:
    """The application's $LATEST row."""
    return arns.resolve(arn, arns.ROBOT_APPLICATION, field, store.get_latest)


def application_version(arn: str, version: str, field: str = "application") -> Row:
    latest = application(arn, field)
    row = latest if version == LATEST else store.get_version(latest["name"], version)
    if row is None:
        raise ResourceNotFoundError(f"robot application {arn} has no version {version}")
    return row


def job(arn: str, field: str = "job") -> Row:
    return arns.resolve(arn, arns.DEPLOYMENT_JOB, field, store.get_job)
