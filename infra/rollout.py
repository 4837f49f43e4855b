"""The rollout state machine: statemachines/rollout.asl.json with its ${Placeholders} filled.

The ASL file is the one the local runtime runs in moto. Its placeholders are read from the file at synth
time; a placeholder this stack does not know stops the synth, so a new step cannot ship unwired.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from fleetwave.statemachines import ROLLOUT

from infra.nag import XRAY_REASON, acknowledge, arn_of

# The installed package's copy, i.e. statemachines/rollout.asl.json itself under the editable install:
# the CDK app deploys exactly the file the wheel ships (tests/dist checks both ends).
ASL_PATH = ROLLOUT
PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")

# Placeholder -> the function (by FunctionSpec name) whose ARN fills it.
ROLLOUT_SUBSTITUTIONS: Mapping[str, str] = {
    "PrepareFunctionArn": "prepare",
    "ReleaseWaveFunctionArn": "release_wave",
    "SweepFunctionArn": "sweep",
    "EvaluateFunctionArn": "evaluate",
    "FinalizeFunctionArn": "finalize",
}
SUBSTITUTION_KEYS = frozenset(ROLLOUT_SUBSTITUTIONS)


class UnknownPlaceholderError(ValueError):
    """The ASL uses a ${Name} the stack has no value for."""


def placeholders_in(definition: str) -> frozenset[str]:
    return frozenset(PLACEHOLDER.findall(definition))


def read_definition(path: Traversable = ASL_PATH) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"the rollout state machine definition is missing: {path}")
    return path.read_text(encoding="utf-8")


class Rollout(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step_functions: Mapping[str, lambda_.IFunction],
        log_retention: logs.RetentionDays,
        asl_path: Traversable = ASL_PATH,
    ) -> None:
        super().__init__(scope, construct_id)
        definition = read_definition(asl_path)
        used = placeholders_in(definition)
        unknown = used - SUBSTITUTION_KEYS
        if unknown:
            raise UnknownPlaceholderError(
                f"{asl_path.name} uses placeholders the stack does not provide: "
                f"{', '.join(sorted(unknown))}; add them to ROLLOUT_SUBSTITUTIONS in {Path(__file__).name}"
            )
        substitutions = {
            name: step_functions[ROLLOUT_SUBSTITUTIONS[name]].function_arn for name in sorted(used)
        }
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="Fleetwave rollout: prepare, release waves, sweep, evaluate, finalize",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        # The definition is opaque to the CDK (a file, not a chain of tasks), so grants are explicit.
        for name in sorted(set(ROLLOUT_SUBSTITUTIONS.values())):
            step_functions[name].grant_invoke(self.state_machine)
        acknowledge(
            self.state_machine.role,
            "IAM5",
            "Invoking a function by ARN may target its versions and aliases (<arn>:*); the grant names each "
            "rollout step function explicitly.",
            findings=[
                f"Resource::{arn_of(step_functions[name])}:*"
                for name in sorted(set(ROLLOUT_SUBSTITUTIONS.values()))
            ],
        )
        acknowledge(
            self.state_machine.role,
            "IAM5",
            "CloudWatch Logs delivery actions (CreateLogDelivery, ...) used for state machine logging, and "
            "X-Ray trace writes, do not support resource-level permissions. " + XRAY_REASON,
            findings=["Resource::*"],
        )
