"""End-to-end harness: `fleetwave serve` in a subprocess on free ports, driven over HTTP with SigV4.

Fixtures for e2e tests (every test under tests/e2e is marked ``e2e``):

- ``serve``  (session) a running `fleetwave serve`, a ``fleetwave.local.serve_process.ServeProcess``:
             ``api_url``, ``aws_url``, ``mqtt_url``, ``ports``, ``time_scale``, ``aws_client("s3")``
             (boto3 on the embedded AWS endpoint), ``stdout()``, ``stderr()``, ``output()``.
             It runs with ``--time-scale`` from FLEETWAVE_E2E_TIME_SCALE (default 0.01: a 60 s robot
             timeout lasts 0.6 s).
- ``api``    (session) ``api.call("createFleet", {...})`` -> ``ApiResponse(status, headers, json)``, never
             raises; ``api.client`` is the raising SDK client (``FleetwaveClient``);
             ``api.greengrass`` is boto3's greengrassv2 client for the same endpoint.

- ``given``  (function) RoboMaker resources made over HTTP (tests/fakes/robomaker.py), bundles uploaded to
             the embedded S3; client request tokens unique to the test. Pass unique names (``unique()``).

- ``rollouts`` (function) fleets, versions and jobs made through the signed SDK, and waiting for a job's end
             (tests/support/rollouts.py).
- ``simulate`` (function) ``simulate(fleet, behaviors, robots=N)`` runs `fleetwave simulate` for a fleet
             (tests/support/simulate_process.py), stopped at the end of the test.

- ``launcher`` (function) starts extra servers: ``launcher.start(*flags, ports=..., wait=...)``,
             ``launcher.stop(server, signal)`` -> exit code, ``launcher.free_port()``; whatever is still
             running at the end of the test is killed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.robomaker import Given, unique
from support.rollouts import Rollouts
from support.simulate_process import SimulateProcess

from fleetwave.local import serve_process
from fleetwave.local.serve_process import ServeError, ServeProcess, free_port
from fleetwave.sdk import ApiResponse, FleetwaveClient, greengrassv2_client

# Generous caps, not expectations: start-up takes ~2 s on a quiet machine.
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0
E2E_TIME_SCALE = os.environ.get("FLEETWAVE_E2E_TIME_SCALE", "0.01")
# The key pair the SDK clients below sign with, whatever the environment says.
LOCAL_KEY_PAIR = {"FLEETWAVE_LOCAL_ACCESS_KEY_ID": "testing", "FLEETWAVE_LOCAL_SECRET_ACCESS_KEY": "testing"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def start_serve(
    *extra: str,
    ports: dict[str, int] | None = None,
    time_scale: str = E2E_TIME_SCALE,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> ServeProcess:
    """Start `fleetwave serve` (fleetwave.local.serve_process) and (by default) wait for its ready line."""
    try:
        server = serve_process.start_serve(
            *extra,
            ports=ports,
            time_scale=time_scale,
            env={**LOCAL_KEY_PAIR, **(env or {})},
            wait=wait,
            start_timeout=START_TIMEOUT_SECONDS,
        )
    except ServeError as error:
        raise AssertionError(str(error)) from None
    server.extra_env = dict(env or {})
    return server


def wait_ready(server: ServeProcess) -> str:
    try:
        return server.wait_ready(START_TIMEOUT_SECONDS)
    except ServeError as error:
        raise AssertionError(str(error)) from None


def stop_serve(server: ServeProcess, sig: int = signal.SIGTERM) -> int:
    """Signal the server and return its exit code (kills it if it does not stop)."""
    code = server.stop(sig, STOP_TIMEOUT_SECONDS)
    if server.killed:
        raise AssertionError(f"fleetwave serve did not stop on signal {sig}\n{server.output()}")
    return code


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


@pytest.fixture
def rollouts(api: Any, serve: Any) -> Rollouts:
    return Rollouts(api, serve)


@pytest.fixture
def simulate(serve: Any) -> Iterator[Callable[..., SimulateProcess]]:
    started: list[SimulateProcess] = []

    def start(
        fleet: dict[str, Any],
        behaviors: dict[str, str],
        robots: int,
        pass_time_scale: bool = True,
        extra: tuple[str, ...] = (),
    ) -> SimulateProcess:
        simulator = SimulateProcess(
            serve, fleet["name"], behaviors, robots=robots, pass_time_scale=pass_time_scale, extra=extra
        )
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()
