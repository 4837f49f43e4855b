"""`make chaos`: the fault-injection suite, every case several rounds over, then the figures.

    python tests/chaos/run.py [--rounds 3] [--workers 2]

Runs the tests marked ``chaos`` (Lambda faults and retries, partial status batches and redelivery, hostile
report streams, racing CreateDeploymentJob calls, bridge reconnects, broker and simulator restarts) ROUNDS
times and prints, per case, how often it passed and how long it took. Each case asserts the rollout
invariants itself (tests/support/invariants.py). Exit status 1 when any round of any case failed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _short(name: str, width: int = 100) -> str:
    """A case's name within ``width``, its parameters (``[...]``) kept whole."""
    base, bracket, params = name.partition("[")
    params = bracket + params
    cut = "~" if len(base) + len(params) > width else ""
    return base[: max(20, width - len(params) - 1)] + cut + params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    durations: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    started = time.monotonic()
    for round_number in range(1, args.rounds + 1):
        report = Path(tempfile.mkdtemp(prefix="fleetwave-chaos-")) / "junit.xml"
        command = [
            sys.executable, "-m", "pytest", "-m", "chaos", "-q", "-p", "no:cacheprovider",
            "-n", str(args.workers), "--dist", "loadfile", f"--junitxml={report}",
        ]  # fmt: skip
        print(f"round {round_number}/{args.rounds}: {' '.join(command[3:])}", flush=True)
        subprocess.run(command, cwd=REPO, check=False)
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            name = _short(f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}")
            durations[name].append(float(case.get("time", 0)))
            if case.find("failure") is not None or case.find("error") is not None:
                failures[name] += 1
    elapsed = time.monotonic() - started

    print(
        f"\nchaos: {args.rounds} rounds, {len(durations)} cases, {elapsed:.0f} s, {time.strftime('%Y-%m-%d')}"
    )
    print(f"{'case':<100} {'passed':>8} {'mean s':>7} {'max s':>7}")
    for name in sorted(durations):
        runs = durations[name]
        passed = len(runs) - failures[name]
        print(f"{name[:100]:<100} {passed:>4}/{len(runs):<3} {statistics.mean(runs):>7.1f} {max(runs):>7.1f}")
    total = sum(len(runs) for runs in durations.values())
    failed = sum(failures.values())
    print(f"total: {total - failed}/{total} passed")
    return 1 if failed or not total else 0


if __name__ == "__main__":
    sys.exit(main())
