"""Fixtures for state-machine tests: the real ASL executed by moto, the Lambda steps run in process.

- ``aws``      the shared fixture, with moto's Step Functions really executing ASL and Lambda without docker.
- ``rollout``  the machine deployed (local/stepfunctions.py), the API starting executions on it, a
               FakeRobotChannel with SimulatedRobots behind it: ``rollout.given`` (API givens),
               ``rollout.robots``, ``rollout.run(fleet, version, ...)``, ``rollout.time_scale(0.015)``.
- ``events``   a FakeEvents in the engine's ports: ``events.published`` is (detail-type, detail, resources).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes.channel import FakeRobotChannel
from fakes.robomaker import Given
from fakes.rollout import FakeEvents
from moto.core.config import default_user_config
from support.rollout_harness import RolloutDriver, SimulatedRobots

from fleetwave.local import lambda_adapter
from fleetwave.local.stepfunctions import deploy_rollout_machine


@pytest.fixture
def aws(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # mock_aws reads these at call time: Step Functions executes the ASL, Lambda needs no docker.
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    monkeypatch.setitem(default_user_config, "lambda", {"use_docker": False})
    yield aws


class RolloutFixture(RolloutDriver):
    def __init__(self, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._monkeypatch = monkeypatch

    def time_scale(self, scale: float) -> None:
        """Scale every wait of the engine (FLEETWAVE_TIME_SCALE), as the local runtime does."""
        from fleetwave_service.core.settings import reset_settings
        from fleetwave_service.engine.ports import use_ports

        self._monkeypatch.setenv("FLEETWAVE_TIME_SCALE", str(scale))
        reset_settings()
        use_ports()  # rebuild the ports with the new settings, keeping the fake channel


@pytest.fixture
def rollout(aws: Any, api: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[RolloutFixture]:
    from fleetwave_service.core.settings import get_settings, reset_settings
    from fleetwave_service.engine import starter as rollout_starter
    from fleetwave_service.engine.ports import reset_ports, use_ports

    channel = FakeRobotChannel()
    robots = SimulatedRobots(channel)
    machine_arn = deploy_rollout_machine(None, get_settings())
    monkeypatch.setenv("FLEETWAVE_STATE_MACHINE_ARN", machine_arn)
    reset_settings()
    rollout_starter.reset()
    reset_ports()
    use_ports(channel=channel)
    try:
        yield RolloutFixture(
            monkeypatch,
            api=api,
            given=Given(api, aws),
            robots=robots,
            stepfunctions=aws.client("stepfunctions"),
            machine_arn=machine_arn,
        )
    finally:
        reset_ports()
        lambda_adapter.uninstall()


@pytest.fixture
def events(rollout: RolloutFixture) -> FakeEvents:
    from fleetwave_service.engine.ports import use_ports

    sink = FakeEvents()
    use_ports(events=sink)
    return sink
