"""Every Lambda function of the service, in one table.

infra builds its functions from it (infra/stack.py ``FUNCTION_SPECS``, infra/engine.py's substitutions),
the local runtime creates the rollout's step functions in moto from it (fleetwave.local.stepfunctions) and
serves the API and the status path with its handlers (fleetwave.local.runtime, .bridge), and tests read it.
Each handler is a name in fleetwave_service.handlers, the composition root that plugs the front doors into
the engine. A step function names the ``${Placeholder}`` its ARN fills in statemachines/rollout.asl.json.

Standard library only: the CDK app reads this at synth time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HANDLERS_MODULE = "fleetwave_service.handlers"


@dataclass(frozen=True)
class LambdaFunction:
    name: str
    handler: str
    description: str
    timeout_seconds: int = 30
    memory_mb: int = 512
    # The ASL placeholder this function's ARN fills (rollout steps only).
    placeholder: str | None = None

    @property
    def local_name(self) -> str:
        """The function's name in moto under the local runtime."""
        return "fleetwave-rollout-" + self.name.replace("_", "-")


def _handler(name: str) -> str:
    return f"{HANDLERS_MODULE}.{name}"


LAMBDAS: tuple[LambdaFunction, ...] = (
    LambdaFunction(
        "api",
        _handler("api_handler"),
        "Fleetwave REST API (RoboMaker and Greengrass V2 front doors)",
        timeout_seconds=29,
    ),
    LambdaFunction(
        "prepare",
        _handler("prepare_handler"),
        "Rollout: resolve targets, snapshot robots, plan waves",
        900,
        1024,
        placeholder="PrepareFunctionArn",
    ),
    LambdaFunction(
        "release_wave",
        _handler("release_wave_handler"),
        "Rollout: publish one wave's commands and park its task token",
        900,
        1024,
        placeholder="ReleaseWaveFunctionArn",
    ),
    LambdaFunction(
        "hold",
        _handler("hold_handler"),
        "Rollout: park the task token of a rollout held by an approval gate or a pause",
        60,
        placeholder="HoldFunctionArn",
    ),
    LambdaFunction(
        "sweep",
        _handler("sweep_handler"),
        "Rollout: mark robots that never answered within the timeout",
        300,
        1024,
        placeholder="SweepFunctionArn",
    ),
    LambdaFunction(
        "evaluate",
        _handler("evaluate_handler"),
        "Rollout: apply the failure threshold, pick next wave, abort or done",
        60,
        placeholder="EvaluateFunctionArn",
    ),
    LambdaFunction(
        "finalize",
        _handler("finalize_handler"),
        "Rollout: final job, fleet and robot statuses and the job event",
        900,
        1024,
        placeholder="FinalizeFunctionArn",
    ),
    LambdaFunction(
        "status",
        _handler("status_handler"),
        "Robot status reports (IoT rule -> SQS batches)",
        60,
    ),
)
BY_NAME: dict[str, LambdaFunction] = {function.name: function for function in LAMBDAS}
# The rollout state machine's steps, by the ASL placeholder their ARN fills.
STEP_FUNCTIONS: dict[str, LambdaFunction] = {f.placeholder: f for f in LAMBDAS if f.placeholder}


def load_handler(handler: str) -> Callable[[dict[str, Any], Any], Any]:
    """The callable a handler string names (``module.attribute``), imported now."""
    module_name, _, attribute = handler.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)
