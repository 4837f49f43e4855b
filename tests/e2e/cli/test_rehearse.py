"""`fleetwave rehearse` as a user runs it: one process that starts its own stack and simulated robots on free
ports, rolls the planned deployment out, prints the prediction and exits 0 (would succeed) or 1 (would
fail); impossible parameters exit 2 with one line; Ctrl-C stops everything it started (exit 130)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.rollouts import Rollouts, names, unique

# Caps, not expectations: a rehearsal of a dozen robots ends in about 15 s on a quiet machine.
REHEARSAL_TIMEOUT_SECONDS = 300
WAIT_SECONDS = 120.0


def rehearse(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", "rehearse", *args],
        capture_output=True,
        text=True,
        timeout=REHEARSAL_TIMEOUT_SECONDS,
        env={**os.environ, **(env or {})},
    )


def test_rehearse_predicts_a_rollout_with_failing_and_silent_robots(tmp_path):
    # When 12 robots in waves of 25% are rehearsed: 25% fail, one in 12 never answers, a 600 s robot timeout
    # (6 s here at time scale 0.01), two architectures
    figures = tmp_path / "rehearsal.json"
    result = rehearse(
        "--robots", "12", "--architectures", "X86_64=50,ARM64=50", "--concurrency", "25",
        "--robot-timeout", "600", "--duration", "uniform:5,10", "--failure-rate", "25",
        "--silence-rate", "8.4", "--failure-code", "DownloadConditionFailed", "--seed", "3",
        "--time-scale", "0.01", "--json", str(figures),
    )  # fmt: skip

    # Then the job would succeed (no failure threshold): exit 0, and the plan was printed first
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "fleetwave rehearse: 12 robots (ARM64 6, X86_64 6)" in output
    assert "4 waves of up to 3 robots" in output
    # And progress while it ran (not a terminal: plain lines), then the result
    assert re.search(r"InProgress  wave [1-4]/4  \d+/12 finished", output), output
    assert "Result: the job would succeed, 4 waves" in output
    assert "Robots: 8 InSync, 3 Failed" in output and "1 NoResponse (timed out)" in output
    assert re.search(r"Predicted makespan: [\d.]+ s .* in real time", output), output
    # And the figures as JSON agree: 4 waves of 3, each robot counted once, a prediction in real seconds
    data = json.loads(figures.read_text())
    assert data["status"] == "Succeeded" and data["stoppedAtWave"] is None
    assert [wave["robots"] for wave in data["waves"]] == [3, 3, 3, 3]
    assert sum(w["inSync"] + w["failed"] + w["noResponse"] for w in data["waves"]) == 12
    assert sum(w["noResponse"] for w in data["waves"]) == 1
    # The silent robot's wave waited for the robot timeout: the whole rollout took at least that long
    assert data["predictedMakespanSeconds"] >= 600
    assert data["predictedMakespanSeconds"] >= data["idealSeconds"] * 0.9
    assert data["architectures"] == {"ARM64": 6, "X86_64": 6}
    # 12 robots acknowledge their deliveries in time: no local MQTT line, and none counted
    assert data["lateMqttDeliveries"] == 0 and "Local MQTT" not in output
    # And nothing it started is left: the stack's API port is closed
    assert_closed(api_url_of(output))


def test_rehearse_says_where_the_failure_threshold_stops_the_job():
    # When every robot fails and the threshold is 10%
    result = rehearse(
        "--robots", "8", "--concurrency", "25", "--failure-rate", "100", "--failure-threshold", "10",
        "--duration", "5", "--time-scale", "0.01", "--json", "-",
    )  # fmt: skip

    # Then the job would end Failed at wave 1: exit 1, and later waves are never released
    # (with --json -, stdout is the JSON alone and the report goes to stderr)
    output = result.stderr
    assert result.returncode == 1, result.stdout + output
    assert "Result: the job would end Failed (FailureThresholdBreached) at wave 1 of 4" in output
    assert "the failure threshold stops it at wave 1: later waves never start" in output
    data = json.loads(result.stdout)
    assert data["stoppedAtWave"] == 1
    assert data["waves"][0]["failed"] == 2
    assert sum(wave["notReleased"] for wave in data["waves"][1:]) == 6


def test_rehearse_approves_the_deployment_configs_gates_as_they_are_reached():
    # When the deploymentConfig holds the rollout for an approval before every wave after the first
    config = '{"concurrentDeploymentPercentage": 50, "approval": {"after": "EveryWave"}}'
    result = rehearse(
        "--robots", "4", "--deployment-config", config, "--duration", "5", "--time-scale", "0.01"
    )

    # Then the rehearsal approves the gate at once and the job would succeed (it does not wait for the gate's
    # timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "approval gate before wave 2: approved at once" in result.stdout
    assert "Result: the job would succeed, 2 waves" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--robots", "0"], "at least one robot"),
        (["--robots", "20001"], "more than the 10,000 a rehearsal may simulate"),
        (["--robots", "50", "--max-robots", "10"], "more than the 10 a rehearsal may simulate"),
        (["--concurrency", "0"], "--concurrency must be a whole number from 1 to 100"),
        (["--concurrency", "150"], "--concurrency must be a whole number from 1 to 100"),
        (["--failure-threshold", "101"], "--failure-threshold must be a whole number from 1 to 100"),
        (["--failure-rate", "120"], "must be from 0 to 100"),
        (["--silence-rate", "-5"], "must be from 0 to 100"),
        (["--failure-rate", "70", "--silence-rate", "40"], "more than 100%"),
        (["--time-scale", "0"], "must be more than 0 and at most 1"),
        (["--robot-timeout", "5"], "robotDeploymentTimeoutInSeconds"),
        (["--architectures", "X86_64=70,ARM64=20"], "add up to 90%"),
        (["--duration", "uniform:9,3"], "duration"),
        (["--deployment-config", '{"concurrentDeploymentPercentage": 0}'], "concurrentDeploymentPercentage"),
        (["--deployment-config", "[1, 2]"], "must be a JSON object"),
        (["--failure-code", "Oops"], "expected one of"),
        (["--robots", "5", "--like", "fleet-a"], "cannot be used together"),
    ],
)
def test_rehearse_impossible_parameters_exit_2_with_one_line(args, message):
    result = rehearse(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was started: the plan is not even printed
    assert "local stack" not in result.stdout


def test_rehearse_robot_limit_from_the_environment_exits_2():
    result = rehearse("--robots", "30", env={"FLEETWAVE_REHEARSE_MAX_ROBOTS": "20"})
    assert result.returncode == 2
    assert "30 robots is more than the 20 a rehearsal may simulate" in result.stderr


def test_rehearse_ctrl_c_stops_the_stack_and_the_robots():
    # Given a rehearsal under way (robots that take far longer than the test waits)
    process = subprocess.Popen(
        [sys.executable, "-m", "fleetwave.cli", "rehearse", "--robots", "20", "--duration", "3600",
         "--time-scale", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        seen = read_until(process, "deployment job")
        robots_pid = int(re.search(r"simulated robots listening \(process (\d+)\)", seen).group(1))
        api_url = api_url_of(seen)
        assert alive(robots_pid)

        # When the user presses Ctrl-C
        process.send_signal(signal.SIGINT)
        process.wait(WAIT_SECONDS)

        # Then it exits 130 saying what it stopped, and neither the robots nor the stack keep running
        assert process.returncode == 130, process.stderr.read()
        assert "interrupted" in process.stderr.read()
        wait_for(lambda: not alive(robots_pid), "the robots' process to end")
        assert_closed(api_url)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_rehearse_like_copies_an_existing_fleets_robots(serve, api):
    # Given a fleet on a running stack with 3 robots of two architectures
    rollouts = Rollouts(api, serve)
    robots = names(unique("like"), 3)
    fleet = rollouts.fleet(robots[:2])
    rollouts.add_robot(fleet, robots[2], "ARM64")

    # When its rehearsal copies it from that endpoint
    result = rehearse(
        "--like", fleet["name"], "--endpoint", serve.api_url, "--duration", "5", "--time-scale", "0.01",
        "--json", "-",
    )  # fmt: skip

    # Then the same robots (names and architectures) are rehearsed, and the fleet it copied is untouched
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"fleetwave rehearse: 3 robots (ARM64 1, X86_64 2) from fleet {fleet['name']}" in result.stderr
    data = json.loads(result.stdout)
    assert data["architectures"] == {"ARM64": 1, "X86_64": 2}
    assert sum(wave["inSync"] for wave in data["waves"]) == 3
    described = api.client.call("describeFleet", {"fleet": fleet["arn"]})
    assert sorted(robot["name"] for robot in described["robots"]) == sorted(robots)
    assert described.get("lastDeploymentJob") is None
    # And a fleet that does not exist there is an impossible rehearsal
    missing = rehearse("--like", unique("nosuchfleet"), "--endpoint", serve.api_url)
    assert missing.returncode == 2
    assert "no such fleet" in missing.stderr


# --- helpers ----------------------------------------------------------------------------------------------
def read_until(process: subprocess.Popen[str], text: str) -> str:
    seen = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"no {text!r} in: {''.join(seen)} {process.stderr.read() if process.poll() else ''}")


def api_url_of(output: str) -> str:
    return re.search(r"local stack: API (\S+)", output).group(1)


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(check, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def assert_closed(url: str) -> None:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(5)
        assert sock.connect_ex((parts.hostname, parts.port)) != 0, f"{url} still accepts connections"
