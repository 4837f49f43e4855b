"""RobotChannel over the AWS IoT Core data plane (``iot-data`` Publish, retained, QoS 1).

IoT Core's per-account publish rate (20,000/s) is far above one connection's (100/s), which is why the
service publishes through the HTTPS data-plane API rather than from one backend MQTT connection.
A wave's commands are published from a small thread pool: one HTTPS call each.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fleetwave_service.core.ids import iot_name
from fleetwave_service.engine.channels.port import ChannelError, PublishFailure, encode_command
from fleetwave_service.engine.protocol import command_topic

if TYPE_CHECKING:
    from fleetwave_service.engine.channels.port import Command

logger = Logger(service="fleetwave", child=True)

# IoT Core's MQTT message size limit.
MAX_PAYLOAD_BYTES = 128 * 1024


class IotDataChannel:
    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any | None = None,
        workers: int = 16,
    ) -> None:
        """``endpoint_url`` is the account's ``iot:Data-ATS`` endpoint; when absent it is looked up once.

        ``client`` lets tests hand in a prepared boto3 ``iot-data`` client.
        """
        self._workers = max(1, workers)
        if client is None:
            if not endpoint_url:
                endpoint_url = _describe_data_endpoint(region)
            client = boto3.client(
                "iot-data",
                endpoint_url=endpoint_url,
                region_name=region,
                config=Config(
                    max_pool_connections=self._workers,
                    retries={"mode": "standard", "max_attempts": 5},
                ),
            )
        self._client = client

    def publish_command(self, robot_name: str, command: Command) -> None:
        payload = encode_command(command)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ChannelError(robot_name, f"command is {len(payload)} bytes, over IoT Core's 128 KB limit")
        try:
            self._client.publish(
                topic=command_topic(iot_name(robot_name)), qos=1, retain=True, payload=payload
            )
        except (ClientError, BotoCoreError) as error:
            raise ChannelError(robot_name, str(error)) from error

    def publish_commands(self, items: Iterable[tuple[str, Command]]) -> list[PublishFailure]:
        batch = list(items)
        if not batch:
            return []
        with ThreadPoolExecutor(max_workers=min(self._workers, len(batch))) as pool:
            outcomes = list(pool.map(self._try_publish, batch))
        failures = [failure for failure in outcomes if failure is not None]
        if failures:
            logger.warning(
                "commands not published",
                extra={"failed": len(failures), "total": len(batch), "first": failures[0].reason},
            )
        return failures

    def clear_command(self, robot_name: str) -> None:
        # A zero-byte retained publish deletes the topic's retained message (MQTT 3.1.1 §3.3.1.3).
        try:
            self._client.publish(topic=command_topic(iot_name(robot_name)), qos=1, retain=True, payload=b"")
        except (ClientError, BotoCoreError) as error:
            raise ChannelError(robot_name, str(error)) from error

    def publish_reply(self, robot_name: str, topic: str, payload: bytes) -> None:
        try:
            self._client.publish(topic=topic, qos=1, payload=payload)
        except (ClientError, BotoCoreError) as error:
            raise ChannelError(robot_name, str(error)) from error

    def _try_publish(self, item: tuple[str, Command]) -> PublishFailure | None:
        robot_name, command = item
        try:
            self.publish_command(robot_name, command)
        except ChannelError as error:
            return PublishFailure(robot_name, error.reason)
        return None


def _describe_data_endpoint(region: str | None) -> str:
    address = boto3.client("iot", region_name=region).describe_endpoint(endpointType="iot:Data-ATS")
    return f"https://{address['endpointAddress']}"
