"""The rollout state machine's Lambda steps (statemachines/rollout.asl.json). Thin: parse, call, return.

Each step receives the machine's small JSON state and returns the next one; the logic lives in
engine/steps.py. An exception here surfaces to the machine as a Lambda error, which its Catch turns into
Finalize with InternalServerError: a job never stays InProgress after an internal error.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from fleetwave_service.engine import steps
from fleetwave_service.engine.ports import get_ports

logger = Logger(service="fleetwave-rollout")

_HOLD_REASONS = ("approval", "pause")


class StepInputError(ValueError):
    """The machine's state is not what the step takes. Read by hand, not by a pydantic model: a step's
    cold start then loads no pydantic (docs/performance.md, "Cold import per function"); the state is the
    machine's own small JSON, and any error here is a Lambda error that the machine's Catch finalizes."""


def _text(event: dict[str, Any], name: str, *, empty: bool = False) -> str:
    value = event.get(name) if isinstance(event, dict) else None
    if not isinstance(value, str) or (not value and not empty):
        raise StepInputError(f"{name}: a non-empty string is required, got {value!r}")
    return value


def _optional_text(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is not None and not isinstance(value, str):
        raise StepInputError(f"{name}: a string or null is required, got {value!r}")
    return value


def _whole(event: dict[str, Any], name: str) -> int:
    """A whole number of at least 1 (JSON may carry it as 3.0)."""
    value = event.get(name) if isinstance(event, dict) else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise StepInputError(f"{name}: a whole number of at least 1 is required, got {value!r}")
    return value


@logger.inject_lambda_context(clear_state=True)
def prepare_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id = _text(event, "jobId")
    logger.append_keys(jobId=job_id)
    return steps.prepare(job_id, get_ports())


@logger.inject_lambda_context(clear_state=True)
def evaluate_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id = _text(event, "jobId")
    logger.append_keys(jobId=job_id)
    return steps.evaluate(job_id, get_ports())


@logger.inject_lambda_context(clear_state=True)
def release_wave_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id, wave = _text(event, "jobId"), _whole(event, "wave")
    token, timeout_seconds = _text(event, "taskToken"), _whole(event, "timeoutSeconds")
    logger.append_keys(jobId=job_id, wave=wave)
    return steps.release_wave(job_id, wave, token, timeout_seconds, get_ports())


@logger.inject_lambda_context(clear_state=True)
def hold_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id, wave, reason = _text(event, "jobId"), _whole(event, "wave"), event.get("reason")
    if reason not in _HOLD_REASONS:
        raise StepInputError(f"reason: one of {', '.join(_HOLD_REASONS)} is required, got {reason!r}")
    token = _text(event, "taskToken")
    logger.append_keys(jobId=job_id, wave=wave)
    return steps.hold(job_id, wave, reason, token, get_ports())


@logger.inject_lambda_context(clear_state=True)
def sweep_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id, wave = _text(event, "jobId"), _whole(event, "wave")
    logger.append_keys(jobId=job_id, wave=wave)
    return steps.sweep(job_id, wave, get_ports())


@logger.inject_lambda_context(clear_state=True)
def finalize_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id, action = _text(event, "jobId"), _text(event, "action", empty=True)
    error = event.get("error")
    if error is not None and not isinstance(error, dict):
        raise StepInputError(f"error: an object or null is required, got {error!r}")
    logger.append_keys(jobId=job_id)
    return steps.finalize(
        job_id,
        action,
        get_ports(),
        failure_code=_optional_text(event, "failureCode"),
        failure_reason=_optional_text(event, "failureReason"),
        error=error,
    )
