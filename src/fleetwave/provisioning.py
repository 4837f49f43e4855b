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
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from fleetwave.agent.config import CA_NAME, CERT_NAME, CONFIG_NAME, KEY_NAME, write_identity

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
    claim_policy_name: str | None = None
    template_name: str | None = None


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
        document.get("claimPolicyName"),
        document.get("provisioningTemplateName"),
    )


def aws_target(region: str, profile: str | None, stack: str) -> Target:
    """A deployed stack: the account's iot:Data-ATS endpoint, Amazon Root CA 1, the stack's robot policy
    (and claim policy and provisioning template) from its outputs."""
    import boto3

    session = boto3.Session(profile_name=profile, region_name=region)
    iot = session.client("iot")
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if ROBOT_POLICY_OUTPUT not in outputs:
        raise ProvisioningError(f"stack {stack} has no {ROBOT_POLICY_OUTPUT} output (deploy this version)")
    host = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    ca_pem = files("fleetwave").joinpath("data/AmazonRootCA1.pem").read_text("ascii")
    return Target(
        iot,
        f"mqtts://{host}:8883",
        ca_pem,
        region,
        outputs[ROBOT_POLICY_OUTPUT],
        outputs.get("ClaimPolicyName"),
        outputs.get("ProvisioningTemplateName"),
    )


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
    return write_identity(
        directory, config, created["certificatePem"], created["keyPair"]["PrivateKey"], target.ca_pem
    )


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


CLAIM_NAME = "claim.json"


def create_claim(target: Target, directory: Path) -> tuple[Path, str]:
    """A claim certificate for robots made in batches: active, with the claim policy only (it can do
    nothing but provision), written with a claim.json naming the broker, the CA and the provisioning
    template. Returns the claim.json path and the certificate's id."""
    if not target.claim_policy_name or not target.template_name:
        raise ProvisioningError("this stack has no fleet provisioning by claim (ClaimPolicyName output)")
    if (directory / CLAIM_NAME).exists():
        raise ProvisioningError(
            f"{directory} already holds a claim certificate; choose another --out",
            "ResourceAlreadyExistsException",
        )
    created = target.iot.create_keys_and_certificate(setAsActive=True)
    try:
        target.iot.attach_policy(policyName=target.claim_policy_name, target=created["certificateArn"])
        config = {
            "mqttUrl": target.mqtt_url,
            "templateName": target.template_name,
            "caFile": CA_NAME,
            "certFile": CERT_NAME,
            "keyFile": KEY_NAME,
            "certificateId": created["certificateId"],
        }
        write_identity(
            directory, config, created["certificatePem"], created["keyPair"]["PrivateKey"], target.ca_pem
        )
        (directory / CONFIG_NAME).rename(directory / CLAIM_NAME)
    except BaseException:
        registry(target).revoke_certificate(created["certificateArn"])
        raise
    return directory / CLAIM_NAME, created["certificateId"]


@dataclass(frozen=True)
class Rotation:
    robot: Robot
    directory: Path
    certificate_id: str
    written_at: float
    old: list[str]


def rotate(client: Any, target: Target, robot_name: str, directory: Path) -> Rotation:
    """A new certificate beside the robot's current one(s), written over the robot's identity directory
    (the agent notices the files changed and reconnects with them). The old certificates stay active
    until ``finish_rotation``: a robot that has not picked up the new files yet keeps working."""
    import time

    if not (directory / CONFIG_NAME).is_file():
        raise ProvisioningError(
            f"{directory} holds no robot identity (agent.json): provision the robot first"
        )
    robot = find_robot(client, robot_name)
    old = registry(target).certificates(robot.thing)
    created = issue_certificate(target, robot.thing)
    try:
        written_at = time.time()
        write_directory(directory, robot, target, created)
    except BaseException:
        registry(target).revoke_certificate(created["certificateArn"], robot.thing)
        raise
    return Rotation(robot, directory, created["certificateId"], written_at, old)


def wait_reconnected(client: Any, robot: Robot, since: float, timeout: float) -> bool:
    """Whether the robot's agent announced itself (its presence, on every connect) after ``since``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        connectivity = client.call("describeRobot", {"robot": robot.arn}).get("connectivity") or {}
        if connectivity.get("status") == "Online" and float(connectivity.get("updatedAt") or 0) > since:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def finish_rotation(target: Target, robot: Robot, keep_certificate_id: str) -> list[str]:
    """Revoke every certificate of the robot's thing but ``keep_certificate_id``; the revoked ARNs."""
    revoked = [
        arn
        for arn in registry(target).certificates(robot.thing)
        if not arn.endswith(f"/{keep_certificate_id}")
    ]
    for arn in revoked:
        registry(target).revoke_certificate(arn, robot.thing)
    return revoked
