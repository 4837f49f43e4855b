"""What the rollout engine needs from the outside world, as small ports.

``get_ports()`` builds the real adapters from settings once per process (warm Lambdas reuse clients).
Tests and the local runtime swap any of them with ``use_ports(channel=FakeRobotChannel(), ...)``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from fleetwave_service.channels import RobotChannel, get_channel
from fleetwave_service.settings import Settings, get_settings
from fleetwave_service.storage.rollout import RolloutStore


class TaskTokens(Protocol):
    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        """SendTaskSuccess; False when the token is already finished (timed out, failed, execution over)."""
        ...

    def fail(self, token: str, error: str, cause: str) -> bool:
        """SendTaskFailure; False when the token is already finished."""
        ...


class EventSink(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None: ...


class BundleSigner(Protocol):
    def presign(self, bucket: str, key: str) -> str: ...


@dataclass(frozen=True)
class Ports:
    settings: Settings
    store: RolloutStore
    channel: RobotChannel
    tokens: TaskTokens
    events: EventSink
    signer: BundleSigner


_lock = threading.Lock()
_ports: Ports | None = None
_overrides: dict[str, Any] = {}


def _build(settings: Settings, overrides: dict[str, Any]) -> Ports:
    """Real adapters for every port not overridden (an overridden one is never built: no stray clients)."""
    from fleetwave_service.storage.rollout_aws import (
        EventBridgeEvents,
        S3BundleSigner,
        StepFunctionsTaskTokens,
    )

    factories = {
        "store": lambda: RolloutStore(settings.table_name, settings.region),
        "channel": lambda: get_channel(settings),
        "tokens": lambda: StepFunctionsTaskTokens(settings.region),
        "events": lambda: EventBridgeEvents(settings.region, settings.event_bus_name),
        "signer": lambda: S3BundleSigner(settings.region, settings.presigned_url_ttl_seconds),
    }
    built = {name: overrides[name] if name in overrides else factory() for name, factory in factories.items()}
    return Ports(settings=settings, **built)


def get_ports() -> Ports:
    global _ports
    with _lock:
        if _ports is None:
            _ports = _build(_overrides.get("settings") or get_settings(), _overrides)
        return _ports


def use_ports(**overrides: Any) -> None:
    """Replace some ports (``channel=``, ``tokens=``, ``events=``, ``signer=``, ``store=``, ``settings=``)."""
    global _ports
    unknown = set(overrides) - {"settings", "store", "channel", "tokens", "events", "signer"}
    if unknown:
        raise TypeError(f"unknown ports: {sorted(unknown)}")
    with _lock:
        _overrides.update(overrides)
        _ports = None


def reset_ports() -> None:
    """Forget built ports and overrides (tests; the local runtime after it changes settings)."""
    global _ports
    with _lock:
        _overrides.clear()
        _ports = None
