"""The robot agent's own MQTT connection: waits for a broker forever, delivers what it kept on disk, says
goodbye through its last will, and tells TLS failures apart."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleetwave.agent.backoff import Backoff
from fleetwave.agent.connection import RobotConnection
from fleetwave.agent.outbox import Outbox
from fleetwave.local.broker import EmbeddedBroker

WAIT = 60


def logged(caplog, text: str) -> bool:
    """A log line (its message, or the reason it carries) that contains ``text``."""
    return any(
        text in record.getMessage() or text in str(getattr(record, "reason", "")) for record in caplog.records
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Watcher:
    """Everything published on one robot's status topic, as the service would see it."""

    def __init__(self, port: int, robot: str) -> None:
        self.messages: queue.Queue[dict] = queue.Queue()
        subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"watcher-{robot}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"fleetwave/robots/{robot}/status", qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put(json.loads(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(WAIT)

    def next(self, predicate) -> dict:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=0.5)
            except queue.Empty:
                continue
            if predicate(message):
                return message
        raise AssertionError("no such message")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class GatedBackoff(Backoff):
    """Holds the connection's retries until the test opens the gate (then retries at once)."""

    def __init__(self) -> None:
        super().__init__(0.01, 0.01)
        self.failed = threading.Event()  # an attempt failed: the connection asks how long to wait
        self.gate = threading.Event()

    def next(self) -> float:
        self.failed.set()
        self.gate.wait(WAIT)
        return super().next()


def test_robot_connection_waits_for_a_late_broker_then_sends_what_its_outbox_kept(tmp_path, caplog):
    port = free_port()
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("fleetwave/robots/r1/status", b'{"jobId":"kept-before-restart"}')
    backoff = GatedBackoff()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        connection = RobotConnection(
            f"mqtt://127.0.0.1:{port}", "r1", loop=loop, on_command=lambda t, p: None, outbox=outbox,
            backoff=backoff,
        )  # fmt: skip
        connection.start()
        try:
            connection.publish_status(b'{"jobId":"sent-while-offline"}')
            deadline = time.monotonic() + WAIT
            assert await asyncio.to_thread(backoff.failed.wait, WAIT)  # no broker: its attempt failed
            with EmbeddedBroker(port=port) as broker:
                watcher = Watcher(broker.port, "r1")
                backoff.gate.set()  # the broker is up: the robot's next attempt gets through
                try:
                    got = {watcher.next(lambda m: "jobId" in m)["jobId"] for _ in range(2)}
                    assert got == {"kept-before-restart", "sent-while-offline"}
                    while len(outbox):  # acknowledged, so forgotten
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.05)
                finally:
                    watcher.close()
        finally:
            backoff.gate.set()
            await asyncio.to_thread(connection.stop)

    with caplog.at_level(logging.INFO, logger="fleetwave.agent"):
        asyncio.run(asyncio.wait_for(scenario(), WAIT))
    # and it said why it could not connect before
    assert logged(caplog, "mqtt connection failed; retrying") and logged(caplog, "connection refused")


def test_agent_killed_is_reported_offline_by_its_last_will(tmp_path):
    with EmbeddedBroker(port=0) as broker:
        watcher = Watcher(broker.port, "r-will")
        agent = subprocess.Popen(
            [sys.executable, "-m", "fleetwave.cli", "agent", "--robot", "r-will", "--mqtt-url", broker.url,
             "--simulate", "ok", "--work-dir", str(tmp_path / "work")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")},
        )  # fmt: skip
        try:
            hello = watcher.next(lambda m: m.get("kind") == "presence")
            assert hello["connected"] is True and hello["agentVersion"]
            agent.send_signal(signal.SIGKILL)
            agent.wait(WAIT)
            will = watcher.next(lambda m: m.get("kind") == "presence")
            assert will["connected"] is False and "sentAt" not in will
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            watcher.close()


# --- TLS ------------------------------------------------------------------------------------------


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key, issuer_cert=None, issuer_key=None, *, ca=False, names=("127.0.0.1",)):
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        import ipaddress

        alt = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, cert=None, key=None) -> str:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return str(path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Two CAs: the broker's (with its server certificates) and another one."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key, other_key = _key(), _key()
    ca, other = _cert("broker CA", ca_key, ca=True), _cert("other CA", other_key, ca=True)
    server_key = _key()
    files = {
        "ca": _write(directory / "ca.pem", ca),
        "other_ca": _write(directory / "other.pem", other),
        "server_key": _write(directory / "server.key", key=server_key),
        "server": _write(directory / "server.pem", _cert("broker", server_key, ca, ca_key)),
        "wrong_host": _write(
            directory / "wrong-host.pem", _cert("broker", server_key, ca, ca_key, names=("other.example",))
        ),
    }
    robot_key = _key()
    files["robot_key"] = _write(directory / "robot.key", key=robot_key)
    files["robot_untrusted"] = _write(directory / "robot.pem", _cert("r1", robot_key, other, other_key))
    return files


class TlsServer:
    """Accepts TLS connections and nothing else: enough to fail (or pass) a handshake."""

    def __init__(self, cert: str, key: str, client_ca: str | None = None) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        if client_ca:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.socket.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1024)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.socket.close()


@pytest.mark.parametrize(
    ("server", "client", "reason"),
    [
        (("server", None), ("other_ca", None, None), "not signed by a CA this robot trusts (unknown CA"),
        (("wrong_host", None), ("ca", None, None), "not valid for host 127.0.0.1 (host name mismatch)"),
        (
            ("server", "ca"),
            ("ca", "robot_untrusted", "robot_key"),
            "the broker rejected this robot's certificate",
        ),
    ],
    ids=["unknown-ca", "host-name", "certificate-rejected"],
)
def test_robot_connection_logs_why_tls_failed(pki, tmp_path, caplog, server, client, reason):
    cert_name, client_ca = server
    tls = TlsServer(pki[cert_name], pki["server_key"], pki[client_ca] if client_ca else None)
    ca, cert, key = (pki[name] if name else None for name in client)

    async def scenario() -> None:
        connection = RobotConnection(
            f"mqtts://127.0.0.1:{tls.port}", "r1", loop=asyncio.get_running_loop(),
            on_command=lambda t, p: None, outbox=Outbox(tmp_path / "outbox"), tls_files=(ca, cert, key),
            backoff=Backoff(0.05, 0.2),
        )  # fmt: skip
        connection.start()
        try:
            deadline = time.monotonic() + WAIT
            while not logged(caplog, reason):
                assert time.monotonic() < deadline, [getattr(r, "reason", "") for r in caplog.records]
                await asyncio.sleep(0.05)
        finally:
            await asyncio.to_thread(connection.stop)

    try:
        with caplog.at_level(logging.WARNING, logger="fleetwave.agent"):
            asyncio.run(asyncio.wait_for(scenario(), WAIT))
    finally:
        tls.close()
