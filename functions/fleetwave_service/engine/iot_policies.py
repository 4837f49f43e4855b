"""The IoT policies of robots and of claim certificates, written once: the CDK stack (infra/fleet.py)
attaches them in AWS, `fleetwave serve` creates the same documents in its registry and its broker applies
the same rules (fleetwave.local.broker_auth).

``arn(resource)`` builds an IoT ARN of the stack's account and region (``client/...``, ``topic/...``,
``topicfilter/...``). Topics are built from the thing name (``${iot:Connection.Thing.ThingName}``), which is
also the robot's client id: a robot's name longer than IoT allows has a derived thing name (core/ids.py), and
its topics carry that one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleetwave_service.engine.protocol import COMMAND_TOPIC, LINKS_TOPIC, STATUS_TOPIC

# IoT policy variable: the thing name the connecting certificate is attached to.
THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"
CERTIFICATES_CREATE = "$aws/certificates/create/json"
PROVISION = "$aws/provisioning-templates/{template}/provision/json"


def robot_policy(arn: Callable[[str], str]) -> dict[str, Any]:
    """A robot connects as its thing, subscribes to and receives its own commands and links, publishes on
    its own status topic: nothing of any other robot."""
    own_command = COMMAND_TOPIC.format(robot=THING_NAME_VARIABLE)
    own_status = STATUS_TOPIC.format(robot=THING_NAME_VARIABLE)
    own_links = LINKS_TOPIC.format(robot=THING_NAME_VARIABLE)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsItself",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": arn(f"client/{THING_NAME_VARIABLE}"),
                # The certificate must be attached to the thing whose name it claims.
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Sid": "SubscribeOwnCommands",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": arn(f"topicfilter/{own_command}"),
            },
            {
                "Sid": "ReceiveOwnCommands",
                "Effect": "Allow",
                "Action": "iot:Receive",
                "Resource": arn(f"topic/{own_command}"),
            },
            {
                # Fresh download links, asked for on the status topic (docs/robot-protocol.md).
                "Sid": "SubscribeOwnLinks",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": arn(f"topicfilter/{own_links}"),
            },
            {
                "Sid": "ReceiveOwnLinks",
                "Effect": "Allow",
                "Action": "iot:Receive",
                "Resource": arn(f"topic/{own_links}"),
            },
            {
                # Reports, health, presence (also the last will) and link requests.
                "Sid": "PublishOwnStatus",
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": arn(f"topic/{own_status}"),
            },
        ],
    }


def claim_policy(arn: Callable[[str], str], template: str) -> dict[str, Any]:
    """A claim certificate can do nothing but provision: connect, ask for a certificate
    (CreateKeysAndCertificate) and register its thing with ``template`` (RegisterThing)."""
    requests = [CERTIFICATES_CREATE, PROVISION.format(template=template)]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Connect", "Effect": "Allow", "Action": "iot:Connect", "Resource": arn("client/*")},
            {
                "Sid": "ProvisionOnly",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": [arn(f"topic/{topic}") for topic in requests]
                + [arn(f"topic/{topic}/{reply}") for topic in requests for reply in ("accepted", "rejected")],
            },
            {
                "Sid": "SubscribeProvisioningReplies",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [
                    arn(f"topicfilter/{topic}/{reply}")
                    for topic in requests
                    for reply in ("accepted", "rejected")
                ],
            },
        ],
    }
