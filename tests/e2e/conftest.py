"""End-to-end harness: `fleetwave serve` in a subprocess on free ports, driven over HTTP with SigV4.

Fixtures for e2e tests (every test under tests/e2e is marked ``e2e``):

- ``serve``  (session) a running `fleetwave serve`: ``api_url``, ``aws_url``, ``mqtt_url``, ``ports``,
             ``time_scale``, ``aws_client("s3")`` (boto3 on the embedded AWS endpoint), ``output()``.
             It runs with ``--time-scale`` from FLEETWAVE_E2E_TIME_SCALE (default 0.01: a 60 s robot
             timeout lasts 0.6 s).
- ``api``    (session) ``api.call("createFleet", {...})`` -> ``ApiResponse(status, headers, json)``, never
             raises; ``api.client`` is the raising SDK client (``FleetwaveClient``);
             ``api.greengrass`` is boto3's greengrassv2 client for the same endpoint.

- ``given``  (function) RoboMaker resources made over HTTP (tests/fakes/robomaker.py), bundles uploaded to
             the embedded S3; client request tokens unique to the test. Pass unique names (``unique()``).

- ``launcher`` (function) starts extra servers: ``launcher.start(*flags, ports=..., wait=...)``,
             ``launcher.stop(server, signal)`` -> exit code, ``launcher.free_port()``; whatever is still
             running at the end of the test is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from fakes.robomaker import Given, unique

from fleetwave.sdk import ApiResponse, FleetwaveClient, greengrassv2_client

READY_PREFIX = "fleetwave serve: API "
# Generous caps, not expectations: start-up takes ~2 s on a quiet machine.
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0
E2E_TIME_SCALE = os.environ.get("FLEETWAVE_E2E_TIME_SCALE", "0.01")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    stdout_path: Path
    stderr_path: Path
    time_scale: str
    ready_line: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}/"

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['aws']}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.ports['mqtt']}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}"

    def aws_client(self, service: str, **kwargs: Any) -> Any:
        """boto3 on the embedded AWS endpoint (where users upload bundles to S3)."""
        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )


def serve_command(ports: dict[str, int], *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fleetwave.cli",
        "serve",
        "--port",
        str(ports["api"]),
        "--aws-port",
        str(ports["aws"]),
        "--mqtt-port",
        str(ports["mqtt"]),
        *extra,
    ]


def start_serve(
    *extra: str,
    ports: dict[str, int] | None = None,
    time_scale: str = E2E_TIME_SCALE,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> ServeProcess:
    """Start `fleetwave serve` and (by default) wait for its ready line."""
    ports = ports or {"api": free_port(), "aws": free_port(), "mqtt": free_port()}
    workdir = Path(tempfile.mkdtemp(prefix="fleetwave-serve-"))
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    child_env = {
        **os.environ,
        "FLEETWAVE_LOCAL_ACCESS_KEY_ID": "testing",
        "FLEETWAVE_LOCAL_SECRET_ACCESS_KEY": "testing",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    # Files, not pipes: the handlers log to stdout, and an unread pipe would stall the server.
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            serve_command(ports, "--time-scale", time_scale, *extra),
            stdout=out,
            stderr=err,
            env=child_env,
        )
    server = ServeProcess(process, ports, stdout_path, stderr_path, time_scale, extra_env=env or {})
    if wait:
        wait_ready(server)
    return server


def wait_ready(server: ServeProcess) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for line in server.stdout().splitlines():
            if line.startswith(READY_PREFIX):
                server.ready_line = line
                return line
        if server.process.poll() is not None:
            raise AssertionError(
                f"fleetwave serve exited with {server.process.returncode}\n{server.output()}"
            )
        time.sleep(0.05)
    server.process.kill()
    raise AssertionError(
        f"fleetwave serve printed no ready line in {START_TIMEOUT_SECONDS} s\n{server.output()}"
    )


def stop_serve(server: ServeProcess, sig: int = signal.SIGTERM) -> int:
    """Signal the server and return its exit code (kills it if it does not stop)."""
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
            raise AssertionError(f"fleetwave serve did not stop on signal {sig}\n{server.output()}") from None
    return int(server.process.returncode)


class ApiDriver:
    """Drive the API like a user: every answer comes back as ApiResponse(status, headers, json)."""

    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        self.client = FleetwaveClient(server.api_url, credentials=("testing", "testing"))
        self.greengrass = greengrassv2_client(
            server.api_url, aws_access_key_id="testing", aws_secret_access_key="testing"
        )

    def call(
        self,
        operation_or_path: str,
        body: Any = None,
        method: str = "POST",
        query: dict[str, Any] | None = None,
    ) -> ApiResponse:
        if body is None and method == "POST":
            body = {}
        return self.client.request(operation_or_path, body, method=method, query=query)


@pytest.fixture(scope="session")
def serve() -> Iterator[ServeProcess]:
    server = start_serve()
    yield server
    code = stop_serve(server)
    assert code == 0, f"fleetwave serve exited with {code} on SIGTERM\n{server.output()}"


@pytest.fixture(scope="session")
def api(serve: ServeProcess) -> ApiDriver:
    return ApiDriver(serve)


class EmbeddedAws:
    """The embedded AWS endpoint as ``Given`` wants it: ``client(service)``."""

    def __init__(self, server: ServeProcess) -> None:
        self._server = server

    def client(self, service: str) -> Any:
        return self._server.aws_client(service)


@pytest.fixture
def given(api: ApiDriver, serve: ServeProcess) -> Given:
    return Given(api, EmbeddedAws(serve), token_prefix=unique("e2e"))


class Launcher:
    free_port = staticmethod(free_port)

    def __init__(self) -> None:
        self.started: list[ServeProcess] = []

    def start(self, *extra: str, **kwargs: Any) -> ServeProcess:
        server = start_serve(*extra, **kwargs)
        self.started.append(server)
        return server

    def stop(self, server: ServeProcess, sig: int = signal.SIGTERM) -> int:
        return stop_serve(server, sig)

    def cleanup(self) -> None:
        for server in self.started:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    helper = Launcher()
    yield helper
    helper.cleanup()
