"""The device registry port: robots are IoT things, fleets are IoT thing groups.

DynamoDB rows are the source of truth for the API; the registry mirrors them so that IoT policies,
Greengrass-style targets (``thing/NAME``, ``thinggroup/NAME``) and the IoT console see the same robots
and fleets. The adapter is the IoT control plane, which moto also serves, so the API behaves the same
under moto, under ``fleetwave serve`` and in AWS.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from fleetwave_service.core.settings import get_settings

ARCHITECTURE_ATTRIBUTE = "architecture"


class Registry(Protocol):
    def create_thing(self, name: str, architecture: str) -> None: ...

    def delete_thing(self, name: str) -> None: ...

    def create_thing_group(self, name: str) -> None: ...

    def delete_thing_group(self, name: str) -> None: ...

    def add_thing_to_group(self, thing: str, group: str) -> None: ...

    def remove_thing_from_group(self, thing: str, group: str) -> None: ...


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class IotRegistry:
    """The IoT control-plane adapter. Every call is idempotent, so a retried API request is safe."""

    def __init__(self, client: Any = None) -> None:
        self._client = client or boto3.client("iot", region_name=get_settings().region)

    def create_thing(self, name: str, architecture: str) -> None:
        attributes = {"attributes": {ARCHITECTURE_ATTRIBUTE: architecture}}
        try:
            self._client.create_thing(thingName=name, attributePayload=attributes)
        except ClientError as error:
            if _code(error) != "ResourceAlreadyExistsException":
                raise
            # A thing left over from an earlier robot of this name: adopt it with the new attributes.
            self._client.update_thing(thingName=name, attributePayload=dict(attributes, merge=False))

    def delete_thing(self, name: str) -> None:
        try:
            self._client.delete_thing(thingName=name)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise

    def create_thing_group(self, name: str) -> None:
        try:
            self._client.create_thing_group(thingGroupName=name)
        except ClientError as error:
            if _code(error) != "ResourceAlreadyExistsException":
                raise

    def delete_thing_group(self, name: str) -> None:
        try:
            self._client.delete_thing_group(thingGroupName=name)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise

    def add_thing_to_group(self, thing: str, group: str) -> None:
        self._client.add_thing_to_thing_group(thingGroupName=group, thingName=thing)

    def remove_thing_from_group(self, thing: str, group: str) -> None:
        try:
            self._client.remove_thing_from_thing_group(thingGroupName=group, thingName=thing)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    global _registry
    with _lock:
        if _registry is None:
            _registry = IotRegistry()
        return _registry


def set_registry(registry: Registry | None) -> None:
    """Swap the adapter (tests use a fake; None goes back to IoT on next use)."""
    global _registry
    with _lock:
        _registry = registry
