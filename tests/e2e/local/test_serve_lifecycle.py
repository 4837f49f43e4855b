"""`fleetwave serve` as a process: ready line, clean shutdown on signals, clear errors for busy ports."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import pytest

READY = re.compile(
    r"^fleetwave serve: API http://127\.0\.0\.1:(?P<api>\d+)/  AWS http://127\.0\.0\.1:(?P<aws>\d+)/"
    r"(?:  MQTT mqtt://127\.0\.0\.1:(?P<mqtt>\d+))?(?:  MQTTS mqtts://127\.0\.0\.1:(?P<mqtts>\d+))?"
    r"  \(time scale (?P<scale>[0-9.e-]+)\)$"
)


def can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_serve_prints_one_ready_line_with_both_endpoints(serve):
    # Given a started `fleetwave serve`
    # Then stdout has exactly one ready line naming the API and AWS endpoints on the requested ports
    lines = [line for line in serve.stdout().splitlines() if line.startswith("fleetwave serve:")]
    assert len(lines) == 1, serve.output()
    match = READY.match(lines[0])
    assert match, lines[0]
    assert int(match["api"]) == serve.ports["api"]
    assert int(match["aws"]) == serve.ports["aws"]
    assert float(match["scale"]) == float(serve.time_scale)
    if match["mqtt"] is not None:
        assert int(match["mqtt"]) == serve.ports["mqtt"]
        assert int(match["mqtts"]) == serve.ports["mqtts"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_shuts_down_cleanly_on_signal(launcher, sig):
    # Given a running server
    server = launcher.start()

    # When it receives the signal
    code = launcher.stop(server, sig)

    # Then it exits 0 without a traceback, and its ports are free again
    assert code == 0, server.output()
    assert "Traceback" not in server.stderr()
    assert can_bind(server.ports["api"])
    assert can_bind(server.ports["aws"])


@pytest.mark.parametrize(
    ("busy", "flag"), [("api", "--port"), ("aws", "--aws-port"), ("mqtt", "--mqtt-port")]
)
def test_serve_reports_a_port_in_use_in_one_line_and_exits_1(launcher, busy, flag):
    # Given another process already listening on the port
    ports = {"api": launcher.free_port(), "aws": launcher.free_port(), "mqtt": launcher.free_port()}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", ports[busy]))
        holder.listen()

        # When `fleetwave serve` starts on it
        server = launcher.start(ports=ports, wait=False)
        code = server.process.wait(timeout=60)

    # Then exit code 1 and one clear line naming the port and the flag to change it, no traceback
    assert code == 1, server.output()
    error_lines = [
        line for line in server.stderr().splitlines() if line.startswith("fleetwave serve: error:")
    ]
    assert len(error_lines) == 1, server.output()
    assert f"port {ports[busy]}" in error_lines[0]
    assert "already in use" in error_lines[0]
    assert flag in error_lines[0]
    assert "Traceback" not in server.stderr()
    assert "fleetwave serve: API" not in server.stdout()


def test_serve_rejects_a_non_positive_time_scale():
    # Given --time-scale 0
    answer = subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", "serve", "--time-scale", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then a usage error (exit 2) explaining the constraint
    assert answer.returncode == 2
    assert "time scale must be a positive number" in answer.stderr


def test_serve_help_documents_every_flag():
    # When a user asks for help
    answer = subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # Then every flag, its default and the credential variables are documented
    for text in (
        "--host",
        "--port",
        "8787",
        "--aws-port",
        "8788",
        "--mqtt-port",
        "1883",
        "--time-scale",
        "FLEETWAVE_TIME_SCALE",
        "FLEETWAVE_LOCAL_ACCESS_KEY_ID",
        "execute-api",
    ):
        assert text in answer.stdout, text
