"""The rollout state machine's Lambda steps (statemachines/rollout.asl.json). Thin: parse, call, return.

Each step receives the machine's small JSON state and returns the next one; the logic lives in
engine/steps.py. An exception here surfaces to the machine as a Lambda error, which its Catch turns into
Finalize with InternalServerError: a job never stays InProgress after an internal error.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from fleetwave_service.engine import steps
from fleetwave_service.engine.ports import get_ports

logger = Logger(service="fleetwave-rollout")


class _Step(BaseModel):
    # Each function builds only its own step's model, on its first invocation.
    model_config = ConfigDict(extra="ignore", defer_build=True)

    jobId: str = Field(min_length=1)


class _WaveStep(_Step):
    wave: int = Field(ge=1)


class _ReleaseStep(_WaveStep):
    taskToken: str = Field(min_length=1)
    timeoutSeconds: int = Field(ge=1)


class _HoldStep(_WaveStep):
    reason: Literal["approval", "pause"]
    taskToken: str = Field(min_length=1)


class _FinalizeStep(_Step):
    action: str
    failureCode: str | None = None
    failureReason: str | None = None
    error: dict[str, Any] | None = None


@logger.inject_lambda_context(clear_state=True)
def prepare_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = _Step.model_validate(event)
    logger.append_keys(jobId=step.jobId)
    return steps.prepare(step.jobId, get_ports())


@logger.inject_lambda_context(clear_state=True)
def evaluate_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = _Step.model_validate(event)
    logger.append_keys(jobId=step.jobId)
    return steps.evaluate(step.jobId, get_ports())


@logger.inject_lambda_context(clear_state=True)
def release_wave_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = _ReleaseStep.model_validate(event)
    logger.append_keys(jobId=step.jobId, wave=step.wave)
    return steps.release_wave(step.jobId, step.wave, step.taskToken, step.timeoutSeconds, get_ports())


@logger.inject_lambda_context(clear_state=True)
def hold_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = _HoldStep.model_validate(event)
    logger.append_keys(jobId=step.jobId, wave=step.wave)
    return steps.hold(step.jobId, step.wave, step.reason, step.taskToken, get_ports())


@logger.inject_lambda_context(clear_state=True)
def sweep_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = _WaveStep.model_validate(event)
    logger.append_keys(jobId=step.jobId, wave=step.wave)
    return steps.sweep(step.jobId, step.wave, get_ports())


@logger.inject_lambda_context(clear_state=True)
def finalize_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = _FinalizeStep.model_validate(event)
    logger.append_keys(jobId=step.jobId)
    return steps.finalize(
        step.jobId,
        step.action,
        get_ports(),
        failure_code=step.failureCode,
        failure_reason=step.failureReason,
        error=step.error,
    )
