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
    # Reserved concurrency (None: the account's unreserved pool), and why each figure is what it is. Every
    # function states all three; tests/infra checks the stack applies them and that no reason is missing.
    reserved_concurrency: int | None = None
    why: str = ""

    @property
    def local_name(self) -> str:
        """The function's name in moto under the local runtime."""
        return "fleetwave-rollout-" + self.name.replace("_", "-")


def _handler(name: str) -> str:
    return f"{HANDLERS_MODULE}.{name}"


# API Gateway's REST integration timeout is 29 s: the API function must end before it, or callers get a 504
# while the function may still write. 25 s leaves the gateway's own overhead and a cold start's margin.
API_TIMEOUT_SECONDS = 25
# A rollout step never waits for robots (that is the state machine's wait), but one step may touch every
# robot of a wave or a job (batches of 25 rows, ~8 concurrent writers): 100,000 robots take minutes.
LONG_STEP_SECONDS = 900

LAMBDAS: tuple[LambdaFunction, ...] = (
    LambdaFunction(
        "api",
        _handler("api_handler"),
        "Fleetwave REST API (RoboMaker and Greengrass V2 front doors)",
        timeout_seconds=API_TIMEOUT_SECONDS,
        memory_mb=1024,
        why=(
            "timeout below API Gateway's 29 s integration limit; 1024 MB because Lambda's CPU scales with "
            "memory and pydantic validation plus a cold import dominate latency; no reserved concurrency: "
            "the stage's throttle (throttleRateLimit/BurstLimit) bounds it, and a reservation would take "
            "capacity from the account whether or not the API is busy"
        ),
    ),
    LambdaFunction(
        "prepare",
        _handler("prepare_handler"),
        "Rollout: resolve targets, snapshot robots, plan waves",
        LONG_STEP_SECONDS,
        1024,
        placeholder="PrepareFunctionArn",
        why=(
            "writes one row per targeted robot (batches of 25): the longest step for 100,000 robots, so "
            "Lambda's 15-minute maximum; 1024 MB for CPU and the row batches in memory; one invocation per "
            "job, so no reserved concurrency: a throttle is retried by the state machine"
        ),
    ),
    LambdaFunction(
        "release_wave",
        _handler("release_wave_handler"),
        "Rollout: publish one wave's commands and park its task token",
        LONG_STEP_SECONDS,
        1024,
        placeholder="ReleaseWaveFunctionArn",
        why=(
            "publishes one command per robot of the wave through the IoT data plane (a wave may be the whole "
            "fleet); 15 minutes and 1024 MB as prepare; no reserved concurrency: one invocation per wave, "
            "retried on throttling"
        ),
    ),
    LambdaFunction(
        "hold",
        _handler("hold_handler"),
        "Rollout: park the task token of a rollout held by an approval gate or a pause",
        60,
        placeholder="HoldFunctionArn",
        why=(
            "one conditional write of the job row (the hold's task token) and, when the reason is already "
            "gone, one SendTask call: seconds, so 60 s and 512 MB; no reserved concurrency: once per hold, "
            "retried on throttling"
        ),
    ),
    LambdaFunction(
        "sweep",
        _handler("sweep_handler"),
        "Rollout: mark robots that never answered within the timeout",
        300,
        1024,
        placeholder="SweepFunctionArn",
        why=(
            "rewrites only the wave's unfinished robots (at most one wave) and recounts the wave: 5 minutes; "
            "no reserved concurrency: once per timed-out wave, retried on throttling"
        ),
    ),
    LambdaFunction(
        "evaluate",
        _handler("evaluate_handler"),
        "Rollout: apply the failure threshold, pick next wave, abort or done",
        60,
        placeholder="EvaluateFunctionArn",
        why=(
            "reads the job and its wave rows (one per wave, not per robot): seconds, so 60 s and 512 MB; "
            "no reserved concurrency: once per wave, retried on throttling"
        ),
    ),
    LambdaFunction(
        "finalize",
        _handler("finalize_handler"),
        "Rollout: final job, fleet and robot statuses and the job event",
        LONG_STEP_SECONDS,
        1024,
        placeholder="FinalizeFunctionArn",
        why=(
            "recounts the job from every robot row and aborts robots still in flight: 15 minutes and "
            "1024 MB as prepare; no reserved concurrency: once per job, retried (any error) before the "
            "execution fails"
        ),
    ),
    LambdaFunction(
        "status",
        _handler("status_handler"),
        "Robot status reports (IoT rule -> SQS batches)",
        60,
        why=(
            "a batch of up to 100 reports, each one or a few conditional writes: seconds, so 60 s (the "
            "queue's visibility timeout is 6 x this); 512 MB; its concurrency is bounded on the SQS event "
            "source (maximum concurrency), not by a reservation: a reservation throttles the poller, which "
            "counts failed receives toward the dead-letter queue"
        ),
    ),
    LambdaFunction(
        "provisioning_hook",
        _handler("provisioning_hook_handler"),
        "Fleet provisioning by claim: admit only robots created by CreateRobot",
        5,
        256,
        why=(
            "IoT Core waits at most 5 s for a pre-provisioning hook; one DynamoDB read, so 256 MB; no "
            "reserved concurrency: claims arrive at a robot factory's pace, and a throttled hook only makes "
            "that robot's RegisterThing fail, which it retries"
        ),
    ),
)
BY_NAME: dict[str, LambdaFunction] = {function.name: function for function in LAMBDAS}
# The ASL's one placeholder that is not a function: the partition of its service-integration ARNs
# (``arn:${Partition}:states:::lambda:invoke``), AWS::Partition in the stack, ``aws`` locally.
PARTITION_PLACEHOLDER = "Partition"
# The rollout state machine's steps, by the ASL placeholder their ARN fills.
STEP_FUNCTIONS: dict[str, LambdaFunction] = {f.placeholder: f for f in LAMBDAS if f.placeholder}


def load_handler(handler: str) -> Callable[[dict[str, Any], Any], Any]:
    """The callable a handler string names (``module.attribute``), imported now."""
    module_name, _, attribute = handler.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)
