"""A robot whose broker is not there yet, and a robot whose download link expired before it came online.

Each test runs its own `fleetwave serve`: one started only after the agent, one whose presigned links
last 60 s x the e2e time scale (0.01) = 0.6 s.
"""

from __future__ import annotations

import json
import queue
import time
import urllib.error
import urllib.request

import paho.mqtt.client as paho
from fakes.robomaker import unique
from support.agent_harness import Robot, given_for
from support.waiting import wait_for

NO_BROKER_SECONDS = 20.0


def test_agent_started_before_its_broker_keeps_trying_then_deploys(launcher, agents, tmp_path) -> None:
    # Given an agent started while nothing listens on its broker's port
    ports = {"api": launcher.free_port(), "aws": launcher.free_port(), "mqtt": launcher.free_port()}
    name = unique("e2e-agent-early")
    agent = agents.start(name, f"mqtt://127.0.0.1:{ports['mqtt']}", "--reconnect-max-delay", "3")
    started = time.monotonic()

    # When there is no broker for 20 s
    agent.wait_log("mqtt connection failed; retrying")
    wait_for(
        f"{NO_BROKER_SECONDS:g} s without a broker",
        lambda: time.monotonic() - started >= NO_BROKER_SECONDS and agent.process.poll() is None,
        timeout=NO_BROKER_SECONDS + 60,
        details=agent.all_logs,
    )
    # Then the agent is still there, and says why it cannot connect
    assert agent.process.poll() is None
    failures = [line for line in agent.log().splitlines() if "mqtt connection failed; retrying" in line]
    assert len(failures) >= 3 and "connection refused" in failures[-1]

    # When the stack comes up, and a job deploys to the robot
    server = launcher.start(ports=ports)
    robot = Robot.create(given_for(server), tmp_path / "control", name=name)
    agent.wait_log("mqtt connected")
    job = robot.release()

    # Then the robot deploys it
    done = robot.wait_job(job, details=agent.all_logs)
    assert done["robotDeploymentSummary"][0]["status"] == "InSync"
    assert len(robot.running()) == 1


def _retained_bundle_url(mqtt_url: str, robot_name: str) -> str:
    """The bundle URL of the robot's retained deploy command, read as the robot would receive it."""
    port = int(mqtt_url.rsplit(":", 1)[1])
    received: queue.Queue[bytes] = queue.Queue()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=unique("e2e-watcher"))
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"fleetwave/robots/{robot_name}/deployment", qos=1)
    client.on_message = lambda c, u, m: received.put(bytes(m.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        return json.loads(received.get(timeout=60))["bundle"]["url"]
    finally:
        client.disconnect()
        client.loop_stop()


def _refusal(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=30):
            return None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_robot_that_comes_online_after_its_link_expired_still_deploys(launcher, agents, tmp_path) -> None:
    # Given a stack whose presigned links expire after 0.6 s, and a job for a robot that is offline
    server = launcher.start(env={"FLEETWAVE_PRESIGNED_URL_TTL_SECONDS": "60"})
    robot = Robot.create(given_for(server), tmp_path / "control")
    job = robot.release()

    # When the link in its retained command has expired (S3 refuses it, as S3 does)
    url = _retained_bundle_url(server.mqtt_url, robot.name)
    status, body = wait_for("the link to expire", lambda: _refusal(url))
    assert status == 403 and "<Code>AccessDenied</Code>" in body and "Request has expired" in body
    # and only then the robot comes online
    agent = agents.start(robot.name, server.mqtt_url)

    # Then it asks the service for a fresh link and deploys
    agent.wait_log("asking the service for a fresh one")
    done = robot.wait_job(job, details=agent.all_logs)
    assert done["robotDeploymentSummary"][0]["status"] == "InSync"
    assert robot.describe()["status"] == "InSync"
    assert len(robot.running()) == 1
