"""Identifiers, ARNs and time: the original service's shapes (reference/robomaker-api.md)."""

from __future__ import annotations

import hashlib
import secrets
import string
import time

from fleetwave_service.core.settings import get_settings

_JOB_ALPHABET = string.ascii_lowercase + string.digits

# IoT caps thing and thing group names at 128 characters; RoboMaker names go to 255.
IOT_NAME_MAX_LENGTH = 128
_IOT_NAME_HASH_CHARS = 16
_IOT_NAME_KEPT_CHARS = IOT_NAME_MAX_LENGTH - 1 - _IOT_NAME_HASH_CHARS  # 111


def now() -> float:
    """Epoch seconds (float). The one clock of the runtime; tests may patch it."""
    return time.time()


def epoch_millis(at: float | None = None) -> int:
    return int((now() if at is None else at) * 1000)


def new_job_id() -> str:
    """`deployment-<12 lowercase alphanumerics>`."""
    return "deployment-" + "".join(secrets.choice(_JOB_ALPHABET) for _ in range(12))


def _prefix(service: str = "robomaker") -> str:
    s = get_settings()
    return f"arn:{s.partition}:{service}:{s.region}:{s.account_id}"


def fleet_arn(name: str, created_millis: int) -> str:
    return f"{_prefix()}:deployment-fleet/{name}/{created_millis}"


def robot_arn(name: str, created_millis: int) -> str:
    return f"{_prefix()}:robot/{name}/{created_millis}"


def robot_application_arn(name: str, created_millis: int) -> str:
    return f"{_prefix()}:robot-application/{name}/{created_millis}"


def deployment_job_arn(job_id: str) -> str:
    return f"{_prefix()}:deployment-job/{job_id}"


def expires_at(created_at: float) -> int:
    """The TTL attribute value (epoch seconds) for a job row and everything hanging off it."""
    return int(created_at) + get_settings().retention_days * 86400


def iot_name(name: str) -> str:
    """The IoT thing (robot) or thing group (fleet) name for a RoboMaker name: the name itself when IoT
    allows it (<= 128 characters), else its first 111 characters, "-", and 16 hex characters of its sha256.

    Deterministic, so every party that knows a robot's name derives the same thing name; the readable
    prefix keeps long names recognisable in the IoT console. Stored on the row as ``thingName`` /
    ``thingGroupName`` (docs/decisions.md).
    """
    if len(name) <= IOT_NAME_MAX_LENGTH:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_IOT_NAME_HASH_CHARS]
    return f"{name[:_IOT_NAME_KEPT_CHARS]}-{digest}"


def iot_name_prefix(thing_name: str) -> str | None:
    """The name prefix every RoboMaker name shares that could derive ``thing_name`` by hashing, or None
    when ``thing_name`` cannot be a derived name (it is then only ever the name itself)."""
    if len(thing_name) != IOT_NAME_MAX_LENGTH or thing_name[_IOT_NAME_KEPT_CHARS] != "-":
        return None
    return thing_name[:_IOT_NAME_KEPT_CHARS]
