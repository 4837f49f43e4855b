"""cdk-nag acknowledgements: one helper so every one of them is scoped to a construct and has a reason.

cdk-nag v3 reads CDK's native acknowledgements (`Validations.of(construct).acknowledge`). An
acknowledgement covers the construct it is made on and its children (a role and its default policy),
never the stack; rules that report several findings per resource (IAM4, IAM5) are acknowledged one
finding at a time, e.g. `AwsSolutions-IAM5[Resource::*]`, so a new wildcard is never waved through.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

PACK = "AwsSolutions"
MIN_REASON_LENGTH = 40


def acknowledge(construct: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledge `rule` (e.g. "IAM5") on `construct`, for each of `findings` when the rule has them."""
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledging {rule} on {construct.node.path} needs a written reason")
    findings = list(findings)
    ids = [f"{PACK}-{rule}[{finding}]" for finding in findings] if findings else [f"{PACK}-{rule}"]
    Validations.of(construct).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))


def arn_of(element: IConstruct) -> str:
    """How cdk-nag names `Fn::GetAtt <element>.Arn` in a finding."""
    cfn = element if isinstance(element, CfnElement) else element.node.default_child
    assert isinstance(cfn, CfnElement), f"{element.node.path} has no CloudFormation resource"
    return f"<{Stack.of(cfn).get_logical_id(cfn)}.Arn>"


XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords do not support resource-level permissions; "
    "the CDK adds them with Resource '*' when tracing is on."
)
