"""Channels: the only code that talks to robots (house style: one room per concern).

``get_channel(settings)`` picks the adapter: ``"iot"`` publishes through the IoT data plane (AWS, or moto),
``"mqtt"`` through an MQTT broker (the local runtime's embedded broker). Adapters are imported lazily so the
Lambda asset never needs paho-mqtt.
"""

from __future__ import annotations

from fleetwave_service.core.settings import Settings
from fleetwave_service.engine.channels.port import (
    ChannelError,
    PublishFailure,
    RobotChannel,
    encode_command,
)

__all__ = [
    "ChannelError",
    "PublishFailure",
    "RobotChannel",
    "encode_command",
    "get_channel",
    "reset_channel",
]

_channels: dict[tuple[str, str], RobotChannel] = {}


def get_channel(settings: Settings) -> RobotChannel:
    """The process-wide channel for these settings; built once so warm Lambdas reuse connections."""
    key = (settings.channel, settings.mqtt_url if settings.channel == "mqtt" else settings.iot_data_endpoint)
    channel = _channels.get(key)
    if channel is None:
        channel = _build(settings)
        _channels[key] = channel
    return channel


def reset_channel() -> None:
    """Forget built channels (tests, and the local runtime when it restarts its broker)."""
    for channel in _channels.values():
        close = getattr(channel, "close", None)
        if close is not None:
            close()
    _channels.clear()


def _build(settings: Settings) -> RobotChannel:
    if settings.channel == "iot":
        from fleetwave_service.engine.channels.iot_data import IotDataChannel

        return IotDataChannel(endpoint_url=settings.iot_data_endpoint or None, region=settings.region)
    if settings.channel == "mqtt":
        from fleetwave_service.engine.channels.mqtt import MqttChannel

        return MqttChannel(settings.mqtt_url)
    raise ValueError(f"unknown channel {settings.channel!r}: expected 'iot' or 'mqtt'")
