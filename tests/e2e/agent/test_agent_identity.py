"""A robot's identity end to end (docs/robot-identity.md): `fleetwave robot provision` against `fleetwave
serve`, the real `fleetwave agent --config` over the broker's mTLS listener, and the robot policy's rule:
a robot's certificate works on its own topics and nowhere else.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from fakes.robomaker import Given, unique
from fleetwave_service.engine.messages import command_topic, status_topic
from support.agent_harness import Agents, Robot, given_for
from support.waiting import wait_for


def fleetwave(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
    return subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def provision(serve: Any, robot: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return fleetwave(
        "robot", "provision", "--robot", robot, "--endpoint", serve.api_url, "--out", str(out), *extra
    )


def iot(serve: Any) -> Any:
    return serve.aws_client("iot")


class Probe:
    """A hand-made MQTT client over the mTLS listener: what a misbehaving robot (or a stranger) can do."""

    def __init__(self, serve: Any, client_id: str, identity: Path | None) -> None:
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.refused: Any = None
        self.subscribed: list[Any] = []
        self.suback = threading.Event()
        client = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311
        )
        certificate = (
            (str(identity / "certificate.pem"), str(identity / "private.key")) if identity else (None, None)
        )
        ca = (
            str(identity / "ca.pem")
            if identity
            else str(Path(serve.stdout_path).parent / "identity" / "ca.pem")
        )
        client.tls_set(
            ca_certs=ca, certfile=certificate[0], keyfile=certificate[1], cert_reqs=ssl.CERT_REQUIRED
        )
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *a: self.disconnected.set()
        client.on_subscribe = self._on_subscribe
        self.client = client
        client.connect("127.0.0.1", serve.ports["mqtts"], keepalive=30)
        client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self.refused = reason_code
            self.disconnected.set()
        else:
            self.connected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        self.subscribed = list(reason_codes)
        self.suback.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_provisioned_robot_deploys_over_mtls_rotates_its_certificate_and_is_retired(
    serve: Any, robot: Robot, agents: Agents, tmp_path: Path
) -> None:
    identity = tmp_path / "identity"
    done = provision(serve, robot.name, identity)
    assert done.returncode == 0, done.stderr
    assert f"fleetwave agent --config {identity / 'agent.json'}" in done.stdout

    # What a robot gets: one directory, its key readable by its owner only.
    assert sorted(os.listdir(identity)) == ["agent.json", "ca.pem", "certificate.pem", "private.key"]
    assert stat.S_IMODE(os.stat(identity / "private.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(identity).st_mode) == 0o700
    config = json.loads((identity / "agent.json").read_text())
    assert config["robot"] == robot.name and config["thingName"] == robot.name
    assert config["mqttUrl"] == serve.mqtts_url
    # Registered, active, attached to the robot's thing, with the robot policy.
    [principal] = iot(serve).list_thing_principals(thingName=robot.name)["principals"]
    certificate = iot(serve).describe_certificate(certificateId=config["certificateId"])[
        "certificateDescription"
    ]
    assert certificate["status"] == "ACTIVE" and certificate["certificateArn"] == principal
    assert [p["policyName"] for p in iot(serve).list_attached_policies(target=principal)["policies"]] == [
        "fleetwave-robot-policy"
    ]

    # Provisioning twice without --force refuses and says why; nothing is issued.
    again = provision(serve, robot.name, tmp_path / "again")
    assert again.returncode == 1
    assert "ResourceAlreadyExistsException" in again.stderr and "--force" in again.stderr
    assert not (tmp_path / "again").exists()
    assert len(iot(serve).list_thing_principals(thingName=robot.name)["principals"]) == 1

    agent = agents.start(robot.name, "", identity=["--config", str(identity / "agent.json")])
    agent.wait_log("mqtt connected")
    job = robot.release()
    summary = robot.wait_job(job, details=agent.all_logs)["robotDeploymentSummary"]
    assert summary[0]["status"] == "InSync", summary
    assert robot.describe()["connectivity"]["status"] == "Online"
    [pid] = wait_for("the application to run", robot.running, details=agent.all_logs)

    # Rotation mid-life: a new certificate, picked up by the running agent; the old one revoked after
    old_id = config["certificateId"]
    rotated = fleetwave(
        "robot", "rotate-cert", "--robot", robot.name, "--dir", str(identity), "--endpoint", serve.api_url,
        "--timeout", "120",
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr + agent.all_logs()
    new_id = json.loads((identity / "agent.json").read_text())["certificateId"]
    assert new_id != old_id and "1 old certificate(s) revoked" in rotated.stdout
    [principal] = iot(serve).list_thing_principals(thingName=robot.name)["principals"]
    assert principal.endswith(new_id)
    remaining = {c["certificateId"] for c in iot(serve).list_certificates()["certificates"]}
    assert old_id not in remaining
    agent.wait_log("certificate changed; reconnecting with it")
    # The agent kept its state: same application process, no restart, and it deploys again
    assert robot.running() == [pid] and agent.process.poll() is None
    job = robot.release()
    summary = robot.wait_job(job, details=agent.all_logs)["robotDeploymentSummary"]
    assert summary[0]["status"] == "InSync", summary

    # Retirement: nothing of the robot is left in the registry, and its certificate no longer connects
    retired = fleetwave("robot", "retire", "--robot", robot.name, "--endpoint", serve.api_url)
    assert retired.returncode == 0, retired.stderr
    assert robot.name not in {t["thingName"] for t in iot(serve).list_things()["things"]}
    assert new_id not in {c["certificateId"] for c in iot(serve).list_certificates()["certificates"]}
    agent.wait_log("the broker refused the connection")
    probe = Probe(serve, robot.name, identity)
    try:
        assert wait_for("the retired robot refused", lambda: probe.disconnected.is_set())
        assert not probe.connected.is_set()
    finally:
        probe.close()


def test_provisioning_a_robot_that_does_not_exist_is_resource_not_found(serve: Any, tmp_path: Path) -> None:
    done = provision(serve, unique("no-such-robot"), tmp_path / "nothing")
    assert done.returncode == 1
    assert "ResourceNotFoundException" in done.stderr
    assert not (tmp_path / "nothing").exists()


def test_a_robots_certificate_is_refused_on_another_robots_topics(
    serve: Any, given: Given, robot: Robot, agents: Agents, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    assert provision(serve, robot.name, mine).returncode == 0
    other_name = unique("e2e-other-robot")
    given.robot(other_name)
    other = tmp_path / "other"
    assert provision(serve, other_name, other).returncode == 0
    agent = agents.start(robot.name, "", identity=["--config", str(mine / "agent.json")])
    agent.wait_log("mqtt connected")

    # Another robot's certificate cannot connect as this robot (its thing is not attached to it).
    impostor = Probe(serve, robot.name, other)
    try:
        assert wait_for("the impostor refused", lambda: impostor.disconnected.is_set())
        assert impostor.refused is not None and not impostor.connected.is_set()
    finally:
        impostor.close()
    # Nor connect without a certificate.
    stranger = Probe(serve, unique("stranger"), None)
    try:
        assert wait_for("the stranger refused", lambda: stranger.disconnected.is_set())
        assert not stranger.connected.is_set()
    finally:
        stranger.close()

    # As itself it connects, but cannot subscribe to this robot's commands ...
    neighbour = Probe(serve, other_name, other)
    try:
        assert wait_for("the neighbour connected", lambda: neighbour.connected.is_set())
        neighbour.client.subscribe(command_topic(robot.name), qos=1)
        assert wait_for("the SUBACK", lambda: neighbour.suback.is_set())
        assert [code.is_failure for code in neighbour.subscribed] == [True]
        # ... and publishing on its status topic disconnects it (IoT Core's rule).
        job = robot.release()
        forged = {"jobId": "deployment-forged", "attempt": 1, "seq": 99, "status": "Failed",
                  "failureCode": "InternalServerError", "failureReason": "forged"}  # fmt: skip
        neighbour.client.publish(status_topic(robot.name), json.dumps(forged), qos=1)
        assert wait_for("the neighbour disconnected", lambda: neighbour.disconnected.is_set())
    finally:
        neighbour.close()
    # The robot's own deployment is unaffected.
    summary = robot.wait_job(job, details=agent.all_logs)["robotDeploymentSummary"]
    assert summary[0]["status"] == "InSync", summary
    assert "publish not allowed" in serve.output() and "is attached to" in serve.output()


def test_a_robot_provisioned_by_claim_deploys_and_an_unknown_robot_is_refused(
    serve: Any, robot: Robot, agents: Agents, tmp_path: Path
) -> None:
    # Given a claim certificate for a batch of robots
    claim = tmp_path / "claim"
    made = fleetwave("robot", "claim-certificate", "--endpoint", serve.api_url, "--out", str(claim))
    assert made.returncode == 0, made.stderr
    claim_id = json.loads((claim / "claim.json").read_text())["certificateId"]
    policies = iot(serve).list_attached_policies(target=f"arn:aws:iot:us-east-1:123456789012:cert/{claim_id}")
    assert [p["policyName"] for p in policies["policies"]] == ["fleetwave-claim-policy"]

    # A robot nobody created is refused by the pre-provisioning hook, and says so
    stranger = agents.start(
        "stranger", "", identity=["--claim", str(claim / "claim.json"), "--robot", unique("nobody")]
    )
    assert stranger.process.wait(timeout=120) == 2
    assert "rejected" in stranger.log() and "AccessDenied" in stranger.log()
    assert "claim refused" in serve.output()

    # A robot the operator created trades the claim for its own certificate, then deploys
    agent = agents.start(
        robot.name, "", identity=["--claim", str(claim / "claim.json"), "--robot", robot.name]
    )
    agent.wait_log("mqtt connected")
    own = json.loads((agent.work_dir / "identity" / "agent.json").read_text())
    assert own["thingName"] == robot.name and own["certificateId"] != claim_id
    assert stat.S_IMODE(os.stat(agent.work_dir / "identity" / "private.key").st_mode) == 0o600
    [principal] = iot(serve).list_thing_principals(thingName=robot.name)["principals"]
    assert principal.endswith(own["certificateId"])
    job = robot.release()
    summary = robot.wait_job(job, details=agent.all_logs)["robotDeploymentSummary"]
    assert summary[0]["status"] == "InSync", summary
    # Restarted, it uses its own certificate again (no second claim)
    assert agent.stop() == 0
    agent.start()
    agent.wait_log("mqtt connected")
    assert len(iot(serve).list_thing_principals(thingName=robot.name)["principals"]) == 1


def test_a_robot_with_a_255_character_name_deploys_over_mtls_on_its_thing_names_topics(
    serve: Any, given: Given, agents: Agents, tmp_path: Path
) -> None:
    # Given a robot whose name is longer than IoT allows for a thing name (its thing name is derived)
    name = unique("long").ljust(255, "x")
    robot = Robot.create(given, tmp_path / "control", name=name)
    identity = tmp_path / "identity"
    assert provision(serve, name, identity).returncode == 0
    config = json.loads((identity / "agent.json").read_text())
    thing = config["thingName"]
    assert len(thing) == 128 and thing != name

    # Its agent connects as the thing (the broker's topic rules on), and a deployment reaches it
    agent = agents.start("long", "", identity=["--config", str(identity / "agent.json")])
    agent.wait_log(f"fleetwave/robots/{thing}/deployment")
    job = robot.release()
    summary = robot.wait_job(job, details=agent.all_logs)["robotDeploymentSummary"]
    assert summary[0]["status"] == "InSync", summary
    assert robot.describe()["connectivity"]["status"] == "Online"


def test_with_mtls_only_anonymous_clients_are_refused_and_provisioned_robots_still_deploy(
    launcher: Any, agents: Agents, tmp_path: Path
) -> None:
    # Given `fleetwave serve --mtls-only`: robots must use mTLS; the stack's own clients authenticate
    server = launcher.start("--mtls-only")
    refused: dict[str, Any] = {}
    anonymous = paho.Client(callback_api_version=paho.CallbackAPIVersion.VERSION2, client_id=unique("anon"))
    anonymous.on_connect = lambda c, u, f, reason_code, p: refused.setdefault("code", reason_code)
    anonymous.connect("127.0.0.1", server.ports["mqtt"])
    anonymous.loop_start()
    try:
        assert wait_for("the CONNACK", lambda: "code" in refused)
        assert refused["code"].is_failure
    finally:
        anonymous.disconnect()
        anonymous.loop_stop()
    # (the stack's own clients' secret is never logged)
    assert "fleetwave-service:***@" in server.output()
    assert not re.search(r"fleetwave-service:(?!\*\*\*@)", server.output())

    # When a provisioned robot's agent connects over mTLS and a version is deployed
    robot = Robot.create(given_for(server), tmp_path / "control")
    identity = tmp_path / "identity"
    assert provision(server, robot.name, identity).returncode == 0
    agent = agents.start(robot.name, "", identity=["--config", str(identity / "agent.json")])
    job = robot.release()

    # Then the dispatch and the status bridge (on the plain listener, with the stack's secret) still work
    summary = robot.wait_job(job, details=agent.all_logs)["robotDeploymentSummary"]
    assert summary[0]["status"] == "InSync", summary
