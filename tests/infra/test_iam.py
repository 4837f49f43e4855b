"""Least privilege: a role per function, no bare '*' action, every wildcard acknowledged with a reason."""

from __future__ import annotations

import json

import pytest
from support.infra_template import Synthesized, acknowledgements, as_list, as_nag_text, statements

pytestmark = pytest.mark.infra

_IAM = ("AWS::IAM::Policy", "AWS::IAM::Role")


def _policies(synthesized: Synthesized) -> dict[str, dict]:
    return {k: v for t in _IAM for k, v in synthesized.resources(t).items()}


def test_no_iam_statement_grants_a_bare_star_action(synthesized: Synthesized) -> None:
    offenders = [
        (name, statement)
        for name, resource in _policies(synthesized).items()
        for statement in statements(resource)
        if any(action in ("*", "*:*") for action in as_list(statement.get("Action", [])))
    ]
    assert offenders == []


def test_every_wildcard_resource_is_acknowledged_with_a_reason(synthesized: Synthesized) -> None:
    # Given every IAM statement whose resource contains a wildcard
    unacknowledged = []
    for name, resource in _policies(synthesized).items():
        reasons = acknowledgements(resource)
        for statement in statements(resource):
            for target in as_list(statement["Resource"]):
                text = as_nag_text(target)
                if "*" not in text:
                    continue
                # Then the policy carries a cdk-nag acknowledgement of exactly that wildcard, with a reason
                reason = reasons.get(f"AwsSolutions-IAM5[Resource::{text}]", "")
                if len(reason.strip()) < 40:
                    unacknowledged.append((name, text))
    assert unacknowledged == []


def test_each_function_runs_with_its_own_role(synthesized: Synthesized) -> None:
    roles = [
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if "fleetwave_service" in f["Properties"]["Handler"]
    ]
    assert len(roles) == len(synthesized.stack.functions) == 9
    assert len(set(roles)) == len(roles)
    for role in roles:
        properties = synthesized.template["Resources"][role]["Properties"]
        assert properties.get("ManagedPolicyArns", []) == []  # built from grants only


def _actions_of(synthesized: Synthesized, function_name: str) -> set[str]:
    role = synthesized.stack.get_logical_id(
        synthesized.stack.functions[function_name].role.node.default_child
    )
    found: set[str] = set()
    for resource in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in resource["Properties"]["Roles"]:
            for statement in statements(resource):
                found.update(as_list(statement["Action"]))
    return found


def _resources_of(synthesized: Synthesized, function_name: str, action: str) -> list[str]:
    """The resources ``action`` is allowed on for a function, as text (ARNs joined from Fn::Join)."""
    role = synthesized.stack.get_logical_id(
        synthesized.stack.functions[function_name].role.node.default_child
    )
    found: list[str] = []
    for resource in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in resource["Properties"]["Roles"]:
            for statement in statements(resource):
                if action in as_list(statement["Action"]):
                    found.extend(json.dumps(item) for item in as_list(statement["Resource"]))
    return found


def test_only_the_api_starts_rollouts_and_manages_things(synthesized: Synthesized) -> None:
    for name in synthesized.stack.functions:
        actions = _actions_of(synthesized, name)
        assert ("states:StartExecution" in actions) == (name == "api"), name
        assert ("iot:CreateThing" in actions) == (name == "api"), name


def test_only_the_api_retires_robot_certificates_and_only_on_certificates_and_things(
    synthesized: Synthesized,
) -> None:
    retirement = {
        "iot:ListThingPrincipals",
        "iot:DetachThingPrincipal",
        "iot:ListAttachedPolicies",
        "iot:DetachPolicy",
        "iot:UpdateCertificate",
        "iot:DeleteCertificate",
    }
    for name in synthesized.stack.functions:
        actions = _actions_of(synthesized, name)
        assert (retirement <= actions) == (name == "api"), name
        assert not actions & {"iot:*", "iot:CreateKeysAndCertificate", "iot:AttachPolicy"}, name
    for action in ("iot:UpdateCertificate", "iot:DeleteCertificate", "iot:DetachPolicy"):
        [resource] = _resources_of(synthesized, "api", action)
        assert resource.endswith(':cert/*"]]}'), resource
    [resource] = _resources_of(synthesized, "api", "iot:DetachThingPrincipal")
    assert resource.endswith(':thing/*"]]}'), resource


def test_dispatch_publishes_retained_commands_presigns_bundles_and_answers_its_own_wave_token(
    synthesized: Synthesized,
) -> None:
    actions = _actions_of(synthesized, "release_wave")
    assert actions >= {
        "iot:Publish",
        "iot:RetainPublish",
        "s3:GetObject",
        "states:SendTaskFailure",
        "states:SendTaskSuccess",
    }
    assert "states:StartExecution" not in actions


def test_only_dispatching_functions_publish_robot_commands(synthesized: Synthesized) -> None:
    command_topics = ":topic/fleetwave/robots/*/deployment"
    publishers = {
        name
        for name in synthesized.stack.functions
        if any(command_topics in resource for resource in _resources_of(synthesized, name, "iot:Publish"))
    }
    assert publishers == {"release_wave", "finalize", "api"}


def test_status_function_publishes_link_replies_only(synthesized: Synthesized) -> None:
    resources = _resources_of(synthesized, "status", "iot:Publish")
    assert resources and all(':topic/fleetwave/robots/*/links"' in resource for resource in resources)
    assert "iot:RetainPublish" not in _actions_of(synthesized, "status")


def test_only_finalize_evaluate_and_the_api_publish_job_events(synthesized: Synthesized) -> None:
    # status changes (finalize), an approval gate reached (evaluate), approvals, pauses, resumes and
    # rollbacks (the API)
    senders = {
        name for name in synthesized.stack.functions if "events:PutEvents" in _actions_of(synthesized, name)
    }
    assert senders == {"finalize", "evaluate", "api"}


def test_hold_answers_its_own_token_and_does_nothing_else(synthesized: Synthesized) -> None:
    actions = _actions_of(synthesized, "hold")
    assert {"states:SendTaskFailure", "states:SendTaskSuccess"} <= actions
    assert not any(action.startswith(("iot:", "s3:", "events:")) for action in actions)


def test_status_function_completes_waves_but_cannot_publish_commands(synthesized: Synthesized) -> None:
    actions = _actions_of(synthesized, "status")
    assert "states:SendTaskSuccess" in actions
    assert "sqs:ReceiveMessage" in actions
    assert {action for action in actions if action.startswith("iot:")} == {"iot:Publish"}
