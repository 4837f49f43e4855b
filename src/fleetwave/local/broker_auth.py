"""The embedded broker's authentication and topic rules (amqtt plugins), and the broker class they run in.

Two listeners, two ways in:

- the **plain** listener (``--mqtt-port``): the stack's own clients (the status bridge, the dispatch
  channel) and, unless ``--mtls-only``, anyone, as before: a local broker has no credentials to check.
  With ``--mtls-only`` only a client that gives the stack's per-run service secret gets in.
- the **mTLS** listener (``--mqtts-port``): a client must present a certificate signed by the local CA,
  and IoT's registry decides who it is (``fleetwave.local.identity.registry_identity``): a robot may then
  publish only on its own status topic and subscribe only to its own command and links topics (the robot
  policy of infra/fleet.py, ``${iot:Connection.Thing.ThingName}`` = its client id); a claim certificate
  may only provision (``$aws/certificates/create/json``, ``$aws/provisioning-templates/.../provision/json``,
  answered by the stack itself: ``fleetwave.local.claim``). A publish it may not make disconnects it, as
  IoT Core does.

amqtt keeps the QoS 1 messages of a disconnected persistent session (``clean_session=False``) only for a
client that is not anonymous, so a client that gives a username (the status bridge) or a certificate is not.
Its own module because amqtt loads plugins by dotted path, and importing fleetwave.local.broker must not
need amqtt.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Action, Broker
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.utils import gen_client_id
from fleetwave_service.engine.iot_policies import CERTIFICATES_CREATE, PROVISION
from fleetwave_service.engine.messages import LOCAL_RUNTIME_TOPIC, command_topic, links_topic, status_topic

from fleetwave.local.identity import Identity, Refused

logger = logging.getLogger("fleetwave.broker")

IDENTITY_ATTRIBUTE = "fleetwave.identity"
# How often connected certificates are judged again: one deactivated or deleted meanwhile (rotation,
# retirement) loses its connection, as IoT Core closes the connections of a certificate it revokes.
REVALIDATE_SECONDS = 1.0
SERVICE = Identity("service")
REPLIES = ("accepted", "rejected")

# (der certificate, client id) -> Identity, or Refused
Identify = Callable[[bytes, str], Identity]
# (session, topic, payload, reply(topic, payload)): the claim exchange answers this connection only
ClaimHandler = Callable[[Any, str, bytes, Callable[[str, bytes], Awaitable[None]]], Awaitable[None]]


@dataclass
class BrokerAccess:
    """Who may connect, and what each client may do. ``identify`` None: no mTLS listener."""

    identify: Identify | None = None
    # certificate id -> still registered and ACTIVE (checked every second for connected certificates)
    certificate_active: Callable[[str], bool] | None = None
    service_secret: str | None = None  # None: the plain listener is open to anyone
    provisioning_template: str | None = None
    claim_handler: ClaimHandler | None = None

    def authenticate(self, session: Any) -> bool:
        client = session.client_id or ""
        ssl_object = session.ssl_object
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            if not der:
                logger.warning("mqtt client refused: no client certificate", extra={"clientId": client})
                return False
            if self.identify is None:
                return False
            try:
                identity = self.identify(der, client)
            except Refused as refusal:
                logger.warning("mqtt client refused", extra={"clientId": client, "reason": str(refusal)})
                return False
            if session.will_flag and not self.allowed(identity, session.will_topic or "", Action.PUBLISH):
                logger.warning(
                    "mqtt client refused: its last will is on a topic it may not publish",
                    extra={"clientId": client, "topic": session.will_topic},
                )
                return False
        elif self.service_secret is not None:
            password = session.password or ""
            if isinstance(password, bytes):
                password = password.decode("utf-8", "replace")
            if not hmac.compare_digest(password.encode(), self.service_secret.encode()):
                logger.warning(
                    "mqtt client refused: robots connect with a certificate (mTLS); this listener is the "
                    "stack's own",
                    extra={"clientId": client},
                )
                return False
            identity = SERVICE
        else:
            identity = SERVICE
        session.attributes[IDENTITY_ATTRIBUTE] = identity
        session.is_anonymous = identity is SERVICE and not session.username
        if identity.kind != "service":
            logger.info(
                "mqtt client admitted by certificate",
                extra={"clientId": client, "as": identity.kind, "certificateId": identity.certificate_id},
            )
        return True

    def allowed(self, identity: Identity | None, topic: str, action: Action) -> bool:
        if identity is None:
            return False
        if identity.kind == "service":
            return True
        if identity.kind == "robot":
            thing = identity.thing or ""
            if action == Action.PUBLISH:
                return topic == status_topic(thing)
            # The local stack's time scale (fleetwave serve only) is for every robot to follow.
            return topic in (command_topic(thing), links_topic(thing), LOCAL_RUNTIME_TOPIC)
        if identity.kind == "claim":
            requests = [CERTIFICATES_CREATE]
            if self.provisioning_template:
                requests.append(PROVISION.format(template=self.provisioning_template))
            if action == Action.PUBLISH:
                return topic in requests
            return any(topic == f"{request}/{reply}" for request in requests for reply in REPLIES)
        return False


def identity_of(session: Any) -> Identity | None:
    return session.attributes.get(IDENTITY_ATTRIBUTE) if session is not None else None


class FleetwaveBroker(Broker):
    """amqtt's broker with what Fleetwave needs of IoT Core that amqtt does differently:

    - a client that resumes a persistent session is judged on the certificate of *this* connection (amqtt
      keeps the old session's, from the previous connection);
    - retained messages go only to a client that subscribed to a matching filter itself and may receive
      them: amqtt 0.12, on a resumed session, sends the retained messages of every filter *any* client
      subscribed to (one robot's command reached another robot that reconnected);
    - a publish a client may not make disconnects it (IoT Core's rule; amqtt drops it silently), and the
      provisioning topics (``$aws/...``, which amqtt refuses from clients) reach the claim exchange.
    """

    def __init__(self, config: dict[str, Any], access: BrokerAccess, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.fleetwave_access = access
        # Told the topic of every publish the broker accepts from a client (EmbeddedBroker.on_publish).
        self.fleetwave_on_publish: Callable[[str], None] | None = None
        self._revalidation: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        if self.fleetwave_access.certificate_active is not None:
            self._revalidation = asyncio.ensure_future(self._revalidate_forever())

    async def shutdown(self) -> None:
        if self._revalidation is not None:
            self._revalidation.cancel()
            await asyncio.gather(self._revalidation, return_exceptions=True)
        await super().shutdown()

    async def _revalidate_forever(self) -> None:
        active = self.fleetwave_access.certificate_active
        if active is None:
            return
        while True:
            await asyncio.sleep(REVALIDATE_SECONDS)
            connected = [
                (session, handler, identity.certificate_id)
                for session, handler in list(self._sessions.values())
                if (identity := identity_of(session)) is not None
                and identity.certificate_id is not None
                and session.transitions.state == "connected"
            ]
            if not connected:
                continue
            certificates = [certificate for _, _, certificate in connected]
            verdicts = await asyncio.to_thread(lambda ids=certificates: [active(c) for c in ids])
            for (session, handler, certificate), valid in zip(connected, verdicts, strict=True):
                if not valid:
                    logger.warning(
                        "mqtt client disconnected: its certificate was deactivated or deleted",
                        extra={"clientId": session.client_id, "certificateId": certificate},
                    )
                    await self._stop_handler(handler)

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> Any:
        """amqtt's, with the client judged *before* it is matched to a session: amqtt copies a connecting
        client's will, credentials and TLS connection into the live session of the client id it claims, and
        takes that session over, before it authenticates it, so a refused client could cut a robot off.
        Here a refused client gets its CONNACK (not authorized) and nothing else changes."""
        try:
            handler, incoming = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except (AMQTTError, NoDataError) as error:
            raise AMQTTError(error) from error
        except MQTTError:
            await writer.close()
            raise
        if not self.fleetwave_access.authenticate(incoming):
            handler.attach(incoming, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            raise AMQTTError(f"client {incoming.client_id!r} refused")
        identity = identity_of(incoming)
        session = incoming
        if incoming.clean_session:
            if incoming.client_id:
                await self._delete_session(incoming.client_id)
            else:
                incoming.client_id = gen_client_id()
            incoming.parent = 0
        elif incoming.client_id in self._sessions:
            session, _ = self._sessions[incoming.client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain", "keep_alive"):
                setattr(session, name, getattr(incoming, name))
            session.username, session.password = incoming.username, incoming.password
            session.ssl_object = incoming.ssl_object
            session.is_anonymous = incoming.is_anonymous
            session.attributes[IDENTITY_ATTRIBUTE] = identity
            session.parent = 1
        else:
            incoming.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _publish_retained_messages_for_subscription(self, subscription: Any, session: Any) -> None:
        topic_filter, qos = subscription
        if not any(s.client_id == session.client_id for s, _ in self._subscriptions.get(topic_filter, [])):
            return
        handler = self._get_handler(session)
        if handler is None:
            return
        identity = identity_of(session)
        sends = [
            asyncio.ensure_future(
                handler.mqtt_publish(topic, message.data, min(qos, message.qos or qos), retain=True)
            )
            for topic, message in list(self._retained_messages.items())
            if self._matches(topic, topic_filter)
            and self.fleetwave_access.allowed(identity, topic, Action.RECEIVE)
        ]
        if sends:
            await asyncio.wait(sends)

    async def _topic_filtering(self, session: Any, topic: str, action: Action) -> bool:
        """What a client may subscribe to and receive (amqtt asks this for subscriptions, publishes and
        every delivery; publishing is judged in _handle_message_delivery). Here rather than in a topic
        plugin: amqtt's plugin dispatch costs a task per call, on every message to every subscriber."""
        if action == Action.PUBLISH:
            return True
        if self.fleetwave_access.allowed(identity_of(session), topic, action):
            return True
        if action == Action.SUBSCRIBE:
            logger.warning(
                "mqtt subscription refused",
                extra={"clientId": getattr(session, "client_id", None), "topic": topic},
            )
        return False

    async def _handle_message_delivery(self, session: Any, handler: Any, wait_deliver: Any) -> bool:
        if not wait_deliver.done() or wait_deliver.cancelled() or wait_deliver.exception() is not None:
            return await super()._handle_message_delivery(session, handler, wait_deliver)
        message = wait_deliver.result()
        topic = getattr(message, "topic", None) or ""
        identity = identity_of(session)
        if (
            message is not None
            and topic
            and not self.fleetwave_access.allowed(identity, topic, Action.PUBLISH)
        ):
            logger.warning(
                "mqtt client disconnected: publish not allowed",
                extra={"clientId": session.client_id, "topic": topic, "as": getattr(identity, "kind", None)},
            )
            # amqtt's message loop stops on False but leaves the connection open: close it.
            await self._stop_handler(handler)
            with contextlib.suppress(Exception):
                session.transitions.disconnect()
            return False
        on_publish = self.fleetwave_on_publish
        if on_publish is not None and message is not None and topic:
            on_publish(topic)
        claim = self.fleetwave_access.claim_handler
        if topic.startswith("$aws/") and claim is not None:

            async def reply(reply_topic: str, data: bytes) -> None:
                target = self._get_handler(session)
                if target is not None:
                    await target.mqtt_publish(reply_topic, data, 1, retain=False)

            try:
                await claim(session, topic, bytes(message.data or b""), reply)
            except Exception:
                logger.exception(
                    "claim request failed", extra={"clientId": session.client_id, "topic": topic}
                )
            return True
        return await super()._handle_message_delivery(session, handler, wait_deliver)


class OpenAuthPlugin(BaseAuthPlugin):
    """Authentication by the broker's BrokerAccess (every client, when it has none)."""

    async def authenticate(self, *, session: Any) -> bool:
        access = _access(self.context)
        if access is None:
            session.is_anonymous = not session.username
            return True
        # FleetwaveBroker judged this connection before matching it to a session (once is enough).
        return identity_of(session) is not None or access.authenticate(session)


def _access(context: Any) -> BrokerAccess | None:
    return getattr(getattr(context, "_broker_instance", None), "fleetwave_access", None)
