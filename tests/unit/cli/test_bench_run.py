"""`python -m fleetwave.bench` on its smallest fleet, as `make bench` runs it (slow: it starts the stack)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A cap, not an expectation: the 10-robot rollout ends in about 10 s.
BENCH_TIMEOUT_SECONDS = 300


@pytest.mark.slow
def test_bench_run_prints_the_figures_for_a_ten_robot_fleet():
    # When the bench runs on 10 robots in waves of 25%
    result = subprocess.run(
        [sys.executable, "-m", "fleetwave.bench", "--sizes", "10", "--time-scale", "0.02"],
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_SECONDS,
    )

    # Then it exits 0 and prints one row: 4 waves, the job Succeeded, 6 + 3 x 4 state transitions
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout[result.stdout.index("makespan/ideal") :]
    rows = [line.split() for line in table.splitlines() if line.split()[:1] == ["10"]]
    assert len(rows) == 1, result.stdout
    robots, waves, status, transitions, writes, messages, makespan, ideal, ratio = rows[0]
    assert (waves, status, transitions) == ("4", "Succeeded", "18")
    # And every robot cost at least its command and its final report, and at least one write
    assert float(messages) >= 2.0
    assert float(writes) >= 1.0
    assert float(ratio) > 0
    # And the rollout with a gate before waves 2-4 and one pause held 4 times: 6 + 3 x 4 + 3 x 4 transitions
    control = next(
        line for line in result.stdout.splitlines() if line.startswith("rollout control: 10 robots")
    )
    assert control.endswith(
        "job Succeeded, 4 holds, 30 state transitions (6 + 3 x 4 waves + 3 x 4 holds = 30)"
    )
