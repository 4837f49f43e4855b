"""`fleetwave simulate` in a thread of this process: the real agent for every robot of a fleet, behind a
start/stop handle (``fleetwave demo`` and ``fleetwave bench`` run their robots with it)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Mapping
from typing import Any


class BackgroundSimulator:
    """`fleetwave simulate` in a thread of this process: the real agent for every robot of the fleet."""

    def __init__(
        self,
        client: Any,
        fleet_name: str,
        mqtt_url: str,
        behaviors: Mapping[str, str],
        *,
        time_scale: float,
        default: str = "ok",
        step_seconds: float = 2.0,
        poll_seconds: float = 0.5,
        log: io.TextIOBase | None = None,
        mtls_endpoint: str | None = None,
    ) -> None:
        from fleetwave.agent.simulated import Behavior
        from fleetwave.commands.simulate import ApiFleetLookup

        self._lookup = ApiFleetLookup(client, fleet_name)
        self._mqtt_url = mqtt_url
        self._mtls_endpoint = mtls_endpoint  # each robot on serve's mTLS listener (simulate --mtls)
        self.mtls = mtls_endpoint is not None
        self._behaviors = {name: Behavior.parse(text) for name, text in behaviors.items()}
        self._default = Behavior.parse(default)
        self._time_scale = time_scale
        self._step_seconds = step_seconds
        self._poll_seconds = poll_seconds
        self._log = log or io.StringIO()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self.exit_status: int | None = None

    def start(self) -> None:
        self._thread.start()
        self._started.wait(30)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def output(self) -> str:
        getvalue = getattr(self._log, "getvalue", None)
        return getvalue() if getvalue else ""

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        from fleetwave.commands.simulate import run_simulation

        async def main() -> int:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            return await run_simulation(
                self._lookup,
                mqtt_url=self._mqtt_url,
                fleet_label=self._lookup.fleet_name,
                default=self._default,
                behaviors=self._behaviors,
                time_scale=self._time_scale,
                step_seconds=self._step_seconds,
                poll_seconds=self._poll_seconds,
                out=self._log,  # type: ignore[arg-type]
                quiet=True,
                stop=self._stop,
                mtls_endpoint=self._mtls_endpoint,
            )

        try:
            self.exit_status = asyncio.run(main())
        finally:
            self._started.set()
