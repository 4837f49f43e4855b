"""The embedded MQTT broker that stands in for IoT Core messaging locally (pure Python: amqtt 0.12).

It runs on its own asyncio loop in a background thread, so synchronous code (the local runtime, tests,
the simulator) can start and stop it like any other server:

    with EmbeddedBroker(port=0) as broker:      # port 0: any free port
        url = broker.url                         # mqtt://127.0.0.1:<port>

Retained messages are always kept (one per topic, as IoT Core does; a zero-byte retained publish clears
one); QoS 0 and 1 are served; anonymous clients are allowed, because it only listens locally by default.
Retained messages live in memory: a restarted broker starts empty and the service re-publishes on the
next wave. That is the same contract the robots have with IoT Core.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from amqtt.broker import RetainedApplicationMessage

from fleetwave.local.broker_auth import BrokerAccess, FleetwaveBroker

logger = logging.getLogger("fleetwave.broker")


class LateAcknowledgements(logging.Filter):
    """amqtt waits 5 s (fixed) for a subscriber's PUBACK of a QoS 1 delivery, then logs a warning and a
    traceback ("Task failed and will be skipped"), and another warning when the PUBACK comes after all. The
    message went out: a subscriber slow to acknowledge (thousands of simulated robots on one connection,
    handed a wave's commands at once) still gets it, and a robot that missed its command is timed out by the
    engine. Those records are counted, not printed (thousands of lines at 10,000 robots), and summed up in
    one warning at most every ``every`` seconds; while ``held`` (a rehearsal or a bench with its own
    progress display), not logged at all: the command reports ``deliveries`` itself."""

    # amqtt's words for: it stopped waiting; the PUBACK came after it gave up (a waiter dropped, or one
    # already done).
    MARKERS = (
        "Timeout waiting for PUBACK",
        "Received PUBACK for unknown pending message",
        "PUBACK waiter with Id",
    )
    # The one record per delivery amqtt stopped waiting for (its protocol handler's own warning).
    DELIVERY = "Timeout waiting for PUBACK"

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self.total = 0  # records counted
        self.deliveries = 0  # deliveries amqtt stopped waiting for
        self._unreported = 0
        self._reported_at = 0.0
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not any(marker in message for marker in self.MARKERS):
            return True
        self.total += 1
        self._unreported += 1
        if message.startswith(self.DELIVERY):
            self.deliveries += 1
        if time.monotonic() - self._reported_at >= self.every:
            self.flush()
        return False

    def flush(self) -> None:
        """Sum up the records counted since the last summary, if any (the broker stopping does)."""
        if self._unreported and not self._held:
            logger.warning(
                "mqtt deliveries acknowledged late: amqtt stopped waiting for their PUBACK after 5 s "
                "(they were sent; the subscriber is slow)",
                extra={"late": self._unreported, "lateSinceStart": self.total, "deliveries": self.deliveries},
            )
        self._unreported, self._reported_at = 0, time.monotonic()

    @contextmanager
    def held(self) -> Iterator[Callable[[], int]]:
        """No summaries logged inside (a command that prints its own figures); yields a function that says
        how many deliveries amqtt stopped waiting for since the block began."""
        start = self.deliveries
        self._held += 1
        try:
            yield lambda: self.deliveries - start
        finally:
            self._held -= 1
            self._unreported = 0


LATE_ACKNOWLEDGEMENTS = LateAcknowledgements()
# The amqtt loggers that write those records (the broker's task loop, the MQTT protocol handler).
_AMQTT_LOGGERS = ("amqtt.broker", "amqtt.mqtt.protocol.handler")

DEFAULT_PORT = 1883


class BrokerStartError(OSError):
    """The broker could not listen; ``errno`` is the socket error's (EADDRINUSE: port in use)."""


@dataclass(frozen=True)
class MtlsListener:
    """The mTLS listener: its port (0: any free one), the CA client certificates must chain to, and the
    broker's own certificate and key."""

    port: int
    ca_file: str
    cert_file: str
    key_file: str


class EmbeddedBroker:
    name = "mqtt"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        quiet: bool = True,
        mtls: MtlsListener | None = None,
        access: BrokerAccess | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.mtls = mtls
        self._requested_mtls_port = mtls.port if mtls else None
        self._mtls_port: int | None = None
        self.access = access or BrokerAccess()
        self._quiet = quiet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: FleetwaveBroker | None = None
        self._on_publish: Callable[[str], None] | None = None

    def on_publish(self, callback: Callable[[str], None] | None) -> None:
        """Tell ``callback`` the topic of every publish the broker accepts from a client, in the broker's
        thread, from now on and across restarts (None: stop). A count at the broker costs the broker next
        to nothing, where one more subscriber to every topic (``make bench``'s count of robot messages
        before) doubled its deliveries. ``callback`` must be quick and must not raise."""
        self._on_publish = callback
        if self._broker is not None:
            self._broker.fleetwave_on_publish = callback

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("broker not started")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{self._client_host}:{self.port}"

    @property
    def mtls_url(self) -> str | None:
        """``mqtts://host:port`` of the mTLS listener once it listens (None without one)."""
        if self._mtls_port is None:
            return None
        return f"mqtts://{self._client_host}:{self._mtls_port}"

    @property
    def _client_host(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"[{host}]" if ":" in host else host

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        if self.running:
            return self
        for name in _AMQTT_LOGGERS:
            logging.getLogger(name).addFilter(LATE_ACKNOWLEDGEMENTS)
        if self._quiet:
            # amqtt logs every connection at INFO; at a thousand simulated robots that drowns the console.
            logging.getLogger("amqtt").setLevel(logging.WARNING)
            logging.getLogger("transitions").setLevel(logging.WARNING)
        loop = asyncio.new_event_loop()
        started: asyncio.Future[tuple[int, int | None]] = loop.create_future()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._serve, args=(loop, started), name="fleetwave-mqtt-broker", daemon=True
        )
        self._thread.start()
        try:
            self._port, self._mtls_port = asyncio.run_coroutine_threadsafe(_wait(started), loop).result(
                timeout
            )
        except Exception as error:
            self._join(timeout)
            where = f"{self.host}:{self._requested_port}"
            cause = _os_error(error)
            code = cause.errno if cause is not None else None
            reason = cause.strerror if cause is not None else str(error)
            raise BrokerStartError(code, f"MQTT broker cannot listen on {where}: {reason}") from error
        logger.info("mqtt broker listening", extra={"url": self.url})
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or not self.running:
            return
        if broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout)
            except Exception:  # a failed shutdown must not keep the process (or a test) alive
                logger.exception("mqtt broker shutdown failed")
        self._join(timeout)
        LATE_ACKNOWLEDGEMENTS.flush()
        logger.info("mqtt broker stopped")

    def restart(self, timeout: float = 10.0) -> EmbeddedBroker:
        """Stop and start again on the same port, as a broker that crashed and came back.

        Its retained messages survive (IoT Core keeps retained messages durably: a robot that reconnects
        still finds its command); sessions, subscriptions and messages in flight do not.
        """
        retained = {
            topic: (data, 1) for topic, data in self.retained_topics().items()
        }  # QoS of a retained command is 1
        self._requested_port = self.port
        if self._mtls_port is not None:
            self._requested_mtls_port = self._mtls_port
        self.stop(timeout)
        # The old listener's socket may take a moment to be released: retry the bind, boundedly.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.start(timeout)
                break
            except BrokerStartError as error:
                if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        broker, loop = self._broker, self._loop
        assert broker is not None and loop is not None

        async def restore() -> None:
            for topic, (data, qos) in retained.items():
                broker.retained_messages[topic] = RetainedApplicationMessage(None, topic, data, qos)

        asyncio.run_coroutine_threadsafe(restore(), loop).result(timeout)
        logger.info("mqtt broker restarted", extra={"url": self.url, "retained": len(retained)})
        return self

    def retained_topics(self) -> dict[str, bytes]:
        """The retained message of every topic (for diagnostics and tests)."""
        broker, loop = self._broker, self._loop
        if broker is None or loop is None:
            return {}

        async def snapshot() -> dict[str, bytes]:
            return {topic: bytes(message.data) for topic, message in broker.retained_messages.items()}

        return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the broker thread -----------------------------------------------------------------------
    def _serve(
        self, loop: asyncio.AbstractEventLoop, started: asyncio.Future[tuple[int, int | None]]
    ) -> None:
        asyncio.set_event_loop(loop)
        loop.create_task(self._start_broker(started))
        try:
            loop.run_forever()
        finally:
            # A shutdown that did not finish (amqtt still waiting on a client's delivery) must not keep the
            # listening sockets: closing the loop does not close them, and a restart could not bind its port.
            for server in (getattr(self._broker, "_servers", None) or {}).values():
                listener = getattr(server, "instance", None)
                if listener is not None:
                    listener.close()
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _start_broker(self, started: asyncio.Future[tuple[int, int | None]]) -> None:
        amqtt_log = logging.getLogger("amqtt.broker")
        saved_level = amqtt_log.level
        # A start failure is reported to start()'s caller in one line; amqtt's own traceback is noise.
        amqtt_log.setLevel(logging.CRITICAL)
        try:
            broker = FleetwaveBroker(self._config(), self.access, loop=asyncio.get_running_loop())
            broker.fleetwave_on_publish = self._on_publish
            await broker.start()
            amqtt_log.setLevel(saved_level)
            self._broker = broker
            servers = broker._servers  # noqa: SLF001 - the bound ports, for port 0
            mtls = servers["mtls"].instance.sockets[0].getsockname()[1] if "mtls" in servers else None
            started.set_result((servers["default"].instance.sockets[0].getsockname()[1], mtls))
        except BaseException as error:  # noqa: BLE001 - reported to start() in the caller's thread
            amqtt_log.setLevel(saved_level)
            if not started.done():
                started.set_exception(error)

    def _config(self) -> dict[str, Any]:
        listeners: dict[str, Any] = {
            "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"}
        }
        if self.mtls is not None:
            listeners["mtls"] = {
                "type": "tcp",
                "bind": f"{self.host}:{self._requested_mtls_port}",
                "ssl": True,
                "cafile": self.mtls.ca_file,
                "certfile": self.mtls.cert_file,
                "keyfile": self.mtls.key_file,
            }
        return {
            "listeners": listeners,
            # Only the auth plugin (no $SYS publishing, no per-packet logging): who may connect
            # (broker_auth.py, which also says what each client may do); a client that names itself keeps a
            # persistent session, like a client of IoT Core.
            "plugins": {"fleetwave.local.broker_auth.OpenAuthPlugin": {}},
        }

    def _join(self, timeout: float) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        self._broker = None


async def _wait(started: asyncio.Future[tuple[int, int | None]]) -> tuple[int, int | None]:
    return await started


def _os_error(error: BaseException | None) -> OSError | None:
    """amqtt wraps the socket error in BrokerError; dig it out to keep its errno."""
    while error is not None:
        if isinstance(error, OSError):
            return error
        error = error.__cause__ or error.__context__
    return None


SERVICE_USER = "fleetwave-service"


class _RuntimeBroker(EmbeddedBroker):
    def __init__(self, host: str, port: int, time_scale: float, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self._time_scale = time_scale

    @property
    def service_url(self) -> str:
        """The plain listener's URL for the stack's own clients: with the service secret when robots must
        use mTLS (``--mtls-only``)."""
        secret = self.access.service_secret
        if secret is None:
            return self.url
        return f"mqtt://{SERVICE_USER}:{secret}@{self._client_host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        super().start(timeout)
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else ("::1" if self.host == "::" else self.host)
        secret = self.access.service_secret
        auth = {"username": SERVICE_USER, "password": secret} if secret is not None else None
        publish_runtime_info(host, self.port, self._time_scale, timeout, auth=auth)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        # The dispatch side's MQTT channel would otherwise keep reconnecting to a broker that is gone.
        from fleetwave_service.engine.channels import reset_channel

        reset_channel()
        super().stop(timeout)


def publish_runtime_info(
    host: str, port: int, time_scale: float, timeout: float = 10.0, auth: dict[str, str] | None = None
) -> None:
    """Retain the stack's time scale on LOCAL_RUNTIME_TOPIC, for `fleetwave simulate` to follow.

    A client of its own rather than paho's ``publish.single``, which logs a spurious "Client is not
    connected" error on stderr once it has disconnected."""
    import paho.mqtt.client as paho
    from fleetwave_service.engine.messages import LOCAL_RUNTIME_TOPIC, LocalRuntimeInfo

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="fleetwave-serve-runtime-info")
    if auth:
        client.username_pw_set(auth.get("username"), auth.get("password"))
    client.connect(host, port, keepalive=int(max(timeout, 5)))
    client.loop_start()
    try:
        message = client.publish(
            LOCAL_RUNTIME_TOPIC, LocalRuntimeInfo(timeScale=time_scale).model_dump_json(), qos=1, retain=True
        )
        message.wait_for_publish(timeout)
        if not message.is_published():
            raise BrokerStartError(None, f"the broker did not take the runtime facts within {timeout:g} s")
    finally:
        client.disconnect()
        client.loop_stop()


def create_component(runtime: Any) -> EmbeddedBroker:
    """`fleetwave serve` hook (fleetwave.local.runtime): the broker on --mqtt-port (and, with the identity
    component, the mTLS listener on --mqtts-port), with the stack's time scale retained for simulators."""
    import secrets

    from fleetwave.local.claim import ClaimService

    config = runtime.config
    identity = runtime.component("identity")
    if identity is None or identity.ca is None:
        return _RuntimeBroker(config.host, config.mqtt_port, config.time_scale)
    ca = identity.ca
    claims = ClaimService(runtime)
    access = BrokerAccess(
        identify=identity.identify,
        certificate_active=identity.certificate_active,
        service_secret=secrets.token_urlsafe(24) if config.mtls_only else None,
        provisioning_template=claims.template,
        claim_handler=claims.handle,
    )
    mtls = MtlsListener(config.mqtts_port, str(ca.ca_file), str(ca.broker_cert_file), str(ca.broker_key_file))
    return _RuntimeBroker(config.host, config.mqtt_port, config.time_scale, mtls=mtls, access=access)
