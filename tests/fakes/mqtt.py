"""Test helpers for the robot-messaging suites: a status-topic collector and a fake fleet lookup."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from fleetwave_service.engine.messages import STATUS_TOPIC_FILTER, StatusReport

WAIT = 30.0


def eventually(condition: Callable[[], object], timeout: float = WAIT) -> bool:
    """Poll until ``condition()`` holds (True) or ``timeout`` passes (False). For outcomes, not durations."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run_scenario(scenario: Callable[[], Any], *close: Any) -> Any:
    """``asyncio.run(scenario())``, then ``close()`` each helper (collectors, channels) whatever happened."""
    try:
        return asyncio.run(scenario())
    finally:
        for helper in close:
            helper.close()


async def until(condition: Callable[[], object], timeout: float = WAIT) -> None:
    """The asyncio form of `eventually`; raises TimeoutError when the condition never holds."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


class FakeFleetLookup:
    """The fleet as the API would list it; tests register and deregister robots while it runs."""

    def __init__(self, robots: list[str]) -> None:
        self.names = list(robots)
        self.fail = False

    def robots(self) -> list[str]:
        from fleetwave.commands.simulate import FleetLookupError

        if self.fail:
            raise FleetLookupError("ThrottlingException: slow down (fake)")
        return list(self.names)


class StatusCollector:
    """Subscribes to every robot's status topic, as the service's IoT rule does."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.reports: dict[str, list[StatusReport]] = {}
        self._lock = threading.Lock()
        ready: queue.Queue[bool] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"collector-{id(self)}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(STATUS_TOPIC_FILTER, qos=1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: ready.put(True)
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        ready.get(timeout=WAIT)

    def _on_message(self, client, userdata, message) -> None:
        robot = message.topic.split("/")[2]
        report = StatusReport.model_validate_json(message.payload)
        with self._lock:
            self.reports.setdefault(robot, []).append(report)

    def final(self, robot: str) -> StatusReport | None:
        """The robot's last terminal report (InSync or Failed), None while it has none."""
        with self._lock:
            done = [r for r in self.reports.get(robot, []) if r.status.value != "Deploying"]
        return done[-1] if done else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
