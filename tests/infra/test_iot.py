"""IoT: the status rule feeds the queue, and a robot's certificate reaches only its own topics."""

from __future__ import annotations

import copy
import re

import pytest
from fleetwave_service.engine.messages import STATUS_TOPIC_FILTER, command_topic, links_topic, status_topic
from support.infra_template import Synthesized, iot_allows, resolve

pytestmark = pytest.mark.infra

_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333"}
_PREFIX = "arn:aws:iot:eu-west-1:111122223333"


def _robot_policy(synthesized: Synthesized) -> dict:
    # A copy: the template is shared by the whole session.
    document = copy.deepcopy(synthesized.only("AWS::IoT::Policy")[1]["Properties"]["PolicyDocument"])
    for statement in document["Statement"]:
        statement["Resource"] = resolve(statement["Resource"], _PARAMETERS)
    return document


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
        assert "*" not in statement["Resource"] and "+" not in statement["Resource"]
        assert "${iot:Connection.Thing.ThingName}" in statement["Resource"]
