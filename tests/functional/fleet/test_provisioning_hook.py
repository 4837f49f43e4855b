"""The pre-provisioning hook of fleet provisioning by claim (the Lambda the provisioning template names)."""

from __future__ import annotations

from fleetwave_service import handlers
from fleetwave_service.core import ids


def event(**parameters: str) -> dict:
    return {
        "claimCertificateId": "c" * 64,
        "certificateId": "d" * 64,
        "certificatePem": "-----BEGIN CERTIFICATE-----",
        "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/fleetwave-robots",
        "clientId": "claim-robot",
        "parameters": parameters,
    }


def test_the_hook_admits_a_robot_created_with_create_robot_and_names_its_thing(given):
    given.robot("robot-17")
    assert handlers.provisioning_hook_handler(event(RobotName="robot-17"), None) == {
        "allowProvisioning": True,
        "parameterOverrides": {"ThingName": "robot-17"},
    }


def test_the_hook_gives_a_long_named_robot_its_derived_thing_whatever_the_claim_asks(given):
    name = "r" * 255
    given.robot(name)
    verdict = handlers.provisioning_hook_handler(event(RobotName=name, ThingName="someone-else"), None)
    assert verdict == {"allowProvisioning": True, "parameterOverrides": {"ThingName": ids.iot_name(name)}}


def test_the_hook_refuses_and_logs_a_robot_nobody_created(given, caplog):
    for parameters in ({"RobotName": "nobody"}, {}, {"RobotName": ""}, {"SerialNumber": "123"}):
        assert handlers.provisioning_hook_handler(event(**parameters), None) == {"allowProvisioning": False}
    refusals = [
        r for r in caplog.records if r.getMessage() == "claim refused: no robot of that name was created"
    ]
    assert [getattr(r, "robot", None) for r in refusals] == ["nobody", None, "", None]
