"""What the rollout engine needs from the outside world, as small ports.

``get_ports()`` builds the real adapters from settings once per process (warm Lambdas reuse clients).
Tests and the local runtime swap any of them with ``use_ports(channel=FakeRobotChannel(), ...)``.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from fleetwave_service.core.settings import Settings, get_settings
from fleetwave_service.engine.aws import EventBridgeEvents, S3BundleSigner, StepFunctionsTaskTokens
from fleetwave_service.engine.channels import RobotChannel, get_channel
from fleetwave_service.engine.store import RolloutStore


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


class Ports:
    """The engine's ports, each built on first use: the API's cancel hook never builds a robot channel."""

    def __init__(self, settings: Settings, overrides: dict[str, Any]) -> None:
        self.settings = settings
        self._built: dict[str, Any] = dict(overrides)
        self._lock = threading.Lock()

    def _port(self, name: str) -> Any:
        port = self._built.get(name)
        if port is None:
            with self._lock:
                port = self._built.get(name)
                if port is None:
                    port = self._built[name] = self._factory(name)
        return port

    def _factory(self, name: str) -> Any:
        s = self.settings
        if name == "store":
            return RolloutStore(s.table_name)
        if name == "channel":
            return get_channel(s)
        if name == "tokens":
            return StepFunctionsTaskTokens(s.region)
        if name == "events":
            return EventBridgeEvents(s.region, s.event_bus_name)
        if name == "signer":
            # Links expire on the local runtime's clock too (time scale 1 in AWS).
            return S3BundleSigner(s.region, max(1, round(s.presigned_url_ttl_seconds * s.time_scale)))
        raise KeyError(name)

    @property
    def store(self) -> RolloutStore:
        return self._port("store")

    @property
    def channel(self) -> RobotChannel:
        return self._port("channel")

    @property
    def tokens(self) -> TaskTokens:
        return self._port("tokens")

    @property
    def events(self) -> EventSink:
        return self._port("events")

    @property
    def signer(self) -> BundleSigner:
        return self._port("signer")


_lock = threading.Lock()
_ports: Ports | None = None
_overrides: dict[str, Any] = {}


def get_ports() -> Ports:
    """The process-wide ports; rebuilt when the settings were reset (new environment), overrides kept."""
    global _ports
    with _lock:
        settings = _overrides.get("settings") or get_settings()
        if _ports is None or _ports.settings is not settings:
            overrides = {k: v for k, v in _overrides.items() if k != "settings"}
            _ports = Ports(settings, overrides)
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
