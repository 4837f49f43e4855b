"""Faults a real network brings, mid-wave, on the whole local stack: broker restarted, simulator killed.

The stack runs in this process (fleetwave.local.runtime.LocalRuntime: moto executing the ASL, the embedded
broker, the status bridge, the SigV4 gateway) so the test can restart its broker; the robots are
`fleetwave simulate` (the real agent code) in a subprocess, killed and started again like a real process.
Each case ends with the job terminal, every robot's outcome right, counters equal to the per-robot rows.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fakes.robomaker import Given, unique
from support.invariants import assert_rollout_consistent, job_id_of
from support.simulate_process import SimulateProcess, wait_for

from fleetwave.local.runtime import LocalConfig, LocalRuntime
from fleetwave.local.serve_process import free_port
from fleetwave.sdk import FleetwaveClient

pytestmark = pytest.mark.chaos

TIME_SCALE = "0.01"
ROBOTS = 6
# Production seconds (scaled by TIME_SCALE): each robot's deployment takes 3 s, its timeout is 30 s.
DEPLOY_SECONDS = 300
TIMEOUT_SECONDS = 3000
FINAL = ("Succeeded", "Failed", "Canceled")
DEADLINE = 150.0


@dataclass
class Stack:
    runtime: LocalRuntime
    client: FleetwaveClient
    given: Given
    time_scale: str = TIME_SCALE

    @property
    def api_url(self) -> str:
        return self.runtime.api_url

    @property
    def mqtt_url(self) -> str:
        return self.runtime.mqtt_url

    def call(self, operation: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.request(operation, {} if body is None else body, **kwargs)

    def client_for(self, service: str) -> Any:
        return self.runtime.aws.client(service)


class _Aws:
    def __init__(self, runtime: LocalRuntime) -> None:
        self._runtime = runtime

    def client(self, service: str) -> Any:
        return self._runtime.aws.client(service)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    config = LocalConfig(
        port=free_port(), aws_port=free_port(), mqtt_port=free_port(), time_scale=float(TIME_SCALE)
    )
    runtime = LocalRuntime(config)
    runtime.start()
    try:
        client = FleetwaveClient(runtime.api_url, credentials=("testing", "testing"))
        holder = Stack(runtime, client, None)  # type: ignore[arg-type]
        holder.given = Given(holder, _Aws(runtime), token_prefix=unique("chaos"))
        yield holder
    finally:
        runtime.stop()


def _fleet(stack: Stack) -> tuple[dict, list[str]]:
    fleet = stack.given.fleet(unique("chaos"))
    names = [unique("bot") for _ in range(ROBOTS)]
    for name in names:
        stack.given.robot(name, fleet=fleet)
    return fleet, names


def _job_status(stack: Stack, job: dict) -> str:
    return stack.given.ok("describeDeploymentJob", {"job": job["arn"]})["status"]


def _start(stack: Stack, fleet: dict) -> dict:
    version = stack.given.application_version(unique("nav"))
    return stack.given.job(
        fleet,
        version,
        deploymentConfig={
            "concurrentDeploymentPercentage": 50,
            "robotDeploymentTimeoutInSeconds": TIMEOUT_SECONDS,
        },
    )


def _assert_every_robot_in_sync(stack: Stack, job: dict, names: list[str]) -> None:
    final = wait_for("the job to end", lambda: _job_status(stack, job) in FINAL and job, DEADLINE)
    described = stack.given.ok("describeDeploymentJob", {"job": final["arn"]})
    assert described["status"] == "Succeeded", described
    outcome = assert_rollout_consistent(job_id_of(job), set(names))
    assert outcome == dict.fromkeys(names, "InSync")


def test_broker_restarted_mid_wave_loses_no_robot(stack: Stack) -> None:
    # Given six robots in two waves, each deployment taking a few seconds
    fleet, names = _fleet(stack)
    simulator = SimulateProcess(
        stack, fleet["name"], dict.fromkeys(names, f"delay:{DEPLOY_SECONDS}"), robots=ROBOTS
    )
    try:
        job = _start(stack, fleet)
        # When the broker restarts while the first wave is deploying
        wait_for("the first wave to deploy", lambda: len(simulator.commanded()) >= 3)
        stack.runtime.restart_broker()
        # Then every robot still ends InSync, counted once
        _assert_every_robot_in_sync(stack, job, names)
    finally:
        simulator.stop()


def test_simulator_killed_and_restarted_mid_wave_loses_no_robot(stack: Stack) -> None:
    # Given six robots in two waves, deploying
    fleet, names = _fleet(stack)
    behaviours = dict.fromkeys(names, f"delay:{DEPLOY_SECONDS}")
    first = SimulateProcess(stack, fleet["name"], behaviours, robots=ROBOTS)
    try:
        job = _start(stack, fleet)
        wait_for("the first wave to deploy", lambda: len(first.commanded()) >= 3)
    finally:
        # When the robots' process is killed mid-wave (no goodbye)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
    # and started again: each robot finds its retained command
    second = SimulateProcess(stack, fleet["name"], behaviours, robots=ROBOTS)
    try:
        # Then every robot ends InSync, counted once
        _assert_every_robot_in_sync(stack, job, names)
    finally:
        second.stop()
