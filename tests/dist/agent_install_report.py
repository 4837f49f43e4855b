"""The robot's install, measured (`make bench` prints it first).

Builds the wheel from this checkout, installs ``fleetwave[agent]`` into a fresh venv outside it (see
wheel_installs.py: no pip in the venv, the whole dependency tree from the index) and prints what a robot
carries: the size of site-packages, the number of distributions and their names, against the limits of
issue 8 (at most 10 distributions, 40 MB), and what that install's agent holds in memory while it waits
for work (its idle RSS, `fleetwave.bench_agent`: a real `fleetwave agent` run by the venv's Python against
an embedded broker).

    .venv/bin/python tests/dist/agent_install_report.py [--python /path/to/python3.10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wheel_installs import AGENT_MAX_BYTES, AGENT_MAX_DISTRIBUTIONS, Install, build, install

from fleetwave.bench_agent import AgentFootprint, agent_idle_footprint


@dataclass(frozen=True)
class AgentInstallReport:
    install: Install
    python_version: str
    distributions: list[str]
    size_bytes: int
    footprint: AgentFootprint

    def lines(self) -> list[str]:
        return [
            f'Robot install: pip install "fleetwave[agent]" into a fresh venv (Python {self.python_version})',
            f"  installed size   {self.size_bytes / 1e6:.1f} MB in site-packages "
            f"(limit {AGENT_MAX_BYTES / 1e6:.0f} MB)",
            f"  distributions    {len(self.distributions)} (limit {AGENT_MAX_DISTRIBUTIONS}; "
            f"pip, setuptools, wheel not counted): {', '.join(self.distributions)}",
            f"  idle agent RSS   {self.footprint.rss_kib / 1024:.1f} MiB "
            f"(peak {self.footprint.peak_rss_kib / 1024:.1f} MiB), connected and subscribed, nothing to do",
        ]


def report_on(agent: Install) -> AgentInstallReport:
    """Measure an agent-only install: its size and distributions, then its agent running idle."""
    version = agent.ask("import platform; print(platform.python_version())").strip()
    return AgentInstallReport(
        agent, version, agent.distributions(), agent.size_bytes(), agent_idle_footprint(agent.root)
    )


def measure_agent_install(workdir: Path, python: str = sys.executable) -> AgentInstallReport:
    """Build the wheel into ``workdir`` and install its agent extra there, in a venv of ``python``."""
    built = build(workdir / "dists")
    return report_on(install(workdir / "agent-venv", built.wheel, "agent", python=python))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the venv's interpreter (default: this one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fleetwave-agent-install-") as workdir:
        report = measure_agent_install(Path(workdir), python=args.python)
    print("\n".join(report.lines()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
