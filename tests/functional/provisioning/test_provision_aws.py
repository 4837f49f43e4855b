"""`fleetwave robot provision` against a deployed stack (moto standing in for the account's IoT and
CloudFormation): the iot:Data-ATS endpoint, Amazon Root CA 1, the stack's robot policy from its outputs."""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any

import pytest
from fleetwave_service.core import ids

from fleetwave.provisioning import (
    ProvisioningError,
    aws_target,
    create_claim,
    finish_rotation,
    provision,
    rotate,
)

STACK = "Fleetwave-test"
TEMPLATE = {
    "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
    "Outputs": {
        "RobotPolicyName": {"Value": "stack-robot-policy"},
        "ClaimPolicyName": {"Value": "stack-claim-policy"},
        "ProvisioningTemplateName": {"Value": "stack-template"},
    },
}


class Api:
    """The signed SDK client's ``call`` on the in-process API handler."""

    def __init__(self, api: Any) -> None:
        self._api = api

    def call(self, operation: str, body: Any = None) -> Any:
        response = self._api.call(operation, body)
        assert response.status == 200, response
        return response.json


@pytest.fixture
def stack(aws: Any) -> Any:
    aws.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE))
    for policy in ("stack-robot-policy", "stack-claim-policy"):
        aws.client("iot").create_policy(
            policyName=policy, policyDocument='{"Version": "2012-10-17", "Statement": []}'
        )
    return aws_target("us-east-1", None, STACK)


def test_provision_in_aws_uses_the_ats_endpoint_amazon_root_ca_and_the_stacks_robot_policy(
    aws: Any, given: Any, api: Any, stack: Any, tmp_path: Any
) -> None:
    given.robot("robot-17")
    robot, directory, certificate_id = provision(Api(api), stack, "robot-17", tmp_path / "robot-17")

    iot = aws.client("iot")
    config = json.loads((directory / "agent.json").read_text())
    # DescribeEndpoint(iot:Data-ATS): the account's ATS endpoint, MQTT over TLS on 8883
    assert re.fullmatch(r"mqtts://[a-z0-9]+-ats\.iot\.us-east-1\.amazonaws\.com:8883", config["mqttUrl"])
    assert config["thingName"] == "robot-17" and config["region"] == "us-east-1"
    assert "Amazon Root CA 1" in os.popen(f"openssl x509 -in {directory / 'ca.pem'} -noout -subject").read()
    assert stat.S_IMODE((directory / "private.key").stat().st_mode) == 0o600
    [principal] = iot.list_thing_principals(thingName="robot-17")["principals"]
    assert principal.endswith(certificate_id)
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == [
        "stack-robot-policy"
    ]

    # Rotation: a second certificate beside the first, then only the new one
    rotation = rotate(Api(api), stack, "robot-17", directory)
    assert len(iot.list_thing_principals(thingName="robot-17")["principals"]) == 2
    assert finish_rotation(stack, robot, rotation.certificate_id) == [principal]
    [current] = iot.list_thing_principals(thingName="robot-17")["principals"]
    assert current.endswith(rotation.certificate_id)


def test_provision_in_aws_of_a_long_named_robot_attaches_its_derived_thing(
    aws: Any, given: Any, api: Any, stack: Any, tmp_path: Any
) -> None:
    name = "r" * 200
    given.robot(name)
    robot, directory, _ = provision(Api(api), stack, name, tmp_path / "long")
    assert robot.thing == ids.iot_name(name)
    assert json.loads((directory / "agent.json").read_text())["thingName"] == robot.thing
    assert len(aws.client("iot").list_thing_principals(thingName=robot.thing)["principals"]) == 1


def test_a_claim_certificate_in_aws_carries_the_stacks_claim_policy_only(aws: Any, stack: Any, tmp_path: Any):
    path, certificate_id = create_claim(stack, tmp_path / "claim")
    claim = json.loads(path.read_text())
    assert claim["templateName"] == "stack-template" and claim["mqttUrl"].startswith("mqtts://")
    arn = next(c["certificateArn"] for c in aws.client("iot").list_certificates()["certificates"])
    assert [p["policyName"] for p in aws.client("iot").list_attached_policies(target=arn)["policies"]] == [
        "stack-claim-policy"
    ]
    with pytest.raises(ProvisioningError, match="already holds a claim certificate"):
        create_claim(stack, tmp_path / "claim")


def test_a_stack_without_the_outputs_is_a_clear_error(aws: Any) -> None:
    aws.client("cloudformation").create_stack(
        StackName="old", TemplateBody=json.dumps({"Resources": TEMPLATE["Resources"]})
    )
    with pytest.raises(ProvisioningError, match="has no RobotPolicyName output"):
        aws_target("us-east-1", None, "old")
