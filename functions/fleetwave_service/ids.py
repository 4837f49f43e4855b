"""Identifiers, ARNs and time: the original service's shapes (reference/robomaker-api.md)."""

from __future__ import annotations

import secrets
import string
import time

from fleetwave_service.settings import get_settings

_JOB_ALPHABET = string.ascii_lowercase + string.digits


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
