"""`fleetwave simulate` as a user runs it, in a subprocess, for end-to-end tests.

simulator = SimulateProcess(serve, fleet_name, {"r1": "fail:EtagMismatch"}, robots=2)  # waits until it runs
simulator.output(); simulator.commanded(); simulator.stop()
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from support.waiting import wait_for


class SimulateProcess:
    """`fleetwave simulate` for one fleet against a `fleetwave serve` (the e2e ``serve`` fixture).

    ``robots``: wait until it simulates that many (it stops and raises when it does not start).
    ``pass_time_scale``: give it the stack's time scale (else it reads the one serve retains on its broker).
    """

    def __init__(
        self,
        serve: Any,
        fleet_name: str,
        behaviors: dict[str, str] | None = None,
        *,
        robots: int | None = None,
        pass_time_scale: bool = True,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.log = Path(tempfile.mkdtemp(prefix="fleetwave-simulate-")) / "simulate.log"
        command = [
            sys.executable, "-m", "fleetwave.cli", "simulate",
            "--endpoint", serve.api_url, "--mqtt-url", serve.mqtt_url, "--fleet", fleet_name,
            "--poll-seconds", "0.2",
        ]  # fmt: skip
        if pass_time_scale:
            command += ["--time-scale", serve.time_scale]
        for robot, behavior in (behaviors or {}).items():
            command += ["--behavior", f"{robot}={behavior}"]
        command += list(extra)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        if robots is not None:
            ready = f"simulating {robots} robots"
            try:
                wait_for(
                    "fleetwave simulate to start",
                    lambda: ready in self.output() or self.process.poll() is not None,
                )
            except AssertionError:
                self.stop()
                raise
            if ready not in self.output():
                self.stop()
                raise AssertionError(f"fleetwave simulate did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def commanded(self) -> set[str]:
        """Robots that received a deploy command."""
        return {line.split()[0] for line in self.output().splitlines() if "received deploy" in line}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
