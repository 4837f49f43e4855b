"""One MQTT connection shared by many agents running on one asyncio loop.

paho runs the socket in its own thread; every message is handed to the asyncio loop with
``call_soon_threadsafe``, so agents never see threads. Subscriptions are renewed on every reconnect
(clean session), and on each (re)subscribe the broker re-delivers the retained commands: agents ignore
the ones they already ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from fleetwave_service.engine.channels.mqtt_client import new_paho_client, parse_mqtt_url

logger = logging.getLogger("fleetwave.agent.mqtt")


class MqttLink:
    def __init__(
        self,
        url: str,
        *,
        loop: asyncio.AbstractEventLoop,
        on_message: Callable[[str, bytes], None],
        subscriptions: Iterable[str] = (),
        client_id: str | None = None,
        max_inflight: int = 1000,
        tls_files: tuple[str | None, str | None, str | None] | None = None,
    ) -> None:
        """``tls_files`` is (CA file, certificate file, key file) for a robot's X.509 identity."""
        self.url = url
        self._target = parse_mqtt_url(url)
        self._loop = loop
        self._on_message = on_message
        self._subscriptions = list(dict.fromkeys(subscriptions))
        self._client_id = client_id or f"fleetwave-agents-{uuid.uuid4().hex[:8]}"
        self._max_inflight = max_inflight
        self._tls_files = tls_files or (None, None, None)
        self._client: Any = None
        self._lock = threading.Lock()
        self._pending_subacks: dict[int, threading.Event] = {}
        self._early_subacks: set[int] = set()
        self._first_subscribe = threading.Event()
        self.connected = threading.Event()

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe (blocking); raises ConnectionError when the broker cannot be reached."""
        ca_file, cert_file, key_file = self._tls_files
        client = new_paho_client(
            self._target, self._client_id, ca_file=ca_file, cert_file=cert_file, key_file=key_file
        )
        # A simulator publishes bursts of reports; the IoT Core per-connection bound does not apply locally.
        client.max_inflight_messages_set(self._max_inflight)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        self._client = client
        client.connect_async(self._target.host, self._target.port, keepalive=30)
        client.loop_start()
        if not self._first_subscribe.wait(timeout):
            self.stop()
            raise ConnectionError(f"cannot connect and subscribe to MQTT broker {self.url}")

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def subscribe(self, topic_filter: str, timeout: float = 10.0) -> bool:
        """Add a subscription (kept across reconnects); True once the broker acknowledged it."""
        if topic_filter not in self._subscriptions:
            self._subscriptions.append(topic_filter)
        if self._client is None or not self.connected.is_set():
            return False
        return self._subscribe(self._client, [topic_filter]).wait(timeout)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        client = self._client
        if client is None:
            raise ConnectionError("MQTT link is stopped")
        # Never blocks: paho queues QoS 1 messages, including while it reconnects.
        client.publish(topic, payload, qos=qos, retain=retain)

    # --- paho callbacks (network thread) ---------------------------------------------------------
    def _subscribe(self, client: Any, filters: list[str]) -> threading.Event:
        acked = threading.Event()
        if not filters:
            acked.set()
            return acked
        # paho is never called under self._lock (its callbacks run under paho's own mutexes).
        _, mid = client.subscribe([(topic_filter, 1) for topic_filter in filters])
        with self._lock:
            if mid in self._early_subacks:
                self._early_subacks.discard(mid)
                acked.set()
            else:
                self._pending_subacks[mid] = acked
        return acked

    def _handle_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            logger.warning("mqtt connect refused", extra={"broker": self.url, "reason": str(reason_code)})
            return
        self.connected.set()
        logger.info("mqtt connected", extra={"broker": self.url, "subscriptions": len(self._subscriptions)})
        if not self._subscriptions:
            self._first_subscribe.set()
            return
        # Large fleets subscribe in chunks: one SUBSCRIBE packet per hundred filters.
        for start in range(0, len(self._subscriptions), 100):
            self._subscribe(client, self._subscriptions[start : start + 100])

    def _handle_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.connected.clear()
        if self._client is not None:
            logger.warning("mqtt disconnected; reconnecting", extra={"broker": self.url})

    def _handle_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, properties: Any) -> None:
        if any(code.is_failure for code in codes):
            logger.error("subscription refused", extra={"broker": self.url})
            return
        with self._lock:
            acked = self._pending_subacks.pop(mid, None)
            if acked is None:
                self._early_subacks.add(mid)
            else:
                acked.set()
        self._first_subscribe.set()

    def _handle_message(self, client: Any, userdata: Any, message: Any) -> None:
        # RuntimeError: the loop is closing, the process is on its way out.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_message, message.topic, bytes(message.payload))
