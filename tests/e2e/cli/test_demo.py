"""`fleetwave demo` as a user runs it: one command, its own stack on free ports, exit 0 and a summary."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from fleetwave.sdk import FleetwaveClient, local_credentials

# A cap, not an expectation: the demo with 6 robots ends in about 25 s.
DEMO_TIMEOUT_SECONDS = 240


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
    )


def row(output: str, first_cell: str) -> list[str]:
    """The cells of the summary-table row that starts with ``first_cell``."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃|]", line) if cell.strip()]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


def test_demo_runs_a_rollout_and_a_sync_and_prints_the_summary():
    # Given nothing running; When the demo runs with 6 robots (not on a terminal: plain progress lines)
    result = run_demo("--robots", "6", "--time-scale", "0.1", "--seed", "7")

    # Then it exits 0 and says so
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    assert "rollout and sync ended as expected" in output
    # And it showed live progress as plain lines: waves and a progress count
    # (6 robots in waves of 25% are 3 waves of 2; the silent robot's wave lasts long enough to be seen)
    assert re.search(r"rollout: InProgress  wave [123] of 3  \[[#.]+\] \d/6 finished", output), output
    assert "rollout: Succeeded  wave 3 of 3  [####################] 6/6 finished" in output
    # And the job summary: the rollout with 4 InSync, 1 Failed, 1 NoResponse; the sync with 3 InSync
    assert row(output, "rollout")[2:] == ["Succeeded", "-", "-", "6", "4", "1", "1"]
    assert row(output, "sync")[2:] == ["Succeeded", "-", "-", "3", "3", "0", "0"]
    # And per robot: the failing one with its code, the silent one NoResponse, the new ones synced
    statuses = {f"robot-{i}": row(output, f"robot-{i}")[2:] for i in range(1, 10)}
    assert sorted(tuple(cells) for cells in statuses.values()) == sorted(
        [("InSync", "-")] * 4
        + [("Failed PreLaunchFileFailure", "-"), ("NoResponse RobotDeploymentNoResponse", "-")]
        + [("-", "InSync")] * 3
    ), statuses
    # And each robot's architecture comes from the three the bundle was built for
    assert {row(output, f"robot-{i}")[1] for i in range(1, 10)} == {"X86_64", "ARM64", "ARMHF"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--robots", "3"], "robots must be between 4 and 500"),
        (["--time-scale", "0"], "time scale must be greater than 0"),
    ],
)
def test_demo_rejects_bad_options_with_a_usage_error(args, message):
    # When the demo is given an option it cannot run with
    result = run_demo(*args)

    # Then it exits 2 with the reason, before starting anything
    assert result.returncode == 2
    assert message in result.stderr


def test_demo_help_lists_its_options():
    result = subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", "demo", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--robots", "--time-scale", "--keep-running"):
        assert option in result.stdout


def test_demo_keep_running_leaves_the_stack_up_until_stopped(tmp_path):
    # Given the demo started with --keep-running
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "fleetwave.cli", "demo", "--robots", "4", "--time-scale", "0.1",
             "--keep-running"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
        while "The stack stays up" not in log.read_text():
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        endpoint = re.search(r"FLEETWAVE_ENDPOINT_URL=(\S+)", log.read_text()).group(1)

        # When a user calls the API it printed, after the demo ended
        jobs = FleetwaveClient(endpoint, credentials=local_credentials()).call("listDeploymentJobs", {})

        # Then both of the demo's jobs are there, and SIGTERM stops everything with exit 0
        assert sorted(job["status"] for job in jobs["deploymentJobs"]) == ["Succeeded", "Succeeded"]
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0, log.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_greengrass_demo_runs_a_component_on_real_agents():
    # When the Greengrass demo runs
    result = run_demo("--greengrass")

    # Then it exits 0, and the component runs on both robots with its configuration merged in
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    assert "CreateComponentVersion com.example.HelloFleet 1.0.0: DEPLOYABLE" in output
    running = [line for line in output.splitlines() if "com.example.HelloFleet 1.0.0  RUNNING" in line]
    assert len(running) == 2, output
    assert all("output: hello Greengrass from gg-robot-" in line for line in running), output
    assert "the component runs on every robot" in output
