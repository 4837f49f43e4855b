"""The embedded MQTT broker: what robots and the service rely on (retained commands, QoS 1, clean stop)."""

from __future__ import annotations

import asyncio
import errno
import queue
import socket
import threading

import paho.mqtt.client as paho
import pytest
from fakes.mqtt import eventually
from fleetwave_service.engine.channels.mqtt import MqttChannel
from fleetwave_service.engine.messages import (
    COMMAND_TOPIC_FILTER,
    DeploymentCommand,
    command_topic,
    parse_command,
    status_topic,
)

from fleetwave.local.broker import EmbeddedBroker

WAIT = 20  # generous upper bound for a message to arrive; tests never assert on durations


def retained(broker: EmbeddedBroker) -> set[str]:
    return set(broker.retained_topics())


def command(job: str = "deployment-aaaaaaaaaaaa", attempt: int = 1) -> DeploymentCommand:
    return DeploymentCommand(jobId=job, attempt=attempt, timeoutSeconds=300, deadline=2e9, issuedAt=1e9)


class Subscriber:
    """A robot-like MQTT client that records (topic, payload, retain, qos) of what it receives."""

    def __init__(self, url_port: int, topic_filter: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool, int]] = queue.Queue()
        self.subscribed: queue.Queue[bool] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{id(self)}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.put(True)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain, m.qos))
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()
        assert self.subscribed.get(timeout=WAIT)

    def next(self) -> tuple[str, bytes, bool, int]:
        return self.messages.get(timeout=WAIT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker():
    with EmbeddedBroker(port=0) as running:
        yield running


@pytest.fixture
def channel(broker):
    publisher = MqttChannel(broker.url, connect_timeout=WAIT)
    yield publisher
    publisher.close()


def test_broker_delivers_the_retained_command_to_a_robot_that_subscribes_later(broker, channel):
    # Given a command published while the robot is offline
    channel.publish_command("robot-1", command())
    assert eventually(lambda: command_topic("robot-1") in retained(broker))
    # When the robot connects and subscribes to its command topic
    robot = Subscriber(broker.port, command_topic("robot-1"))
    try:
        topic, payload, retain, qos = robot.next()
    finally:
        robot.close()
    # Then it receives that command, flagged retained, at QoS 1
    assert topic == "fleetwave/robots/robot-1/deployment"
    assert (retain, qos) == (True, 1)
    assert parse_command(payload) == command()


def test_broker_retains_only_the_latest_command_per_robot(broker, channel):
    channel.publish_command("robot-1", command(attempt=1))
    channel.publish_command("robot-1", command(attempt=2))
    channel.publish_command("robot-2", command(attempt=1))
    expected = {command_topic("robot-1"), command_topic("robot-2")}
    assert eventually(lambda: retained(broker) == expected)
    assert eventually(lambda: parse_command(broker.retained_topics()[command_topic("robot-1")]).attempt == 2)
    robot = Subscriber(broker.port, command_topic("robot-1"))
    try:
        _, payload, _, _ = robot.next()
    finally:
        robot.close()
    assert parse_command(payload).attempt == 2


def test_broker_clear_command_removes_the_retained_command(broker, channel):
    channel.publish_command("robot-1", command())
    channel.publish_command("robot-2", command())
    channel.clear_command("robot-1")
    assert eventually(lambda: retained(broker) == {command_topic("robot-2")})


def test_broker_delivers_live_status_reports_at_qos1(broker):
    service = Subscriber(broker.port, "fleetwave/robots/+/status")
    robot = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="robot-3")
    robot.connect("127.0.0.1", broker.port)
    robot.loop_start()
    try:
        info = robot.publish(status_topic("robot-3"), b'{"seq": 0}', qos=1)
        info.wait_for_publish(WAIT)
        topic, payload, retain, qos = service.next()
    finally:
        robot.disconnect()
        robot.loop_stop()
        service.close()
    assert (topic, payload, retain, qos) == ("fleetwave/robots/robot-3/status", b'{"seq": 0}', False, 1)


def test_broker_wildcard_subscriber_receives_every_retained_command(broker, channel):
    failures = channel.publish_commands([(f"robot-{i}", command()) for i in range(50)])
    assert failures == []
    assert eventually(lambda: len(retained(broker)) == 50)
    simulator = Subscriber(broker.port, COMMAND_TOPIC_FILTER)
    try:
        topics = {simulator.next()[0] for _ in range(50)}
    finally:
        simulator.close()
    assert topics == {command_topic(f"robot-{i}") for i in range(50)}


def test_broker_on_a_port_in_use_fails_with_eaddrinuse(broker):
    with pytest.raises(OSError) as raised:
        EmbeddedBroker(port=broker.port).start()
    assert raised.value.errno == errno.EADDRINUSE
    assert str(broker.port) in str(raised.value)


def test_broker_stop_closes_the_port():
    broker = EmbeddedBroker(port=0).start()
    port = broker.port
    broker.stop()
    assert not broker.running
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=WAIT):
        pass


@pytest.mark.chaos
def test_a_restarted_broker_keeps_its_retained_messages_on_the_same_port():
    with EmbeddedBroker(port=0) as broker:
        port = broker.port
        channel = MqttChannel(broker.url)
        try:
            channel.publish_command("robot-1", command())
            assert eventually(lambda: command_topic("robot-1") in broker.retained_topics())
        finally:
            channel.close()
        broker.restart()
        assert broker.port == port
        assert parse_command(broker.retained_topics()[command_topic("robot-1")]).jobId == command().jobId


def test_a_robot_resuming_its_session_gets_only_its_own_retained_command(broker, channel):
    # amqtt 0.12, on a resumed persistent session, sends the retained messages of every filter any client
    # subscribed to: robot A got robot B's command once. Fleetwave's broker sends a client only its own.
    received: queue.Queue[str] = queue.Queue()

    def robot(name: str, subscribe: bool) -> paho.Client:
        """A robot connected (and subscribed to its command topic), once the broker said so: what follows
        must not race the connection (a command published before robot A resumed would also be queued for
        its session, and delivered twice)."""
        ready = threading.Event()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        client.username_pw_set(name)  # a named client keeps its session
        client.on_message = lambda c, u, message: received.put(f"{name} <- {message.topic}")
        if subscribe:
            client.on_connect = lambda c, *_: c.subscribe(command_topic(name), qos=1)
            client.on_subscribe = lambda *_: ready.set()
        else:
            client.on_connect = lambda *_: ready.set()
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        assert ready.wait(WAIT), f"{name} not connected"
        return client

    robot_a = robot("robot-a", subscribe=True)
    robot_b = robot("robot-b", subscribe=True)
    channel.publish_command("robot-b", command())
    assert received.get(timeout=WAIT) == f"robot-b <- {command_topic('robot-b')}"
    robot_a.disconnect()
    robot_a.loop_stop()

    # When robot A comes back to its session
    robot_a = robot("robot-a", subscribe=False)
    channel.publish_command("robot-a", command(attempt=2))

    # Then it receives its own command only, never robot B's (which amqtt sent on reconnect, before it)
    assert received.get(timeout=WAIT) == f"robot-a <- {command_topic('robot-a')}"
    assert received.empty()
    for client in (robot_a, robot_b):
        client.disconnect()
        client.loop_stop()


def test_a_broker_whose_shutdown_hangs_still_frees_its_port_for_the_restart():
    # Given a running broker whose amqtt shutdown never finishes (a client's delivery it waits on forever)
    with EmbeddedBroker(port=0) as running:
        port = running.port

        async def hangs() -> None:
            await asyncio.Event().wait()

        running._broker.shutdown = hangs  # type: ignore[union-attr]

        # When it is restarted (its stop gives up on the shutdown after the timeout)
        running.restart(timeout=2)

        # Then the new broker listens on the same port and takes clients
        assert running.port == port
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_broker_tells_its_observer_each_accepted_publish_across_a_restart_and_never_a_replay(broker, channel):
    # Given an observer of the broker's publishes
    seen: list[str] = []
    broker.on_publish(seen.append)
    # When the service publishes a retained command and a robot reports
    channel.publish_command("robot-1", command())
    robot = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="robot-1")
    robot.connect("127.0.0.1", broker.port)
    robot.loop_start()
    try:
        robot.publish(status_topic("robot-1"), b'{"seq": 0}', qos=1).wait_for_publish(WAIT)
        # Then it is told each topic once, as the broker accepts it
        assert eventually(lambda: seen == [command_topic("robot-1"), status_topic("robot-1")])
        # And a subscriber that receives the retained command later is no publish
        late = Subscriber(broker.port, COMMAND_TOPIC_FILTER)
        late.next()
        late.close()
        # And a restarted broker keeps telling it; None stops it
        robot.disconnect()
        robot.loop_stop()
        broker.restart()
        robot.reconnect()
        robot.loop_start()
        robot.publish(status_topic("robot-1"), b'{"seq": 1}', qos=1).wait_for_publish(WAIT)
        assert eventually(lambda: len(seen) == 3)
        broker.on_publish(None)
        robot.publish(status_topic("robot-1"), b'{"seq": 2}', qos=1).wait_for_publish(WAIT)
    finally:
        robot.disconnect()
        robot.loop_stop()
    assert seen == [command_topic("robot-1"), status_topic("robot-1"), status_topic("robot-1")]
