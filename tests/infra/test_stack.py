"""The stack as a whole: environment-agnostic, configurable by context, with the outputs users need."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fleetwave_service.engine.messages import COMMAND_TOPIC, STATUS_TOPIC
from support.infra_template import Synthesized, synthesize

from infra.config import ConfigError, StageConfig

pytestmark = pytest.mark.infra


def test_stack_outputs_what_a_deployer_needs(synthesized: Synthesized) -> None:
    outputs = synthesized.template["Outputs"]
    for name in (
        "ApiUrl",
        "ApiInvokeArn",
        "CommandTopic",
        "StatusTopic",
        "BundleBucketName",
        "RobotPolicyName",
        "IotDataEndpoint",
        "EventBusName",
        "StateMachineArn",
        "TableName",
        "AlarmTopicArn",
    ):
        assert name in outputs, name
    assert outputs["CommandTopic"]["Value"] == COMMAND_TOPIC.replace("{robot}", "{robotName}")
    assert outputs["StatusTopic"]["Value"] == STATUS_TOPIC.replace("{robot}", "{robotName}")


def test_stack_is_environment_agnostic(synthesized: Synthesized) -> None:
    # No account id or region baked in: they come from the credentials `cdk deploy` runs with
    text = json.dumps(synthesized.template)
    assert synthesized.stack.account.startswith("${Token[")
    assert synthesized.stack.region.startswith("${Token[")
    for region in ("us-east-1", "eu-west-1", "us-west-2"):
        assert region not in text
    assert "123456789012" not in text


def test_stack_alarms_on_failed_rollouts_dead_letters_and_function_errors(synthesized: Synthesized) -> None:
    metrics = {
        (a["Properties"].get("Namespace"), a["Properties"].get("MetricName"))
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
    }
    assert ("AWS/States", "ExecutionsFailed") in metrics
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metrics
    assert ("AWS/Lambda", "Errors") in metrics
    errors = [
        a
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "Errors"
    ]
    assert len(errors) == len(synthesized.stack.functions)
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"], "every alarm notifies the alarm topic"
    synthesized.only("AWS::CloudWatch::Dashboard")


def test_stack_has_an_event_bus_for_job_status_changes(synthesized: Synthesized) -> None:
    bus_id, _ = synthesized.only("AWS::Events::EventBus")
    for name in ("api", "finalize"):
        variables = synthesized.template["Resources"][
            synthesized.stack.get_logical_id(synthesized.stack.functions[name].node.default_child)
        ]["Properties"]["Environment"]["Variables"]
        assert variables["FLEETWAVE_EVENT_BUS_NAME"] == {"Ref": bus_id}


def test_bundle_bucket_is_private_tls_only_and_versioned(synthesized: Synthesized) -> None:
    bucket_id = synthesized.stack.get_logical_id(synthesized.stack.bundles.bucket.node.default_child)
    bucket = synthesized.template["Resources"][bucket_id]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policies = [
        p["Properties"]["PolicyDocument"]
        for p in synthesized.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    (policy,) = policies
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_context_configures_stage_retention_alarm_email_and_extra_bundle_buckets(tmp_path: Path) -> None:
    # Given a deployment that names its stage, retention, alarm email and an existing bundle bucket
    synthesized = synthesize(
        tmp_path,
        {
            "fleetwave:stage": "staging",
            "fleetwave:logRetentionDays": 30,
            "fleetwave:alarmEmail": "ops@example.com",
            "fleetwave:bundleBucketNames": "team-bundles,legacy.bundles",
            "fleetwave:iotDataEndpoint": "abc-ats.iot.eu-west-1.amazonaws.com",
        },
    )
    # Then the stack is named after the stage and the API stage is too
    assert synthesized.stack.stack_name == "Fleetwave-staging"
    assert synthesized.only("AWS::ApiGateway::Stage")[1]["Properties"]["StageName"] == "staging"
    # And logs keep 30 days, alarms mail the operator
    retentions = {
        g["Properties"]["RetentionInDays"] for g in synthesized.resources("AWS::Logs::LogGroup").values()
    }
    assert retentions == {30}
    assert synthesized.only("AWS::SNS::Subscription")[1]["Properties"]["Endpoint"] == "ops@example.com"
    # And the dispatch role may read (and so presign) objects of the extra buckets
    text = json.dumps(synthesized.resources("AWS::IAM::Policy"))
    assert ":s3:::team-bundles/*" in text and ":s3:::legacy.bundles/*" in text
    # And a known IoT endpoint replaces the lookup custom resource
    assert synthesized.resources("Custom::AWS") == {}
    api = synthesized.stack.functions["api"]
    variables = synthesized.template["Resources"][synthesized.stack.get_logical_id(api.node.default_child)][
        "Properties"
    ]["Environment"]["Variables"]
    assert variables["FLEETWAVE_IOT_DATA_ENDPOINT"] == "https://abc-ats.iot.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("stage", "Prod_1", "lowercase"),
        ("logRetentionDays", 10, "CloudWatch Logs accepts"),
        ("logRetentionDays", "ninety", "whole number"),
        ("alarmEmail", "not-an-email", "email address"),
        ("bundleBucketNames", "Bad_Bucket", "not an S3 bucket name"),
        ("throttleRateLimit", 0, "at least 1"),
    ],
)
def test_config_rejects_unusable_context_values(key: str, value: object, message: str) -> None:
    from aws_cdk import App

    app = App(context={f"fleetwave:{key}": value})
    with pytest.raises(ConfigError, match=message):
        StageConfig.from_context(app.node)


def test_config_defaults_when_context_is_silent() -> None:
    from aws_cdk import App

    config = StageConfig.from_context(App().node)
    assert config == StageConfig()
    assert config.bundle_bucket_names == ()


def _references(value: object) -> set[str]:
    """Logical ids a template value points at (Ref, Fn::GetAtt, Fn::Sub ${Id} / ${Id.Attr})."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else item.split(".")[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
                if isinstance(item, list):
                    found |= _references(item[1])
            else:
                found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def test_stack_has_no_dependency_cycle(synthesized: Synthesized) -> None:
    # CloudFormation refuses a template whose resources depend on each other in a circle; the CDK does
    # not check this within one stack, so a grant in the wrong place only shows up at deploy time.
    resources = synthesized.template["Resources"]
    graph = {
        logical_id: (
            _references(resource.get("Properties", {}))
            | set(
                resource.get("DependsOn", [])
                if isinstance(resource.get("DependsOn"), list)
                else [resource["DependsOn"]]
                if "DependsOn" in resource
                else []
            )
        )
        & set(resources)
        for logical_id, resource in resources.items()
    }
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                raise AssertionError("dependency cycle: " + " -> ".join([*path, node, target]))
            if target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for logical_id in sorted(graph):
        if logical_id not in state:
            visit(logical_id, [])
