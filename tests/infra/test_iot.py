"""IoT: the status rule feeds the queue, and a robot's certificate reaches only its own topics."""

from __future__ import annotations

import copy
import re

import pytest
from fleetwave_service.engine.messages import STATUS_TOPIC_FILTER, command_topic, links_topic, status_topic
from support.infra_template import Synthesized, as_list, iot_allows, resolve

pytestmark = pytest.mark.infra

_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333"}
_PREFIX = "arn:aws:iot:eu-west-1:111122223333"


def _policy(synthesized: Synthesized, construct: object, parameters: dict[str, str] = _PARAMETERS) -> dict:
    logical_id = synthesized.stack.get_logical_id(construct)
    # A copy: the template is shared by the whole session.
    document = copy.deepcopy(synthesized.template["Resources"][logical_id]["Properties"]["PolicyDocument"])
    for statement in document["Statement"]:
        statement["Resource"] = [resolve(r, parameters) for r in as_list(statement["Resource"])]
    return document


def _robot_policy(synthesized: Synthesized) -> dict:
    return _policy(synthesized, synthesized.stack.robots.policy)


def test_status_rule_selects_the_protocol_status_topic_with_the_robot_name(synthesized: Synthesized) -> None:
    rule = synthesized.only("AWS::IoT::TopicRule")[1]["Properties"]["TopicRulePayload"]
    sql = rule["Sql"]
    assert re.search(r"FROM '([^']+)'", sql).group(1) == STATUS_TOPIC_FILTER
    assert sql.startswith("SELECT *, topic(3) AS robotName FROM ")
    # A robot cannot name another robot in its payload: such reports never reach the queue
    assert sql.endswith("WHERE isUndefined(robotName)")
    # topic(3) of a status topic is the robot's name
    assert status_topic("robot-7").split("/")[3 - 1] == "robot-7"
    assert rule["RuleDisabled"] is False


def test_status_rule_delivers_to_the_queue_that_has_a_dead_letter_queue(synthesized: Synthesized) -> None:
    rule = synthesized.only("AWS::IoT::TopicRule")[1]["Properties"]["TopicRulePayload"]
    (action,) = rule["Actions"]
    queue_id = synthesized.stack.get_logical_id(synthesized.stack.ingest.queue.node.default_child)
    assert action["Sqs"]["QueueUrl"] == {"Ref": queue_id}
    assert "CloudwatchLogs" in rule["ErrorAction"]
    queue = synthesized.template["Resources"][queue_id]["Properties"]
    dlq_id = synthesized.stack.get_logical_id(synthesized.stack.ingest.dead_letter_queue.node.default_child)
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}


def test_status_function_consumes_the_queue_in_batches(synthesized: Synthesized) -> None:
    _, mapping = synthesized.only("AWS::Lambda::EventSourceMapping")
    properties = mapping["Properties"]
    assert properties["BatchSize"] > 10
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_robot_policy_lets_a_robot_use_its_own_topics(synthesized: Synthesized) -> None:
    policy = _robot_policy(synthesized)
    me = "robot-1"
    assert iot_allows(policy, "iot:Connect", f"{_PREFIX}:client/{me}", me)
    assert iot_allows(policy, "iot:Subscribe", f"{_PREFIX}:topicfilter/{command_topic(me)}", me)
    assert iot_allows(policy, "iot:Receive", f"{_PREFIX}:topic/{command_topic(me)}", me)
    assert iot_allows(policy, "iot:Publish", f"{_PREFIX}:topic/{status_topic(me)}", me)
    # and the service's answers to its link requests
    assert iot_allows(policy, "iot:Subscribe", f"{_PREFIX}:topicfilter/{links_topic(me)}", me)
    assert iot_allows(policy, "iot:Receive", f"{_PREFIX}:topic/{links_topic(me)}", me)


def test_robot_policy_denies_other_robots_topics(synthesized: Synthesized) -> None:
    policy = _robot_policy(synthesized)
    me, other = "robot-1", "robot-2"
    # Not as another robot, not with a certificate that is not attached to the thing
    assert not iot_allows(policy, "iot:Connect", f"{_PREFIX}:client/{other}", me)
    assert not iot_allows(policy, "iot:Connect", f"{_PREFIX}:client/{me}", me, attached=False)
    # Not another robot's commands, not all commands
    assert not iot_allows(policy, "iot:Subscribe", f"{_PREFIX}:topicfilter/{command_topic(other)}", me)
    assert not iot_allows(policy, "iot:Subscribe", f"{_PREFIX}:topicfilter/fleetwave/robots/+/deployment", me)
    assert not iot_allows(policy, "iot:Receive", f"{_PREFIX}:topic/{command_topic(other)}", me)
    # Not a status in another robot's name, not a command to itself or anyone
    assert not iot_allows(policy, "iot:Publish", f"{_PREFIX}:topic/{status_topic(other)}", me)
    assert not iot_allows(policy, "iot:Publish", f"{_PREFIX}:topic/{command_topic(me)}", me)
    assert not iot_allows(policy, "iot:Publish", f"{_PREFIX}:topic/{command_topic(other)}", me)
    # Not another robot's links, and no forging of links for itself
    assert not iot_allows(policy, "iot:Subscribe", f"{_PREFIX}:topicfilter/{links_topic(other)}", me)
    assert not iot_allows(policy, "iot:Receive", f"{_PREFIX}:topic/{links_topic(other)}", me)
    assert not iot_allows(policy, "iot:Publish", f"{_PREFIX}:topic/{links_topic(me)}", me)


def test_robot_policy_uses_no_wildcards(synthesized: Synthesized) -> None:
    for statement in _robot_policy(synthesized)["Statement"]:
        [resource] = statement["Resource"]
        assert "*" not in resource and "+" not in resource
        assert "${iot:Connection.Thing.ThingName}" in resource


# --- fleet provisioning by claim ---------------------------------------------------------------------
_TEMPLATE = "fleetwave-robots-x"


def _claim_policy(synthesized: Synthesized) -> dict:
    template_id = synthesized.stack.get_logical_id(synthesized.stack.claims.template)
    parameters = {**_PARAMETERS}
    document = copy.deepcopy(
        synthesized.template["Resources"][
            synthesized.stack.get_logical_id(synthesized.stack.claims.claim_policy)
        ]["Properties"]["PolicyDocument"]
    )

    def resolved(value: object) -> str:
        if isinstance(value, dict) and value.get("Ref") == template_id:
            return _TEMPLATE
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(resolved(part) for part in parts)
        return resolve(value, parameters)

    for statement in document["Statement"]:
        statement["Resource"] = [resolved(r) for r in as_list(statement["Resource"])]
    return document


def test_claim_policy_can_do_nothing_but_provision(synthesized: Synthesized) -> None:
    policy = _claim_policy(synthesized)
    provision = f"$aws/provisioning-templates/{_TEMPLATE}/provision/json"
    for request in ("$aws/certificates/create/json", provision):
        assert iot_allows(policy, "iot:Publish", f"{_PREFIX}:topic/{request}", "claim")
        for reply in ("accepted", "rejected"):
            assert iot_allows(policy, "iot:Subscribe", f"{_PREFIX}:topicfilter/{request}/{reply}", "claim")
            assert iot_allows(policy, "iot:Receive", f"{_PREFIX}:topic/{request}/{reply}", "claim")
    # Not a robot's topics, not another template, not a CSR of its own choosing
    for topic in (command_topic("robot-1"), status_topic("robot-1"), links_topic("robot-1")):
        for action, kind in (
            ("iot:Publish", "topic"),
            ("iot:Receive", "topic"),
            ("iot:Subscribe", "topicfilter"),
        ):
            assert not iot_allows(policy, action, f"{_PREFIX}:{kind}/{topic}", "claim")
    assert not iot_allows(
        policy, "iot:Publish", f"{_PREFIX}:topic/$aws/provisioning-templates/other/provision/json", "claim"
    )
    assert not iot_allows(
        policy, "iot:Publish", f"{_PREFIX}:topic/$aws/certificates/create-from-csr/json", "claim"
    )
    assert all(
        "*" not in r for s in policy["Statement"] if s["Action"] != "iot:Connect" for r in s["Resource"]
    )


def test_provisioning_template_runs_the_hook_and_gives_admitted_robots_the_robot_policy(
    synthesized: Synthesized,
) -> None:
    import json

    stack = synthesized.stack
    template = synthesized.template["Resources"][stack.get_logical_id(stack.claims.template)]["Properties"]
    hook = template["PreProvisioningHook"]
    hook_id = stack.get_logical_id(stack.functions["provisioning_hook"].node.default_child)
    assert hook == {"TargetArn": {"Fn::GetAtt": [hook_id, "Arn"]}, "PayloadVersion": "2020-04-01"}
    assert template["Enabled"] is True
    role_id = stack.get_logical_id(stack.claims.role.node.default_child)
    assert template["ProvisioningRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    # The body: the thing named by the hook's ThingName override, the certificate activated, the robot policy
    policy_id = stack.get_logical_id(stack.robots.policy)

    def text(value: object) -> str:
        if isinstance(value, str):
            return value
        if value == {"Ref": policy_id}:
            return "ROBOT-POLICY"
        separator, parts = value["Fn::Join"]
        return separator.join(text(part) for part in parts)

    body = json.loads(text(template["TemplateBody"]))
    assert body["Resources"]["policy"]["Properties"]["PolicyName"] == "ROBOT-POLICY"
    resources = body["Resources"]
    assert resources["thing"]["Properties"]["ThingName"] == {"Ref": "ThingName"}
    assert resources["certificate"]["Properties"]["Status"] == "ACTIVE"
    assert "RobotName" in body["Parameters"]
    # IoT may invoke the hook
    permissions = [
        p["Properties"] for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [hook_id, "Arn"]}
    ]  # fmt: skip
    assert [p["Principal"] for p in permissions] == ["iot.amazonaws.com"]
