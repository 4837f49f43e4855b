"""Reading the RoboMaker ARNs callers pass back (ids.py makes them): which kind of resource, its name (or
job id), and the stored row that answers to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetwave_service.core.errors import InvalidParameterError, ResourceNotFoundError

FLEET = "deployment-fleet"
ROBOT = "robot"
ROBOT_APPLICATION = "robot-application"
DEPLOYMENT_JOB = "deployment-job"

_LABELS = {
    FLEET: "fleet",
    ROBOT: "robot",
    ROBOT_APPLICATION: "robot application",
    DEPLOYMENT_JOB: "deployment job",
}


@dataclass(frozen=True)
class ResourceArn:
    kind: str
    name: str  # the resource name, or the job id for deployment jobs


def is_greengrass_arn(arn: str) -> bool:
    """An ARN of Greengrass's (deployments, component versions): its tags get Greengrass semantics."""
    parts = arn.split(":")
    return len(parts) > 2 and parts[2] == "greengrass"


def parse(arn: str) -> ResourceArn | None:
    """``arn:<partition>:robomaker:<region>:<account>:<type>/<name>[/<millis>]``, or None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "robomaker":
        return None
    kind, _, rest = parts[5].partition("/")
    segments = rest.split("/")
    if kind == DEPLOYMENT_JOB and len(segments) == 1 and segments[0]:
        return ResourceArn(kind, segments[0])
    if kind in (FLEET, ROBOT, ROBOT_APPLICATION) and len(segments) == 2 and segments[0] and segments[1]:
        return ResourceArn(kind, segments[0])
    return None


def name_of(arn: str, kind: str, field: str) -> str:
    """The name in an ARN of the expected kind; InvalidParameterError naming ``field`` otherwise."""
    parsed = parse(arn)
    if parsed is None or parsed.kind != kind:
        raise InvalidParameterError(f"{field}: {arn} is not a {_LABELS[kind]} ARN")
    return parsed.name


def resolve(arn: str, kind: str, field: str, get: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    """The row ``get(name)`` finds for an ARN of ``kind``, only if it was created with exactly that ARN (a
    name can be reused after a delete; its new ARN carries a new timestamp); ResourceNotFoundError else."""
    row = get(name_of(arn, kind, field))
    if row is None or row["arn"] != arn:
        raise ResourceNotFoundError(f"{_LABELS[kind]} {arn} does not exist")
    return row
