"""MqttChannel (the local dispatch path) against the embedded broker."""

from __future__ import annotations

import socket

import pytest
from fakes.mqtt import eventually
from fleetwave_service.core.settings import Settings
from fleetwave_service.engine.channels import ChannelError, get_channel, reset_channel
from fleetwave_service.engine.channels.mqtt import MqttChannel
from fleetwave_service.engine.channels.mqtt_client import parse_mqtt_url
from fleetwave_service.engine.messages import AbortCommand, DeploymentCommand, command_topic, parse_command

from fleetwave.local.broker import EmbeddedBroker

WAIT = 20


def command(attempt: int = 1) -> DeploymentCommand:
    return DeploymentCommand(
        jobId="deployment-aaaaaaaaaaaa", attempt=attempt, timeoutSeconds=300, deadline=2e9, issuedAt=1e9
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mqtt_channel_publishes_a_wave_and_every_robot_has_its_command_retained():
    with EmbeddedBroker(port=0) as broker:
        channel = MqttChannel(broker.url, connect_timeout=WAIT)
        try:
            failures = channel.publish_commands([(f"robot-{i}", command()) for i in range(300)])
        finally:
            channel.close()
        assert failures == []
        assert eventually(lambda: len(broker.retained_topics()) == 300)
        assert parse_command(broker.retained_topics()[command_topic("robot-299")]) == command()


def test_mqtt_channel_publishes_an_abort_over_the_deploy_command():
    with EmbeddedBroker(port=0) as broker:
        channel = MqttChannel(broker.url, connect_timeout=WAIT)
        try:
            channel.publish_command("robot-1", command())
            channel.publish_command(
                "robot-1", AbortCommand(jobId="deployment-aaaaaaaaaaaa", attempt=1, issuedAt=1e9 + 5)
            )
        finally:
            channel.close()
        assert eventually(
            lambda: parse_command(broker.retained_topics()[command_topic("robot-1")]).kind == "abort"
        )


def test_mqtt_channel_without_a_broker_fails_with_channel_error():
    channel = MqttChannel(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=0.5)
    try:
        with pytest.raises(ChannelError) as raised:
            channel.publish_command("robot-1", command())
        assert "cannot connect" in raised.value.reason
        failures = channel.publish_commands([("robot-1", command()), ("robot-2", command())])
        assert [f.robot_name for f in failures] == ["robot-1", "robot-2"]
    finally:
        channel.close()


def test_mqtt_channel_reconnects_after_the_broker_restarts():
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    channel = MqttChannel(broker.url, connect_timeout=WAIT, ack_timeout=WAIT)
    try:
        channel.publish_command("robot-1", command(attempt=1))
        broker.stop()
        broker = EmbeddedBroker(port=port).start()
        # When the service publishes again, the same channel reconnects and the command is retained
        channel.publish_command("robot-1", command(attempt=2))
        assert eventually(lambda: command_topic("robot-1") in broker.retained_topics())
        assert parse_command(broker.retained_topics()[command_topic("robot-1")]).attempt == 2
    finally:
        channel.close()
        broker.stop()


def test_get_channel_builds_one_mqtt_channel_per_broker_url():
    reset_channel()
    try:
        settings = Settings(channel="mqtt", mqtt_url="mqtt://127.0.0.1:1")
        first = get_channel(settings)
        assert isinstance(first, MqttChannel)
        assert get_channel(settings) is first
        assert get_channel(Settings(channel="mqtt", mqtt_url="mqtt://127.0.0.1:2")) is not first
    finally:
        reset_channel()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1883", ("127.0.0.1", 1883, False, None)),
        ("mqtt://broker.local", ("broker.local", 1883, False, None)),
        ("mqtts://user:p%40ss@iot.example:8883", ("iot.example", 8883, True, "user")),
    ],
)
def test_parse_mqtt_url_reads_host_port_tls_and_user(url, expected):
    target = parse_mqtt_url(url)
    assert (target.host, target.port, target.tls, target.username) == expected


@pytest.mark.parametrize("url", ["http://127.0.0.1:1883", "127.0.0.1:1883", "mqtt://"])
def test_parse_mqtt_url_rejects_what_is_not_an_mqtt_url(url):
    with pytest.raises(ValueError, match="not an MQTT URL"):
        parse_mqtt_url(url)


def test_mqtt_channel_publishes_a_large_wave_while_robots_are_subscribed():
    # Acknowledgements arrive while the wave is still being published: this once deadlocked.
    with EmbeddedBroker(port=0) as broker:
        listener = _CommandListener(broker.port)
        channel = MqttChannel(broker.url, connect_timeout=WAIT, ack_timeout=60)
        try:
            failures = channel.publish_commands([(f"robot-{i}", command()) for i in range(600)])
            assert failures == []
            assert eventually(lambda: len(listener.topics) == 600)
        finally:
            channel.close()
            listener.close()


class _CommandListener:
    def __init__(self, port: int) -> None:
        import queue

        import paho.mqtt.client as paho

        self.topics: set[str] = set()
        ready: queue.Queue[bool] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="listener")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("fleetwave/robots/+/deployment", qos=1)
        self.client.on_subscribe = lambda *a: ready.put(True)
        self.client.on_message = lambda c, u, m: self.topics.add(m.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        ready.get(timeout=WAIT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
