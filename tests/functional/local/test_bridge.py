"""The status bridge: robot reports on the broker -> SQS-shaped batches -> the status handler."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as paho
import pytest
from fakes.mqtt import eventually
from fleetwave_service.engine.messages import ProgressStep, RobotReportStatus, StatusReport, status_topic

from fleetwave.local.bridge import StatusBridge, rule_record
from fleetwave.local.broker import EmbeddedBroker

WAIT = 20


class FakeStatusHandler:
    """Records every SQS event; reports as failed the records ``fails(body, receive_count)`` picks."""

    def __init__(self, fails=lambda body, receives: False, raises_first: int = 0) -> None:
        self.events: list[dict] = []
        self.contexts: list[object] = []
        self._fails = fails
        self._raises_left = raises_first
        self._lock = threading.Lock()

    def __call__(self, event, context):
        with self._lock:
            self.events.append(json.loads(json.dumps(event)))
            self.contexts.append(context)
            if self._raises_left:
                self._raises_left -= 1
                raise RuntimeError("DynamoDB throttled (fake)")
        failures = [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if self._fails(json.loads(record["body"]), int(record["attributes"]["ApproximateReceiveCount"]))
        ]
        return {"batchItemFailures": failures}

    @property
    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for event in self.events for r in event["Records"]]


def report(seq: int = 0, **extra) -> bytes:
    message = StatusReport(
        jobId="deployment-aaaaaaaaaaaa",
        attempt=1,
        seq=seq,
        step=ProgressStep.VALIDATING,
        status=RobotReportStatus.DEPLOYING,
        sentAt=1e9,
    )
    return json.dumps({**json.loads(message.model_dump_json(exclude_none=True)), **extra}).encode()


def robot_client(port: int, name: str) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


@pytest.fixture
def broker():
    with EmbeddedBroker(port=0) as running:
        yield running


def test_bridge_takes_the_robot_name_from_the_topic_never_from_the_payload(broker):
    handler = FakeStatusHandler()
    with StatusBridge(handler, mqtt_url=broker.url) as bridge:
        robot = robot_client(broker.port, "robot-7")
        try:
            # Given robot-7 publishing a report that claims to come from robot-9
            info = robot.publish(status_topic("robot-7"), report(robotName="robot-9"), qos=1)
            info.wait_for_publish(WAIT)
            # PUBACK only means the broker has it: wait for the bridge to have handed it over
            assert eventually(lambda: bridge.delivered == 1)
        finally:
            robot.disconnect()
            robot.loop_stop()
    # Then the handler sees the report as robot-7's, with the report's own fields intact
    body = handler.bodies[0]
    assert body["robotName"] == "robot-7"
    assert (body["jobId"], body["seq"], body["step"]) == ("deployment-aaaaaaaaaaaa", 0, "Validating")


def test_bridge_event_has_the_sqs_record_shape_the_lambda_receives(broker):
    handler = FakeStatusHandler()
    with StatusBridge(handler, region="eu-west-1", account_id="111122223333") as bridge:
        bridge.submit(status_topic("robot-1"), report())
        assert bridge.drain(WAIT)
    record = handler.events[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:eu-west-1:111122223333:fleetwave-status"
    assert record["awsRegion"] == "eu-west-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"messageId", "receiptHandle", "md5OfBody", "messageAttributes"} <= set(record)
    context = handler.contexts[0]
    assert context.function_name == "fleetwave-status" and context.get_remaining_time_in_millis() > 0


def test_bridge_delivers_every_report_in_batches_of_at_most_ten(broker):
    handler = FakeStatusHandler()
    with StatusBridge(handler, mqtt_url=broker.url, linger_seconds=0.2) as bridge:
        robot = robot_client(broker.port, "robot-1")
        try:
            for seq in range(25):
                robot.publish(status_topic("robot-1"), report(seq), qos=1)
            assert eventually(lambda: bridge.delivered == 25)
        finally:
            robot.disconnect()
            robot.loop_stop()
    assert sorted(body["seq"] for body in handler.bodies) == list(range(25))
    assert max(len(event["Records"]) for event in handler.events) <= 10


def test_bridge_retries_the_records_the_handler_reports_as_failed():
    # The handler fails robot-2's record on its first receive only
    handler = FakeStatusHandler(fails=lambda body, receives: body["robotName"] == "robot-2" and receives < 2)
    with StatusBridge(handler, retry_delay_seconds=0.01) as bridge:
        bridge.submit(status_topic("robot-1"), report())
        bridge.submit(status_topic("robot-2"), report())
        assert bridge.drain(WAIT)
    received = [b["robotName"] for b in handler.bodies]
    assert received.count("robot-1") == 1 and received.count("robot-2") == 2
    assert bridge.delivered == 2 and bridge.dead_letters == []


def test_bridge_dead_letters_a_record_that_keeps_failing():
    handler = FakeStatusHandler(fails=lambda body, receives: body["robotName"] == "robot-2")
    with StatusBridge(handler, retry_delay_seconds=0.01, max_receives=3) as bridge:
        bridge.submit(status_topic("robot-1"), report())
        bridge.submit(status_topic("robot-2"), report())
        assert bridge.drain(WAIT)
    assert [json.loads(r["body"])["robotName"] for r in bridge.dead_letters] == ["robot-2"]
    assert bridge.dead_letters[0]["attributes"]["ApproximateReceiveCount"] == "3"
    assert bridge.delivered == 1


def test_bridge_retries_the_whole_batch_when_the_handler_raises():
    handler = FakeStatusHandler(raises_first=1)
    with StatusBridge(handler, retry_delay_seconds=0.01) as bridge:
        bridge.submit(status_topic("robot-1"), report())
        assert bridge.drain(WAIT)
    assert [b["robotName"] for b in handler.bodies] == ["robot-1", "robot-1"]
    assert bridge.delivered == 1


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("fleetwave/robots/robot-1/status", b"not json"),
        ("fleetwave/robots/robot-1/status", b"[1, 2]"),
        ("fleetwave/robots/robot-1/deployment", b"{}"),
        ("elsewhere/robot-1/status", b"{}"),
    ],
)
def test_bridge_drops_what_the_iot_rule_would_not_forward(topic, payload):
    assert rule_record(topic, payload) is None
    handler = FakeStatusHandler()
    with StatusBridge(handler) as bridge:
        assert bridge.submit(topic, payload) is False
        assert bridge.drain(WAIT)
    assert handler.events == []


@pytest.mark.chaos
def test_reports_published_while_the_bridge_is_down_arrive_when_it_reconnects(broker):
    # Given a bridge that subscribed once (its persistent session now exists on the broker) and went away
    handler = FakeStatusHandler()
    with StatusBridge(handler, mqtt_url=broker.url):
        pass
    robot = robot_client(broker.port, "robot-3")
    try:
        # When the robot reports while no bridge is connected (the broker acknowledges each one)
        for seq in range(12):
            robot.publish(status_topic("robot-3"), report(seq), qos=1).wait_for_publish(WAIT)
        # and a bridge comes back under the same session
        with StatusBridge(handler, mqtt_url=broker.url) as bridge:
            assert eventually(lambda: {b["seq"] for b in handler.bodies} == set(range(12)), WAIT)
            # and reports keep flowing after the reconnect
            robot.publish(status_topic("robot-3"), report(12), qos=1).wait_for_publish(WAIT)
            assert eventually(lambda: 12 in {b["seq"] for b in handler.bodies}, WAIT)
            assert bridge.dead_letters == []
    finally:
        robot.disconnect()
        robot.loop_stop()
    # Then none was lost (QoS 1 may repeat one: the status handler applies it once, test_chaos.py)
    assert sorted({b["seq"] for b in handler.bodies}) == list(range(13))
    assert all(b["robotName"] == "robot-3" for b in handler.bodies)
