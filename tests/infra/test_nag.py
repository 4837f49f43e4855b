"""cdk-nag AwsSolutions on the whole app: no finding left unacknowledged, every acknowledgement reasoned."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import Validations
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks
from support.infra_template import Synthesized, acknowledgements

from infra.app import build_app, cdk_json_context

pytestmark = pytest.mark.infra


def test_app_has_no_unacknowledged_cdk_nag_findings(synthesized: Synthesized) -> None:
    # When the AwsSolutions pack checks every resource of the app
    report = AwsSolutionsChecks().validate_scope(synthesized.app)
    # Then nothing is left: no error, no warning
    findings = [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations]
    assert findings == []
    assert report.success is True


def test_app_has_no_error_or_warning_annotations(synthesized: Synthesized) -> None:
    annotations = Annotations.from_stack(synthesized.stack)
    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_warning("*", Match.any_value()) == []


def test_every_acknowledgement_is_on_a_resource_with_a_written_reason(synthesized: Synthesized) -> None:
    # Acknowledgements live on the constructs they concern, never on the stack or the app
    for scope in (synthesized.app, synthesized.stack):
        assert [m for m in scope.node.metadata if m.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY] == []
    reasons = {
        (logical_id, rule): reason
        for logical_id, resource in synthesized.template["Resources"].items()
        for rule, reason in acknowledgements(resource).items()
    }
    assert reasons, "the template carries the acknowledgements for auditors"
    assert {key: r for key, r in reasons.items() if len(r.strip()) < 40} == {}


def test_synth_fails_on_a_finding_nobody_acknowledged(tmp_path: Path) -> None:
    # Given the app plus a queue that breaks AwsSolutions rules (no DLQ, no TLS enforcement)
    app, stack = build_app(cdk_json_context(), outdir=str(tmp_path))
    sqs.Queue(stack, "Unchecked")
    # When it is synthesized, Then the synth stops (as `make synth` would)
    with pytest.raises(Exception, match="AwsSolutions-SQS3"):
        app.synth()
