"""The local stand-in for the IoT rule -> SQS -> status Lambda path.

In AWS, an IoT rule ``SELECT *, topic(3) AS robotName FROM 'fleetwave/robots/+/status'`` sends each status
report to an SQS queue, and the status Lambda consumes the queue in batches, answering with
``batchItemFailures`` for the records it could not process (those are received again, and after
``max_receives`` attempts go to a dead-letter queue).

`StatusBridge` does the same in process: it subscribes to ``fleetwave/robots/+/status`` on the local
broker, turns every message into the record the rule produces (the report JSON plus ``robotName`` taken
from the topic, never from the payload: a robot can only publish on its own topic, so the topic is the
only name the service can trust), and hands batches of up to ``batch_size`` records (or whatever arrived
within ``linger_seconds``) to the handler as an SQS event. Failed records are retried after a delay;
records that fail ``max_receives`` times are kept in `dead_letters`.

Delivery is as durable as IoT Core's rule: the bridge keeps a persistent MQTT session (a fixed client id,
``clean_session=False``, QoS 1), so reports published while it is disconnected, or restarting, wait for it
on the broker and arrive when it reconnects; a report delivered twice (QoS 1 is at least once) is applied
once by the status handler (engine/reports.py). A broker restart loses its sessions, as an IoT Core outage
would lose messages in flight: the robot's timeout (sweep) is then the safety net, as it is for a report a
robot never sends.
"""

from __future__ import annotations

import hashlib
import heapq
import importlib.util
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleetwave_service.core.settings import partition_of
from fleetwave_service.engine.channels.mqtt_client import new_paho_client, parse_mqtt_url, redacted_url
from fleetwave_service.engine.messages import STATUS_TOPIC_FILTER, robot_from_topic
from fleetwave_service.lambdas import (
    BY_NAME,
    HANDLERS_MODULE,
    STATUS_BATCH_SIZE,
    STATUS_BATCHING_WINDOW_SECONDS,
    load_handler,
)

logger = logging.getLogger("fleetwave.bridge")

Handler = Callable[[dict[str, Any], Any], Any]

STATUS_FUNCTION_NAME = "fleetwave-status"
# One bridge per broker: its session (and the reports queued for it) is found again under this id.
BRIDGE_CLIENT_ID = "fleetwave-status-bridge"


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context`` (Powertools reads these attributes)."""

    function_name: str = STATUS_FUNCTION_NAME
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = f"/aws/lambda/{STATUS_FUNCTION_NAME}"
    log_stream_name: str = "local"
    timeout_seconds: float = 60.0
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def rule_record(topic: str, payload: bytes) -> dict[str, Any] | None:
    """What the IoT rule sends to SQS for one status message, or None when the rule would drop it."""
    robot = robot_from_topic(topic)
    if robot is None or not topic.endswith("/status"):
        return None
    try:
        report = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(report, dict):
        return None
    return {**report, "robotName": robot}


@dataclass(order=True)
class _Pending:
    ready_at: float
    order: int
    record: dict[str, Any] = field(compare=False)
    receives: int = field(default=0, compare=False)


class StatusBridge:
    name = "bridge"

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        mqtt_url: str | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        queue_name: str = "fleetwave-status",
        batch_size: int = 10,
        linger_seconds: float = 0.05,
        max_receives: int = 3,
        retry_delay_seconds: float = 0.5,
        client_id: str = BRIDGE_CLIENT_ID,
    ) -> None:
        """``handler(event, context)`` defaults to the real status Lambda handler, imported on start."""
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size must be between 1 and 10,000 (SQS event source limits)")
        self._handler = handler
        self._mqtt_url = mqtt_url
        self._client_id = client_id
        self._region = region
        partition = partition_of(region)
        self._queue_arn = f"arn:{partition}:sqs:{region}:{account_id}:{queue_name}"
        self._function_arn = f"arn:{partition}:lambda:{region}:{account_id}:function:{STATUS_FUNCTION_NAME}"
        self._batch_size = batch_size
        self._linger = linger_seconds
        self._max_receives = max_receives
        self._retry_delay = retry_delay_seconds
        self._queue: list[_Pending] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._client: Any = None
        self._subscribed = threading.Event()
        self.dead_letters: list[dict[str, Any]] = []
        self.delivered = 0
        self.invocations = 0

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> StatusBridge:
        if self._handler is None:
            self._handler = load_handler(BY_NAME["status"].handler)
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="fleetwave-status-bridge", daemon=True)
        self._worker.start()
        if self._mqtt_url is not None:
            self._connect(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self.drain(timeout)
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None

    def reconnect(self, timeout: float = 10.0) -> None:
        """Reconnect to the broker now (after it restarted) and wait until subscribed again.

        A restarted broker has no session for the bridge: a report published before the bridge subscribes
        again has no subscriber. Reconnecting at once (robots back off at least a second before they
        reconnect) keeps that window to the bridge's own reconnect."""
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        client.loop_stop()
        self._subscribed.clear()
        self._connect(timeout)

    def __enter__(self) -> StatusBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- input -----------------------------------------------------------------------------------
    def submit(self, topic: str, payload: bytes) -> bool:
        """Queue one status message as the rule would; False when the rule would drop it."""
        body = rule_record(topic, payload)
        if body is None:
            logger.warning(
                "status message dropped: not a JSON object on a robot status topic", extra={"topic": topic}
            )
            return False
        record = self._sqs_record(body)
        with self._condition:
            heapq.heappush(self._queue, _Pending(time.monotonic(), next(self._order), record))
            self._condition.notify_all()
        return True

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record was handled or dead-lettered (retries included)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._worker is None:
                    return False
                self._condition.wait(min(remaining, 0.1))
        return True

    # --- the consumer ----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            finally:
                with self._condition:
                    self._in_flight -= len(batch)
                    self._condition.notify_all()

    def _next_batch(self) -> list[_Pending] | None:
        with self._condition:
            while True:
                if self._stopping and not self._queue:
                    return None
                now = time.monotonic()
                if self._queue and self._queue[0].ready_at <= now:
                    break
                wait = self._queue[0].ready_at - now if self._queue else None
                self._condition.wait(wait)
            batch = [heapq.heappop(self._queue)]
            self._in_flight += 1
            # The window runs from when the batch's first record became receivable, as the event source's
            # poller (which polls while the function runs) starts gathering then: records that waited while
            # the previous batch was handled do not wait a whole window more.
            linger_until = batch[0].ready_at + self._linger
            while len(batch) < self._batch_size:
                now = time.monotonic()
                if self._queue and self._queue[0].ready_at <= now:
                    batch.append(heapq.heappop(self._queue))
                    self._in_flight += 1
                    continue
                if now >= linger_until or self._stopping:
                    break
                self._condition.wait(linger_until - now)
            return batch

    def _deliver(self, batch: list[_Pending]) -> None:
        now_ms = str(int(time.time() * 1000))
        for item in batch:
            item.receives += 1
            attributes = item.record["attributes"]
            attributes["ApproximateReceiveCount"] = str(item.receives)
            attributes.setdefault("ApproximateFirstReceiveTimestamp", now_ms)
        event = {"Records": [item.record for item in batch]}
        context = LambdaContext(invoked_function_arn=self._function_arn)
        self.invocations += 1
        assert self._handler is not None
        try:
            response = self._handler(event, context)
            failed_ids = _failed_ids(response)
        except Exception:  # SQS semantics: an error fails the whole batch
            logger.exception(
                "status handler raised; the whole batch will be retried", extra={"records": len(batch)}
            )
            failed_ids = {item.record["messageId"] for item in batch}
        retry: list[_Pending] = []
        for item in batch:
            if item.record["messageId"] not in failed_ids:
                self.delivered += 1
            elif item.receives >= self._max_receives:
                self.dead_letters.append(item.record)
                logger.error(
                    "status record dead-lettered",
                    extra={"messageId": item.record["messageId"], "receives": item.receives},
                )
            else:
                item.ready_at = time.monotonic() + self._retry_delay
                retry.append(item)
        if retry:
            with self._condition:
                for item in retry:
                    heapq.heappush(self._queue, item)
                self._condition.notify_all()

    def _sqs_record(self, body: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(body, separators=(",", ":"))
        return {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": f"local-{uuid.uuid4().hex}",
            "body": text,
            "attributes": {
                "ApproximateReceiveCount": "0",
                "SentTimestamp": str(int(time.time() * 1000)),
                "SenderId": "fleetwave-local-iot-rule",
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }

    # --- MQTT --------------------------------------------------------------------------------------
    def _connect(self, timeout: float) -> None:
        assert self._mqtt_url is not None
        target = parse_mqtt_url(self._mqtt_url)
        client = new_paho_client(target, self._client_id, clean_session=False)
        if not target.username:
            # A named client: the broker keeps a persistent session only for a client that is not anonymous.
            client.username_pw_set(self._client_id)

        def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
            if not reason_code.is_failure:
                # The session may be new (first start, or a broker that restarted): subscribe every time;
                # a resumed session keeps its subscription and delivers what was queued meanwhile.
                client.subscribe(STATUS_TOPIC_FILTER, qos=1)
                logger.info("status bridge connected", extra={"sessionPresent": bool(flags.session_present)})

        def on_subscribe(client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
            if all(not code.is_failure for code in reason_codes):
                self._subscribed.set()

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            self.submit(message.topic, message.payload)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect_async(target.host, target.port, keepalive=30)
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(timeout):
            self.stop(0)
            raise ConnectionError(f"status bridge could not subscribe on {redacted_url(self._mqtt_url)}")
        logger.info("status bridge subscribed", extra={"broker": redacted_url(self._mqtt_url)})


def _failed_ids(response: Any) -> set[str]:
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures") or []
    return {str(item.get("itemIdentifier")) for item in failures if isinstance(item, dict)}


def create_component(runtime: Any) -> StatusBridge | None:
    """`fleetwave serve` hook (fleetwave.local.runtime): feed the status handler from the broker."""
    if importlib.util.find_spec(HANDLERS_MODULE) is None:
        logger.warning("status handler not available; robot status reports are not processed")
        return None
    # Batches as the deployed event source makes them (its window is a wait: scaled like every other).
    return StatusBridge(
        mqtt_url=runtime.service_mqtt_url,
        region=runtime.config.region,
        account_id=runtime.config.account_id,
        batch_size=STATUS_BATCH_SIZE,
        linger_seconds=STATUS_BATCHING_WINDOW_SECONDS * runtime.config.time_scale,
    )
