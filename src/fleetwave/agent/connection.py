"""One robot's own MQTT connection (docs/robot-agent.md, "Connection").

- Client id = robot name (IoT Core's per-thing policy requires it), MQTT 3.1.1, **persistent session**
  (clean session off): the broker keeps the robot's subscriptions and queues QoS 1 messages while it is
  away. Subscriptions: the robot's command topic and its links topic, QoS 1.
- **Never gives up**: the network thread connects, and after every failure or loss waits a jittered
  exponential backoff (`backoff.Backoff`) and tries again, for as long as the agent runs. Each failure is
  logged with its reason; TLS failures say which side refused what (`describe_connect_error`).
- Reports go through the on-disk `outbox.Outbox`: written before they are published, removed when the
  broker acknowledges them (PUBACK). paho resends unacknowledged QoS 1 messages itself after a reconnect;
  after a restart the agent publishes what the outbox still holds.
- **Presence**: every connect publishes ``PresenceReport(connected=true)`` on the status topic; the last
  will (sent by the broker when the connection is lost without a DISCONNECT) is
  ``PresenceReport(connected=false)``, and a clean stop publishes the same before disconnecting.
- **Fresh links**: `request_links` publishes a `LinkRequest` on the status topic and waits for the
  `LinkReply` with its ``requestId`` on ``fleetwave/robots/<robot>/links``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from fleetwave_service.engine.channels.mqtt_client import parse_mqtt_url
from fleetwave_service.engine.messages import (
    DeploymentCommand,
    LinkReply,
    LinkRequest,
    PresenceReport,
    command_topic,
    links_topic,
    status_topic,
)
from pydantic import ValidationError

from fleetwave.agent.backoff import Backoff
from fleetwave.agent.outbox import Outbox
from fleetwave.agent.process import LinkError

logger = logging.getLogger("fleetwave.agent.connection")

KEEPALIVE_SECONDS = 30
LINK_REQUEST_TIMEOUT_SECONDS = 10.0
LINK_REQUEST_ATTEMPTS = 3

# OpenSSL alert names the broker sends when it does not accept the robot's certificate.
_REJECTED_CERTIFICATE = (
    "UNKNOWN_CA",
    "BAD_CERTIFICATE",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_REQUIRED",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_EXPIRED",
    "UNSUPPORTED_CERTIFICATE",
    "ACCESS_DENIED",
    "HANDSHAKE_FAILURE",
)


def describe_tls_text(text: str, host: str) -> str:
    """A TLS failure in words, from OpenSSL's text (what paho logs when a read fails)."""
    upper = text.upper()
    if "HOSTNAME MISMATCH" in upper or "IP ADDRESS MISMATCH" in upper:
        return f"TLS: the broker's certificate is not valid for host {host} (host name mismatch): {text}"
    if "CERTIFICATE HAS EXPIRED" in upper:
        return f"TLS: the broker's certificate has expired: {text}"
    if "CERTIFICATE VERIFY FAILED" in upper:
        return (
            "TLS: the broker's certificate is not signed by a CA this robot trusts "
            f"(unknown CA; check --ca-file): {text}"
        )
    if "ALERT" in upper and any(name in upper for name in _REJECTED_CERTIFICATE):
        return (
            "TLS: the broker rejected this robot's certificate (not registered, inactive, or signed by a CA "
            f"the broker does not trust; check --cert-file/--key-file): {text}"
        )
    return f"TLS handshake failed: {text}"


def describe_connect_error(error: BaseException, host: str, port: int) -> str:
    """Why a connection attempt failed, in words an operator can act on."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return describe_tls_text(f"certificate verify failed: {error.verify_message}", host)
    if isinstance(error, ssl.SSLError):
        return describe_tls_text(str(error.reason or error), host)
    if isinstance(error, socket.gaierror):
        return f"cannot resolve broker host {host}: {error.strerror or error}"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused by {host}:{port} (is the broker running?)"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"no answer from {host}:{port} (timed out)"
    if isinstance(error, OSError):
        return f"cannot reach {host}:{port}: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


class RobotConnection:
    def __init__(
        self,
        url: str,
        robot_name: str,
        *,
        loop: asyncio.AbstractEventLoop,
        on_command: Callable[[str, bytes], None],
        outbox: Outbox,
        tls_files: tuple[str | None, str | None, str | None] = (None, None, None),
        backoff: Backoff | None = None,
        agent_version: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``tls_files`` is (CA file, certificate file, key file); ValueError/OSError when unusable."""
        self.url = url
        self.robot_name = robot_name
        self._target = parse_mqtt_url(url)
        self._loop = loop
        self._on_command = on_command
        self._outbox = outbox
        self._backoff = backoff or Backoff(1.0, 30.0)
        self._agent_version = agent_version
        self._clock = clock
        self._status_topic = status_topic(robot_name)
        self._subscriptions = [command_topic(robot_name), links_topic(robot_name)]
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox number
        self._early_acks: set[int] = set()
        self._link_waiters: dict[str, asyncio.Future[LinkReply]] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._client = self._new_client(tls_files)

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the network thread and queue whatever the outbox kept from before (returns at once)."""
        pending = self._outbox.pending()
        if pending:
            logger.info(
                "replaying unacknowledged reports", extra={"robot": self.robot_name, "count": len(pending)}
            )
        for message in pending:
            self._publish_kept(message.number, message.topic, message.payload)
        self._thread = threading.Thread(
            target=self._run, name=f"fleetwave-agent-mqtt-{self.robot_name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye (presence offline), disconnect, and stop the network thread."""
        if self.connected.is_set():
            goodbye = PresenceReport(connected=False, agentVersion=self._agent_version, sentAt=self._clock())
            info = self._client.publish(self._status_topic, _encode(goodbye), qos=1)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self._stopping.set()
        with contextlib.suppress(Exception):
            self._client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)
        for future in list(self._link_waiters.values()):
            self._loop.call_soon_threadsafe(_cancel, future)

    def reload_identity(self) -> None:
        """Use the certificate and key files as they are now (rotation: `fleetwave robot rotate-cert`
        wrote new ones): loaded into the TLS context, then the connection is closed, and the reconnect
        presents them. The persistent session keeps subscriptions and queued messages; nothing of the
        robot's deployment state is touched. ValueError/OSError (nothing changed) when they do not load."""
        cert_file, key_file = self._identity_files
        if self._ssl_context is None or cert_file is None:
            return
        self._ssl_context.load_cert_chain(cert_file, key_file)
        logger.info("certificate changed; reconnecting with it", extra={"robot": self.robot_name})
        with contextlib.suppress(Exception):
            self._client.disconnect()

    # --- what the agent sends ------------------------------------------------------------------------
    def publish_status(self, payload: bytes) -> None:
        """A report for the service: kept on disk until the broker acknowledges it."""
        message = self._outbox.put(self._status_topic, payload)
        self._publish_kept(message.number, message.topic, message.payload)

    async def request_links(self, command: DeploymentCommand) -> LinkReply:
        """Fresh presigned URLs for a deployment (LinkError when the service does not answer or refuses)."""
        for attempt in range(1, LINK_REQUEST_ATTEMPTS + 1):
            request = LinkRequest(
                requestId=uuid.uuid4().hex,
                jobId=command.jobId,
                attempt=command.attempt,
                sentAt=self._clock(),
            )
            future: asyncio.Future[LinkReply] = self._loop.create_future()
            self._link_waiters[request.requestId] = future
            try:
                self._client.publish(self._status_topic, _encode(request), qos=1)
                reply = await asyncio.wait_for(future, LINK_REQUEST_TIMEOUT_SECONDS)
            except asyncio.TimeoutError:
                logger.warning(
                    "no answer to a link request",
                    extra={"robot": self.robot_name, "jobId": command.jobId, "attempt": attempt},
                )
                continue
            finally:
                self._link_waiters.pop(request.requestId, None)
            if reply.error:
                raise LinkError(f"the service answered: {reply.error}")
            logger.info("fresh links received", extra={"robot": self.robot_name, "jobId": command.jobId})
            return reply
        raise LinkError(
            f"no answer from the service to {LINK_REQUEST_ATTEMPTS} link requests "
            f"({LINK_REQUEST_TIMEOUT_SECONDS:g} s each)"
        )

    # --- the network thread ----------------------------------------------------------------------
    def _run(self) -> None:
        host, port = self._target.host, self._target.port
        first = True
        while not self._stopping.is_set():
            self._last_error = None
            try:
                if first:
                    self._client.connect(host, port, keepalive=KEEPALIVE_SECONDS)
                    first = False
                else:
                    self._client.reconnect()
            except Exception as error:  # any failure to connect is retried; none ends the agent
                self._last_error = describe_connect_error(error, host, port)
            else:
                while not self._stopping.is_set():
                    if self._client.loop(timeout=0.5) != paho.MQTT_ERR_SUCCESS:
                        break
            self.connected.clear()
            self.subscribed.clear()
            if self._stopping.is_set():
                break
            delay = self._backoff.next()
            logger.warning(
                "mqtt connection failed; retrying"
                if self._last_error
                else "mqtt connection lost; reconnecting",
                extra={
                    "robot": self.robot_name,
                    "broker": self.url,
                    "reason": self._last_error or "connection closed",
                    "attempt": self._backoff.attempts,
                    "retryInSeconds": round(delay, 2),
                },
            )
            self._stopping.wait(delay)

    def _new_client(self, tls_files: tuple[str | None, str | None, str | None]) -> Any:
        client = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2,
            client_id=self.robot_name,
            protocol=paho.MQTTv311,
            clean_session=False,
        )
        target = self._target
        if target.username:
            client.username_pw_set(target.username, target.password)
        ca_file, cert_file, key_file = tls_files
        self._identity_files = (cert_file, key_file)
        self._ssl_context: ssl.SSLContext | None = None
        if target.tls or cert_file:
            # Our own context (what paho's tls_set builds), kept: a rotated certificate is loaded into it.
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
            if cert_file:
                context.load_cert_chain(cert_file, key_file)
            client.tls_set_context(context)
            self._ssl_context = context
        will = PresenceReport(connected=False, agentVersion=self._agent_version)
        client.will_set(self._status_topic, _encode(will), qos=1, retain=False)
        # IoT Core allows 100 unacknowledged QoS 1 messages per connection.
        client.max_inflight_messages_set(100)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_log = self._handle_log
        return client

    def _publish_kept(self, number: int, topic: str, payload: bytes) -> None:
        # paho queues QoS 1 messages while disconnected and resends unacknowledged ones on reconnect.
        # Never call paho under self._lock: its callbacks run under paho's own mutexes (see _handle_publish).
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            logger.warning(
                "report not queued; it stays in the outbox",
                extra={"robot": self.robot_name, "reason": paho.error_string(info.rc)},
            )
            return
        with self._lock:
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                acked = True
            else:
                self._inflight[info.mid] = number
                acked = False
        if acked:
            self._outbox.ack(number)

    # --- paho callbacks (network thread) -------------------------------------------------------------
    def _handle_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            self._last_error = f"the broker refused the connection: {reason_code}"
            return
        self.connected.set()
        logger.info(
            "mqtt connected",
            extra={
                "robot": self.robot_name,
                "broker": self.url,
                "sessionPresent": bool(getattr(flags, "session_present", False)),
            },
        )
        client.subscribe([(topic, 1) for topic in self._subscriptions])
        hello = PresenceReport(connected=True, agentVersion=self._agent_version, sentAt=self._clock())
        client.publish(self._status_topic, _encode(hello), qos=1)

    def _handle_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping.is_set() and self._last_error is None and reason_code.is_failure:
            self._last_error = f"disconnected: {reason_code}"

    def _handle_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, properties: Any) -> None:
        if any(code.is_failure for code in codes):
            logger.error(
                "subscription refused (does the robot policy allow this robot's topics?)",
                extra={"robot": self.robot_name, "topics": self._subscriptions},
            )
            return
        self._backoff.reset()  # a connection that got this far is a good one
        self.subscribed.set()
        logger.info("subscribed", extra={"robot": self.robot_name, "topics": self._subscriptions})

    def _handle_publish(
        self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        with self._lock:
            number = self._inflight.pop(mid, None)
            if number is None:
                self._early_acks.add(mid)
                if len(self._early_acks) > 10_000:  # acks of messages that are not the outbox's
                    self._early_acks.clear()
        if number is not None:
            self._outbox.ack(number)

    def _handle_message(self, client: Any, userdata: Any, message: Any) -> None:
        topic, payload = message.topic, bytes(message.payload)
        # RuntimeError: the loop is closing, the process is on its way out.
        with contextlib.suppress(RuntimeError):
            if topic == self._subscriptions[1]:
                self._loop.call_soon_threadsafe(self._deliver_links, payload)
            else:
                self._loop.call_soon_threadsafe(self._on_command, topic, payload)

    def _handle_log(self, client: Any, userdata: Any, level: int, text: str) -> None:
        if level == paho.MQTT_LOG_ERR or "SSL" in text:
            self._last_error = describe_tls_text(text, self._target.host) if "SSL" in text else text

    # --- on the event loop ---------------------------------------------------------------------------
    def _deliver_links(self, payload: bytes) -> None:
        try:
            reply = LinkReply.model_validate_json(payload)
        except ValidationError:
            logger.warning("unreadable link reply ignored", extra={"robot": self.robot_name})
            return
        future = self._link_waiters.get(reply.requestId)
        if future is not None and not future.done():
            future.set_result(reply)


def _encode(message: Any) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def _cancel(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.cancel()
