"""The simulated robots of a rehearsal, in a process of their own (``python -m fleetwave.rehearse.robots``).

The local stack and the robots would otherwise share one interpreter lock: under a 10,000-robot wave the
engine's work delayed the robots' timers, so the robots themselves ran slower than planned, and the
rehearsal measured both. In their own process the robots keep their time on the machine's second core,
as real robots keep theirs.

It runs `fleetwave simulate`'s simulation (the real agent for every robot, one MQTT connection) with the
rehearsal's robots and behaviours, read from a JSON file, and prints one line once it is subscribed. It
stops on SIGTERM or SIGINT, and on its own when the process that started it is gone, so nothing outlives a
rehearsal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

READY_PREFIX = "simulating "
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
PARENT_CHECK_SECONDS = 1.0


class _FirstLine:
    """Passes on the simulator's "simulating N robots ..." line, drops its per-robot lines."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._done = False

    def write(self, text: str) -> int:
        if not self._done and text.startswith(READY_PREFIX):
            self._out.write(text)
            self._out.flush()
            self._done = True
        return len(text)

    def flush(self) -> None:
        pass


async def _simulate(plan: dict[str, Any], mqtt_url: str, parent: int) -> int:
    from fleetwave.agent.simulated import Behavior
    from fleetwave.commands.simulate import run_simulation
    from fleetwave.rehearse.run import StaticFleet

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def watch_parent() -> None:
        while not stop.is_set():
            if os.getppid() != parent:
                stop.set()
            await asyncio.sleep(PARENT_CHECK_SECONDS)

    watcher = asyncio.create_task(watch_parent())
    behaviors = {name: Behavior.parse(text) for name, text in plan["behaviors"].items()}
    try:
        return await run_simulation(
            StaticFleet(plan["fleet"], list(behaviors)),
            mqtt_url=mqtt_url,
            fleet_label=plan["fleet"],
            default=Behavior("ok"),
            behaviors=behaviors,
            time_scale=float(plan["timeScale"]),
            poll_seconds=3600,
            out=_FirstLine(sys.stdout),  # type: ignore[arg-type]
            quiet=True,
            stop=stop,
        )
    finally:
        watcher.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetwave.rehearse.robots", description=__doc__)
    parser.add_argument("--mqtt-url", required=True)
    parser.add_argument("--plan", required=True, help="JSON: fleet, timeScale, behaviors {robot: behaviour}")
    parser.add_argument("--parent", type=int, required=True, help="stop when this process is gone")
    args = parser.parse_args(argv)
    plan = json.loads(Path(args.plan).read_text())
    return asyncio.run(_simulate(plan, args.mqtt_url, args.parent))


class RobotsProcess:
    """Start the robots in their own process and wait until they listen; ``stop()`` ends them."""

    def __init__(self, fleet: str, behaviors: dict[str, str], time_scale: float, mqtt_url: str) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="fleetwave-rehearsal-"))
        plan = self._workdir / "robots.json"
        plan.write_text(json.dumps({"fleet": fleet, "timeScale": time_scale, "behaviors": behaviors}))
        self._log = self._workdir / "robots.log"
        command = [
            sys.executable,
            "-m",
            "fleetwave.rehearse.robots",
            "--mqtt-url",
            mqtt_url,
            "--plan",
            str(plan),
            "--parent",
            str(os.getpid()),
        ]
        with self._log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS, stop: Any = None) -> None:
        from fleetwave.rehearse.run import RehearsalError, stopped

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stopped(stop)
            if READY_PREFIX in self.output():
                return
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the simulated robots exited with {self.process.returncode}: {self.tail()}"
                )
            time.sleep(0.05)
        self.stop()
        raise RehearsalError(f"the simulated robots did not start within {timeout:g} s: {self.tail()}")

    def output(self) -> str:
        try:
            return self._log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 5) -> str:
        return " | ".join(self.output().splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    sys.exit(main())
