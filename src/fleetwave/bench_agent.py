"""What the robot agent costs on a robot while it waits for work: its resident memory (RSS).

``python -m fleetwave.bench_agent [--venv PATH]`` starts an MQTT broker in this process and one real
``fleetwave agent`` (ProcessLauncher, state, outbox) with the interpreter of ``--venv`` (default: this
one), waits until it is connected and subscribed with nothing to do, lets it settle, and prints its RSS
(and peak RSS) from /proc.

``make bench`` prints it for the agent-only install (``fleetwave[agent]`` in a fresh venv), next to that
install's size and package count: tests/dist/agent_install_report.py calls `agent_idle_footprint(venv)`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

READY_LINE = " subscribed robot="
START_CAP_SECONDS = 60.0  # a cap, not an expectation: the agent connects within a second


@dataclass(frozen=True)
class AgentFootprint:
    python: str
    rss_kib: int
    peak_rss_kib: int

    def describe(self) -> str:
        return (
            f"agent idle RSS: {self.rss_kib / 1024:.1f} MiB (peak {self.peak_rss_kib / 1024:.1f} MiB) "
            f"with {self.python}"
        )


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def agent_idle_footprint(venv: str | Path | None = None, *, settle_seconds: float = 3.0) -> AgentFootprint:
    """Measure an idle agent run by ``<venv>/bin/python`` (default: this interpreter)."""
    from fleetwave.local.broker import EmbeddedBroker

    python = str(Path(venv) / "bin" / "python") if venv else sys.executable
    with (
        EmbeddedBroker(port=0) as broker,
        tempfile.TemporaryDirectory(prefix="fleetwave-bench-agent-") as work,
    ):
        log_path = Path(work) / "agent.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
        with log_path.open("wb") as log:
            agent = subprocess.Popen(
                [python, "-m", "fleetwave.cli", "agent", "--robot", "bench-robot", "--mqtt-url", broker.url,
                 "--work-dir", str(Path(work) / "agent")],
                stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=work,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + START_CAP_SECONDS
            while READY_LINE not in log_path.read_text(errors="replace"):
                if agent.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the agent did not get ready:\n{log_path.read_text(errors='replace')}"
                    )
                time.sleep(0.05)
            time.sleep(settle_seconds)  # idle means after start-up allocations have settled
            return AgentFootprint(python, _status_kib(agent.pid, "VmRSS"), _status_kib(agent.pid, "VmHWM"))
        finally:
            agent.terminate()
            try:
                agent.wait(timeout=30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fleetwave.bench_agent", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--venv", default=None, help="virtual environment whose python runs the agent")
    args = parser.parse_args(argv)
    print(agent_idle_footprint(args.venv).describe(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
