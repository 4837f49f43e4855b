"""A thousand simulated robots share one MQTT connection and all answer a wave of retained commands."""

from __future__ import annotations

import asyncio
import io

import pytest
from fakes.mqtt import FakeFleetLookup, StatusCollector, run_scenario, until
from fleetwave_service.engine.channels.mqtt import MqttChannel
from fleetwave_service.engine.messages import DeploymentCommand

from fleetwave.agent.simulated import Behavior
from fleetwave.commands.simulate import run_simulation
from fleetwave.local.broker import EmbeddedBroker

pytestmark = pytest.mark.slow

ROBOTS = 1000


def command() -> DeploymentCommand:
    return DeploymentCommand(
        jobId="deployment-aaaaaaaaaaaa", attempt=1, timeoutSeconds=300, deadline=4e9, issuedAt=1e9
    )


def test_simulate_a_thousand_robots_all_reach_a_final_status():
    names = [f"robot-{i:04d}" for i in range(ROBOTS)]
    behaviors = {name: Behavior.parse("fail:EtagMismatch") for name in names[::10]}
    with EmbeddedBroker(port=0) as broker:
        collector = StatusCollector(broker.port)
        service = MqttChannel(broker.url, connect_timeout=30, ack_timeout=120)

        async def scenario() -> int:
            stop = asyncio.Event()
            simulation = asyncio.create_task(
                run_simulation(
                    FakeFleetLookup(names),
                    mqtt_url=broker.url,
                    fleet_label="big",
                    default=Behavior("ok"),
                    behaviors=behaviors,
                    step_seconds=0.01,
                    poll_seconds=60,
                    out=io.StringIO(),
                    quiet=True,
                    stop=stop,
                )
            )
            # The wave is published while the simulator runs: live delivery, one subscription
            failures = await asyncio.to_thread(service.publish_commands, [(n, command()) for n in names])
            assert failures == []
            await until(lambda: all(collector.final(name) for name in names), timeout=240)
            stop.set()
            return await simulation

        status = run_scenario(scenario, collector, service)
    assert status == 0
    finals = {name: collector.final(name) for name in names}
    failed = {name for name, report in finals.items() if report.status.value == "Failed"}
    assert failed == set(behaviors)
    assert all(finals[name].failureCode == "EtagMismatch" for name in failed)
