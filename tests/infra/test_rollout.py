"""The rollout state machine: the real ASL, every placeholder filled, logged, traced, wired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.infra_template import Synthesized, statements

from infra.engine import (
    ASL_PATH,
    ROLLOUT_SUBSTITUTIONS,
    SUBSTITUTION_KEYS,
    UnknownPlaceholderError,
    placeholders_in,
    read_definition,
)
from infra.stack import FUNCTION_SPECS

pytestmark = pytest.mark.infra


def _machine(synthesized: Synthesized) -> dict:
    return synthesized.only("AWS::StepFunctions::StateMachine")[1]["Properties"]


def test_state_machine_placeholders_are_all_substituted(synthesized: Synthesized) -> None:
    machine = _machine(synthesized)
    definition = machine["DefinitionString"]
    assert isinstance(definition, str), "the definition is inlined, so a reviewer can read it"
    used = placeholders_in(definition)
    assert used, "the rollout definition names its Lambda functions through placeholders"
    assert set(machine["DefinitionSubstitutions"]) == used


def test_state_machine_runs_the_committed_asl_file(synthesized: Synthesized) -> None:
    definition = _machine(synthesized)["DefinitionString"]
    assert json.loads(definition) == json.loads(ASL_PATH.read_text(encoding="utf-8"))


def test_state_machine_substitutes_each_step_function_arn(synthesized: Synthesized) -> None:
    substitutions = _machine(synthesized)["DefinitionSubstitutions"]
    assert substitutions.pop("Partition") == {"Ref": "AWS::Partition"}
    for placeholder, value in substitutions.items():
        function = synthesized.stack.functions[ROLLOUT_SUBSTITUTIONS[placeholder]]
        assert value == {"Fn::GetAtt": [synthesized.stack.get_logical_id(function.node.default_child), "Arn"]}


def test_state_machine_logs_everything_and_traces(synthesized: Synthesized) -> None:
    machine = _machine(synthesized)
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["Destinations"]
    assert machine["TracingConfiguration"] == {"Enabled": True}


def test_state_machine_may_invoke_each_step_function(synthesized: Synthesized) -> None:
    role = synthesized.stack.get_logical_id(synthesized.stack.rollout.state_machine.role.node.default_child)
    invokable = set()
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in statements(policy):
                if statement["Action"] == "lambda:InvokeFunction":
                    invokable.update(str(r) for r in statement["Resource"])
    for name in set(ROLLOUT_SUBSTITUTIONS.values()):
        function_id = synthesized.stack.get_logical_id(synthesized.stack.functions[name].node.default_child)
        assert any(function_id in resource for resource in invokable), name


def test_rollout_parity_asl_stack_and_local_runtime_use_the_same_placeholders() -> None:
    # The same ASL runs in AWS (CDK substitutions) and locally (the local runtime's substitutions).
    from fleetwave.local import stepfunctions as local

    in_asl = placeholders_in(read_definition())
    assert in_asl == SUBSTITUTION_KEYS
    assert set(local.LOCAL_SUBSTITUTION_NAMES) == SUBSTITUTION_KEYS
    assert set(local.asl_placeholders()) == in_asl


def test_rollout_parity_each_placeholder_runs_the_same_handler_in_aws_and_locally() -> None:
    from fleetwave.local import stepfunctions as local

    for placeholder, function_name in ROLLOUT_SUBSTITUTIONS.items():
        _, local_handler = local.ROLLOUT_FUNCTIONS[placeholder]
        assert FUNCTION_SPECS[function_name].handler == local_handler, placeholder


def test_rollout_refuses_a_placeholder_the_stack_does_not_provide(tmp_path: Path) -> None:
    # Given an ASL that names a step the stack has never heard of
    asl = tmp_path / "rollout.asl.json"
    asl.write_text(
        json.dumps(
            {
                "StartAt": "Mystery",
                "States": {
                    "Mystery": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "${MysteryFunctionArn}"},
                        "End": True,
                    }
                },
            }
        )
    )
    # When the app is synthesized with it, Then synth stops and names the placeholder
    from infra.app import build_app, cdk_json_context

    with pytest.raises(UnknownPlaceholderError, match="MysteryFunctionArn"):
        build_app(cdk_json_context(), outdir=str(tmp_path / "out"), asl_path=asl)


def test_rollout_reports_a_missing_definition_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rollout state machine definition"):
        read_definition(tmp_path / "absent.asl.json")
