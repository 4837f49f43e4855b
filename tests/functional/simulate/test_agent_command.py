"""`fleetwave agent`: one robot agent process answering its retained command over MQTT."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys

import paho.mqtt.client as paho
from fleetwave_service.engine.channels.mqtt import MqttChannel
from fleetwave_service.engine.messages import DeploymentCommand, StatusReport

from fleetwave.local.broker import EmbeddedBroker

WAIT = 30


def test_agent_command_catches_up_on_its_retained_command_and_exits_0_on_sigterm(tmp_path):
    with EmbeddedBroker(port=0) as broker:
        # Given a command retained for robot-1 while it was off
        service = MqttChannel(broker.url, connect_timeout=WAIT)
        command = DeploymentCommand(
            jobId="deployment-aaaaaaaaaaaa", attempt=1, timeoutSeconds=300, deadline=4e9, issuedAt=1e9
        )
        service.publish_command("robot-1", command)
        reports: queue.Queue[StatusReport] = queue.Queue()
        subscribed: queue.Queue[bool] = queue.Queue()
        watcher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="watcher")
        watcher.on_connect = lambda c, u, f, rc, p: c.subscribe("fleetwave/robots/robot-1/status", qos=1)
        watcher.on_subscribe = lambda *a: subscribed.put(True)
        watcher.on_message = lambda c, u, m: (
            None if b'"kind"' in m.payload else reports.put(StatusReport.model_validate_json(m.payload))
        )
        watcher.connect("127.0.0.1", broker.port)
        watcher.loop_start()
        assert subscribed.get(timeout=WAIT)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
        # When the robot's agent starts
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleetwave.cli",
                "agent",
                "--robot",
                "robot-1",
                "--mqtt-url",
                broker.url,
                "--simulate",
                "ok",
                "--time-scale",
                "0.01",
                "--work-dir",
                str(tmp_path / "work"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            final = reports.get(timeout=WAIT)
            while final.status.value == "Deploying":
                final = reports.get(timeout=WAIT)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
            watcher.disconnect()
            watcher.loop_stop()
            service.close()
    # Then it deployed the command it found retained, reported InSync, and stopped cleanly
    assert (final.jobId, final.status.value) == ("deployment-aaaaaaaaaaaa", "InSync")
    assert process.returncode == 0, err
    assert "agent robot-1 listening on fleetwave/robots/robot-1/deployment" in out
    assert out.rstrip().endswith("agent robot-1 stopped")
    # And its log (stderr, one line per event) shows the final report of the job
    assert any(
        "report robot=robot-1 jobId=deployment-aaaaaaaaaaaa" in line and "status=InSync" in line
        for line in err.splitlines()
    ), err


def test_agent_command_needs_both_cert_and_key():
    process = subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", "agent", "--robot", "r", "--cert-file", "c.pem"],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert process.returncode == 2
    assert "--cert-file and --key-file go together" in process.stderr
