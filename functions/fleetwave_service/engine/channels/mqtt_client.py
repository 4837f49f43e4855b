"""MQTT connection helpers shared by the service's local channel, the local bridge and the robot agent.

Kept apart from `engine/channels/mqtt.py` (which logs with Powertools) so that the robot agent, which runs
on robots with only pydantic and paho-mqtt installed, can import them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://[user[:password]@]host[:port]`` (default 1883) or ``mqtts://...`` (TLS, default 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise ValueError(f"not an MQTT URL: {url!r} (expected mqtt://host:port or mqtts://host:port)")
    tls = parts.scheme in ("mqtts", "ssl")
    return MqttTarget(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def redacted_url(url: str) -> str:
    """``url`` fit for logs and errors: without its password (the local stack's service secret)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username}:***@{parts.hostname}:{parts.port}").geturl()


def new_paho_client(
    target: MqttTarget,
    client_id: str,
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    clean_session: bool = True,
):  # -> paho.mqtt.client.Client
    """A paho client configured for Fleetwave: MQTT 3.1.1, clean session, backoff on reconnect.

    ``cert_file``/``key_file`` are a robot's X.509 identity for IoT Core (mqtts://<endpoint>:8883).
    ``clean_session=False``: a persistent session (the broker queues QoS 1 messages while it is away).
    """
    import paho.mqtt.client as paho

    client = paho.Client(
        callback_api_version=paho.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv311,
        clean_session=clean_session,
    )
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls or cert_file:
        client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    # IoT Core allows 100 unacknowledged QoS 1 messages per connection; the same bound suits any broker.
    client.max_inflight_messages_set(100)
    return client
