"""Reading a synthesized CloudFormation template the way a reviewer would."""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsii prints a banner on every import under Node 20; the Makefile silences it the same way.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # `infra` is the CDK app package at the repo root, not installed

import aws_cdk as cdk  # noqa: E402

from infra.app import build_app, cdk_json_context  # noqa: E402
from infra.stack import FleetwaveStack  # noqa: E402


@dataclass
class Synthesized:
    app: cdk.App
    stack: FleetwaveStack
    template: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))


def synthesize(outdir: Path, context: dict[str, Any] | None = None, **kwargs: Any) -> Synthesized:
    """Synthesize like `cdk synth` does: cdk.json context, cdk-nag as a validation plugin."""
    app, stack = build_app({**cdk_json_context(), **(context or {})}, outdir=str(outdir), **kwargs)
    assembly = app.synth()  # raises when cdk-nag reports a finding nobody acknowledged
    return Synthesized(app, stack, assembly.get_stack_by_name(stack.stack_name).template)


def as_nag_text(value: Any) -> str:
    """Render an IAM resource the way cdk-nag names it in a finding ID."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(as_nag_text(part) for part in parts)
    raise AssertionError(f"cannot render {value!r}")


def resolve(value: Any, parameters: dict[str, str]) -> str:
    """Resolve Ref/Join of pseudo parameters to concrete values (to evaluate a policy as AWS would)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and argument in parameters:
            return parameters[argument]
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(resolve(part, parameters) for part in parts)
    raise AssertionError(f"cannot resolve {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of an AWS::IAM::Policy, or of an AWS::IAM::Role's inline policies."""
    properties = resource["Properties"]
    if resource["Type"] == "AWS::IAM::Policy":
        return properties["PolicyDocument"]["Statement"]
    if resource["Type"] == "AWS::IAM::Role":
        return [s for p in properties.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    return []


def acknowledgements(resource: dict[str, Any]) -> dict[str, str]:
    """cdk-nag acknowledgements written to the resource's metadata: rule id -> reason."""
    rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return {rule["id"]: rule["reason"] for rule in rules}


def iot_allows(policy: dict[str, Any], action: str, arn: str, thing_name: str, attached: bool = True) -> bool:
    """Evaluate an IoT policy (Allow statements with '*' wildcards, the thing-name variable, IsAttached)."""
    allowed = False
    for statement in policy["Statement"]:
        if action not in as_list(statement["Action"]):
            continue
        condition = statement.get("Condition", {})
        if condition.get("Bool", {}).get("iot:Connection.Thing.IsAttached") == "true" and not attached:
            continue
        for resource in as_list(statement["Resource"]):
            pattern = resource.replace("${iot:Connection.Thing.ThingName}", thing_name)
            if fnmatch.fnmatchcase(arn, pattern):
                if statement["Effect"] == "Deny":
                    return False
                allowed = True
    return allowed
