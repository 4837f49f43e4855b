"""A robot's identity, from the operator's machine: provision, rotate, retire (docs/robot-identity.md).

The same IoT control-plane calls against `fleetwave serve` (its embedded AWS endpoint, whose IoT signs with
the local CA) and against AWS (the operator's credentials): CreateKeysAndCertificate, AttachPolicy (the
stack's robot policy), AttachThingPrincipal (the robot's thing). What a robot needs is written to one
directory, to copy to the robot:

    agent.json          the agent's configuration: robot, thing name, broker, region, the files below
    certificate.pem     the robot's certificate
    private.key         its private key (0600; the directory is 0700)
    ca.pem              the CA to trust for the broker (Amazon Root CA 1 for IoT Core; the local CA)

``fleetwave agent --config DIR/agent.json`` is then all the robot runs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

CONFIG_NAME = "agent.json"
CERT_NAME = "certificate.pem"
KEY_NAME = "private.key"
CA_NAME = "ca.pem"
IDENTITY_PATH = "local/identity"
DEFAULT_STACK = "Fleetwave"
ROBOT_POLICY_OUTPUT = "RobotPolicyName"


class ProvisioningError(Exception):
    """A refusal or failure to report in one line; ``error_type`` is the AWS error name when there is one."""

    def __init__(self, message: str, error_type: str = "ProvisioningError") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class Target:
    """Where a robot's identity is made: the IoT control plane, the robot policy, the broker and its CA."""

    iot: Any
    mqtt_url: str
    ca_pem: str
    region: str
    policy_name: str


def local_target(endpoint: str, timeout: float = 30.0) -> Target:
    """`fleetwave serve` at ``endpoint`` (its API URL): it says where its mTLS listener and CA are."""
    import boto3

    url = endpoint.rstrip("/") + "/" + IDENTITY_PATH
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            document = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise ProvisioningError(
            f"{endpoint} has no robot identity (HTTP {error.code}): start fleetwave serve with its mTLS "
            "listener (without --no-mtls)"
        ) from None
    except (OSError, ValueError) as error:
        raise ProvisioningError(f"cannot reach fleetwave serve at {endpoint}: {error}") from None
    iot = boto3.client(
        "iot",
        endpoint_url=document["awsEndpoint"],
        region_name=document["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return Target(
        iot,
        document["mqttUrl"],
        document["caCertificatePem"],
        document["region"],
        document["robotPolicyName"],
    )


def aws_target(region: str, profile: str | None, stack: str, policy_name: str | None = None) -> Target:
    """A deployed stack: the account's iot:Data-ATS endpoint, Amazon Root CA 1, the stack's robot policy."""
    import boto3

    session = boto3.Session(profile_name=profile, region_name=region)
    iot = session.client("iot")
    if policy_name is None:
        outputs = (
            session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
        )
        policy_name = next((o["OutputValue"] for o in outputs if o["OutputKey"] == ROBOT_POLICY_OUTPUT), None)
        if policy_name is None:
            raise ProvisioningError(
                f"stack {stack} has no {ROBOT_POLICY_OUTPUT} output (deploy this version)"
            )
    host = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    ca_pem = files("fleetwave").joinpath("data/AmazonRootCA1.pem").read_text("ascii")
    return Target(iot, f"mqtts://{host}:8883", ca_pem, region, policy_name)


@dataclass(frozen=True)
class Robot:
    name: str
    arn: str
    thing: str


def find_robot(client: Any, robot: str) -> Robot:
    """The robot named ``robot`` (a name or an ARN); ProvisioningError ResourceNotFoundException when the
    API has none."""
    from fleetwave_service.core.ids import iot_name

    if robot.startswith("arn:"):
        found = client.call("describeRobot", {"robot": robot})
        return Robot(found["name"], found["arn"], iot_name(found["name"]))
    token = None
    while True:
        page = client.call("listRobots", {"maxResults": 200, **({"nextToken": token} if token else {})})
        for summary in page.get("robots", []):
            if summary.get("name") == robot:
                return Robot(robot, summary["arn"], iot_name(robot))
        token = page.get("nextToken")
        if not token:
            raise ProvisioningError(
                f"no robot named {robot} (create it first: CreateRobot)", "ResourceNotFoundException"
            )


def registry(target: Target) -> Any:
    """The service's IoT registry adapter on the operator's client: one way to list and revoke."""
    from fleetwave_service.fleet.registry import IotRegistry

    return IotRegistry(target.iot)


def issue_certificate(target: Target, thing: str) -> dict[str, Any]:
    """A new active certificate and key, with the robot policy and ``thing`` attached to it. Undone when a
    step fails, so nothing half-made is left in the registry."""
    created = target.iot.create_keys_and_certificate(setAsActive=True)
    arn = created["certificateArn"]
    try:
        target.iot.attach_policy(policyName=target.policy_name, target=arn)
        target.iot.attach_thing_principal(thingName=thing, principal=arn)
    except Exception:
        registry(target).revoke_certificate(arn, thing)
        raise
    return created


def write_directory(directory: Path, robot: Robot, target: Target, created: dict[str, Any]) -> Path:
    """Write the robot's directory (atomically: a temporary directory beside it, then renamed)."""
    directory = directory.absolute()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        (staging / CERT_NAME).write_text(created["certificatePem"])
        descriptor = os.open(staging / KEY_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as key:
            key.write(created["keyPair"]["PrivateKey"])
        (staging / CA_NAME).write_text(target.ca_pem)
        config = {
            "robot": robot.name,
            "thingName": robot.thing,
            "mqttUrl": target.mqtt_url,
            "region": target.region,
            "caFile": CA_NAME,
            "certFile": CERT_NAME,
            "keyFile": KEY_NAME,
            "certificateId": created["certificateId"],
        }
        (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        os.chmod(staging, 0o700)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def provision(
    client: Any, target: Target, robot_name: str, directory: Path | None, force: bool = False
) -> tuple[Robot, Path, str]:
    """Give a robot its identity; returns the robot, its directory and the new certificate's id.

    Refused (without ``force``) when the robot already has a certificate or ``directory`` already holds an
    identity: provisioning twice would leave a working certificate behind that nobody knows about. With
    ``force`` the robot's earlier certificates are revoked once the new one is written.
    """
    robot = find_robot(client, robot_name)
    directory = directory or Path(f"fleetwave-robot-{robot.thing}")
    existing = registry(target).certificates(robot.thing)
    if not force:
        if existing:
            raise ProvisioningError(
                f"robot {robot.name} already has {len(existing)} certificate(s) attached to its thing "
                f"{robot.thing}; --force replaces them (and revokes the old ones), rotate-cert renews one "
                "without downtime",
                "ResourceAlreadyExistsException",
            )
        if (directory / CONFIG_NAME).exists():
            raise ProvisioningError(
                f"{directory} already holds a robot identity; choose another --out or --force",
                "ResourceAlreadyExistsException",
            )
    created = issue_certificate(target, robot.thing)
    try:
        written = write_directory(directory, robot, target, created)
    except BaseException:
        registry(target).revoke_certificate(created["certificateArn"], robot.thing)
        raise
    for arn in existing:
        registry(target).revoke_certificate(arn, robot.thing)
    return robot, written, created["certificateId"]
