"""RobotChannel over a plain MQTT broker (the local runtime's embedded broker, or any MQTT 3.1.1 broker).

One connection per process, shared by every publisher; paho's network thread reconnects on its own, and
QoS 1 messages published while it is down are sent when it is back. A publish returns only once the broker
has acknowledged it (PUBACK), so a wave is only marked dispatched when its commands are really retained.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from fleetwave_service.core.ids import iot_name
from fleetwave_service.engine.channels.mqtt_client import new_paho_client, parse_mqtt_url, redacted_url
from fleetwave_service.engine.channels.port import ChannelError, PublishFailure, encode_command
from fleetwave_service.engine.protocol import command_topic

if TYPE_CHECKING:
    from fleetwave_service.engine.channels.port import Command

logger = Logger(service="fleetwave", child=True)


class MqttChannel:
    def __init__(self, url: str, *, connect_timeout: float = 10.0, ack_timeout: float = 30.0) -> None:
        self._target = parse_mqtt_url(url)
        self._url = redacted_url(url)  # for logs and errors
        self._connect_timeout = connect_timeout
        self._ack_timeout = ack_timeout
        self._lock = threading.Lock()
        self._client = None
        self._connected = threading.Event()
        self._ever_connected = False
        self._waiters: dict[int, threading.Event] = {}
        self._early_acks: set[int] = set()
        self._abandoned: set[int] = set()

    # --- the RobotChannel port -------------------------------------------------------------------
    def publish_command(self, robot_name: str, command: Command) -> None:
        mid, acked = self._send(robot_name, encode_command(command))
        self._await_ack(robot_name, mid, acked, self._ack_timeout)

    def publish_commands(self, items: Iterable[tuple[str, Command]]) -> list[PublishFailure]:
        # Send all, then collect the acknowledgements: the broker works on many at once.
        batch = list(items)
        pending: list[tuple[str, int, threading.Event]] = []
        failures: list[PublishFailure] = []
        try:
            self._connection()
        except ChannelError as error:
            return [PublishFailure(robot_name, error.reason) for robot_name, _ in batch]
        for robot_name, command in batch:
            try:
                mid, acked = self._send(robot_name, encode_command(command))
            except ChannelError as error:
                failures.append(PublishFailure(robot_name, error.reason))
                continue
            pending.append((robot_name, mid, acked))
        deadline = time.monotonic() + self._ack_timeout
        for robot_name, mid, acked in pending:
            try:
                self._await_ack(robot_name, mid, acked, max(0.0, deadline - time.monotonic()))
            except ChannelError as error:
                failures.append(PublishFailure(robot_name, error.reason))
        if failures:
            logger.warning(
                "commands not acknowledged",
                extra={"failed": len(failures), "first": failures[0].reason, "broker": self._url},
            )
        return failures

    def clear_command(self, robot_name: str) -> None:
        # A zero-byte retained publish deletes the topic's retained message (MQTT 3.1.1 §3.3.1.3).
        mid, acked = self._send(robot_name, b"")
        self._await_ack(robot_name, mid, acked, self._ack_timeout)

    def publish_reply(self, robot_name: str, topic: str, payload: bytes) -> None:
        mid, acked = self._send(robot_name, payload, topic=topic, retain=False)
        self._await_ack(robot_name, mid, acked, self._ack_timeout)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    # --- plumbing --------------------------------------------------------------------------------
    def _send(
        self, robot_name: str, payload: bytes, *, topic: str | None = None, retain: bool = True
    ) -> tuple[int, threading.Event]:
        import paho.mqtt.client as paho

        client = self._connection()
        acked = threading.Event()
        # Never call paho while holding self._lock: paho runs on_publish under its own message mutex,
        # which publish() also takes. The PUBACK may beat the registration below; on_publish then
        # leaves the mid in _early_acks.
        info = client.publish(topic or command_topic(iot_name(robot_name)), payload, qos=1, retain=retain)
        # Not connected right now is fine: paho keeps QoS 1 messages and sends them on reconnect.
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise ChannelError(robot_name, f"paho refused the publish: {paho.error_string(info.rc)}")
        with self._lock:
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                acked.set()
            else:
                self._waiters[info.mid] = acked
        return info.mid, acked

    def _await_ack(self, robot_name: str, mid: int, acked: threading.Event, timeout: float) -> None:
        if acked.wait(timeout):
            return
        with self._lock:
            if self._waiters.pop(mid, None) is not None:
                self._abandoned.add(mid)
        if acked.is_set():
            return
        raise ChannelError(robot_name, f"no PUBACK from {self._url} within {timeout:g} s")

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        with self._lock:
            waiter = self._waiters.pop(mid, None)
            if waiter is not None:
                waiter.set()
            elif mid in self._abandoned:
                self._abandoned.discard(mid)
            else:
                self._early_acks.add(mid)

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if not reason_code.is_failure:
            self._ever_connected = True
            self._connected.set()
            logger.info("mqtt channel connected", extra={"broker": self._url})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self._connected.clear()
        # After close() the client is no longer ours: that disconnect was asked for, not a warning.
        log = logger.warning if client is self._client else logger.info
        log("mqtt channel disconnected", extra={"broker": self._url, "reason": str(reason_code)})

    def _connection(self):
        with self._lock:
            client = self._client
            if client is None:
                client = new_paho_client(self._target, f"fleetwave-dispatch-{uuid.uuid4().hex[:12]}")
                client.on_connect = self._on_connect
                client.on_disconnect = self._on_disconnect
                client.on_publish = self._on_publish
                client.connect_async(self._target.host, self._target.port, keepalive=30)
                client.loop_start()
                self._client = client
        # Only the first connection is awaited; after that paho queues while it reconnects.
        if not self._ever_connected and not self._connected.wait(self._connect_timeout):
            raise ChannelError("*", f"cannot connect to MQTT broker {self._url}")
        return client
