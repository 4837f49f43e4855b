"""Harness for real robots against `fleetwave serve`: the real `fleetwave agent` (ProcessLauncher) as a
process, real bundles in the embedded S3, real application processes (docs/robot-agent.md). Fixtures in
tests/e2e/agent/conftest.py; test modules import the helpers from here (``wait_for`` from
support/waiting.py).

- ``robot``  (function) a fleet with one registered robot and what it takes to deploy to it:
             ``robot.release(APP)`` uploads a bundle whose launch file is ``APP`` (a shell script),
             creates the next application version and a deployment job; ``robot.wait_job(job)``,
             ``robot.describe()``, ``robot.control`` (a directory the application sees as CONTROL_DIR:
             it appends its pid to ``starts`` and obeys files the test creates there).
- ``agents`` (function) starts `fleetwave agent` processes: ``agents.start(name, mqtt_url, *args)`` ->
             `AgentProcess` (``kill``, ``stop``, ``restart``, ``wait_log``); all are stopped at the end, and
             every application process they left is killed.

``run_first_release(robot, agents, mqtt_url)`` is the usual Given: the agent started, a release deployed
and its application running (``Running``: agent, job, pid).

Every wait polls a condition with a generous cap (the machine is shared and loaded); nothing sleeps to
synchronise.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from fakes.robomaker import BUCKET, Given, unique
from support.waiting import wait_for

from fleetwave.agent.process import MARKER_VARIABLE
from fleetwave.agent.supervisor import marked_processes
from fleetwave.sdk import FleetwaveClient

# Caps, not expectations: a deployment takes a few seconds here.
WAIT_SECONDS = 90.0
ROBOT_TIMEOUT_SECONDS = 12000  # x the e2e time scale (0.01) = 2 minutes for a robot to answer
HEALTH_WINDOW_SECONDS = 1.5

# The application every test deploys unless it needs a misbehaving one: it records its pid, then runs
# until the test asks it to crash once (crash-once) or for good (crash-always).
SUPERVISED_APP = """#!/bin/sh
echo "$$" >> "$CONTROL_DIR/starts"
while true; do
  if [ -e "$CONTROL_DIR/crash-once" ]; then rm -f "$CONTROL_DIR/crash-once"; echo "crashing once"; exit 5; fi
  if [ -e "$CONTROL_DIR/crash-always" ]; then echo "crashing"; exit 6; fi
  sleep 0.05
done
"""
# Dies shortly after launch: inside any health window.
CRASHING_APP = """#!/bin/sh
echo "$$" >> "$CONTROL_DIR/starts"
sleep 0.3
echo "cannot open /dev/lidar0" >&2
exit 3
"""


def bundle(launch_script: str, files: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in {"nav/nav.launch": launch_script, **(files or {})}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class ServeApi:
    """``Given``'s view of a `fleetwave serve` a test started itself."""

    def __init__(self, server: Any) -> None:
        self.client = FleetwaveClient(server.api_url, credentials=("testing", "testing"))

    def call(self, operation: str, body: Any = None) -> Any:
        return self.client.request(operation, body if body is not None else {})


class _Aws:
    def __init__(self, server: Any) -> None:
        self._server = server

    def client(self, service: str) -> Any:
        return self._server.aws_client(service)


@dataclass
class Robot:
    """One robot in a fleet of its own, and the versions of one application deployed to it."""

    given: Given
    control: Path
    name: str
    fleet: dict[str, Any]
    arn: str
    application: str | None = None
    versions: int = 0
    keys: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, given: Given, control: Path, name: str | None = None) -> Robot:
        control.mkdir(parents=True, exist_ok=True)
        fleet = given.fleet(unique("e2e-agent-fleet"))
        name = name or unique("e2e-agent-robot")
        robot = given.robot(name, fleet=fleet)
        return cls(given, control, name, fleet, robot["arn"])

    def release(
        self,
        launch_script: str = SUPERVISED_APP,
        *,
        post_launch: str | None = None,
        robot_timeout: int = ROBOT_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        """Upload a bundle, make it the application's next version, and deploy it to the fleet."""
        self.versions += 1
        key = f"{self.name}/v{self.versions}.tar.gz"
        files = {"scripts/post.sh": post_launch} if post_launch is not None else None
        self.given.bundle(key, bundle(launch_script, files))
        self.keys.append(key)
        sources = [{"s3Bucket": BUCKET, "s3Key": key, "architecture": "X86_64"}]
        suite = {"name": "ROS2", "version": "Foxy"}
        if self.application is None:
            created = self.given.ok(
                "createRobotApplication",
                {"name": unique("e2e-agent-app"), "sources": sources, "robotSoftwareSuite": suite},
            )
            self.application = created["arn"]
        else:
            self.given.ok(
                "updateRobotApplication",
                {"application": self.application, "sources": sources, "robotSoftwareSuite": suite},
            )
        version = self.given.ok("createRobotApplicationVersion", {"application": self.application})
        launch = {
            "packageName": "nav",
            "launchFile": "nav.launch",
            "environmentVariables": {"CONTROL_DIR": str(self.control)},
        }
        if post_launch is not None:
            launch["postLaunchFile"] = "scripts/post.sh"
        request = {
            "clientRequestToken": unique("e2e-agent-token"),
            "fleet": self.fleet["arn"],
            "deploymentConfig": {"robotDeploymentTimeoutInSeconds": robot_timeout},
            "deploymentApplicationConfigs": [
                {
                    "application": self.application,
                    "applicationVersion": version["version"],
                    "launchConfig": launch,
                }
            ],
        }
        return self.given.ok("createDeploymentJob", request)

    def job(self, job: dict[str, Any]) -> dict[str, Any]:
        return self.given.ok("describeDeploymentJob", {"job": job["arn"]})

    def wait_job(self, job: dict[str, Any], details: Callable[[], str] | None = None) -> dict[str, Any]:
        """The job once it has ended (the robot's summary final)."""
        return wait_for(
            f"job {job['arn']} to end",
            lambda: (d := self.job(job))["status"] in ("Succeeded", "Failed", "Canceled") and d,
            details=details,
        )

    def describe(self) -> dict[str, Any]:
        return self.given.ok("describeRobot", {"robot": self.arn})

    def starts(self) -> list[int]:
        """Pids of every application start so far, oldest first."""
        path = self.control / "starts"
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    def running(self) -> list[int]:
        """Pids of application processes alive now."""
        return [pid for pid in self.starts() if pid_alive(pid)]


@dataclass
class AgentProcess:
    robot: str
    mqtt_url: str
    work_dir: Path
    logs: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0
    # How a provisioned robot names itself instead of --robot/--mqtt-url: ["--config", agent.json] (what
    # `fleetwave robot provision` wrote) or ["--claim", claim.json, "--robot", name].
    identity: list[str] | None = None

    @property
    def log_path(self) -> Path:
        return self.logs / f"agent-{self.runs}.log"

    def start(self) -> AgentProcess:
        self.runs += 1
        identity = self.identity or ["--robot", self.robot, "--mqtt-url", self.mqtt_url]
        command = [
            sys.executable, "-m", "fleetwave.cli", "agent", *identity, "--work-dir", str(self.work_dir),
            "--log-level", "DEBUG", *self.args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def all_logs(self) -> str:
        return "\n".join(
            f"--- agent run {run} ---\n{(self.logs / f'agent-{run}.log').read_text(errors='replace')}"
            for run in range(1, self.runs + 1)
            if (self.logs / f"agent-{run}.log").exists()
        )

    def wait_log(self, text: str, timeout: float = WAIT_SECONDS) -> str:
        """Wait until this run of the agent logged a line containing ``text``; that line."""

        def found() -> str | None:
            line = next((line for line in self.log().splitlines() if text in line), None)
            if line is None and self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the agent exited ({self.process.returncode})\n{self.all_logs()}")
            return line

        return wait_for(f"agent log line {text!r}", found, timeout, details=self.all_logs)

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=WAIT_SECONDS)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        return self.kill(signal.SIGTERM)


class Agents:
    def __init__(self, tmp_path: Path) -> None:
        self._tmp = tmp_path
        self.started: list[AgentProcess] = []

    def start(
        self, robot_name: str, mqtt_url: str, *args: str, identity: list[str] | None = None
    ) -> AgentProcess:
        """``identity``: run it as a provisioned robot does (``--config FILE``; ``mqtt_url`` unused)."""
        logs = self._tmp / f"logs-{robot_name}"
        logs.mkdir(exist_ok=True)
        agent = AgentProcess(
            robot_name,
            mqtt_url,
            self._tmp / f"work-{robot_name}",
            logs,
            ["--health-window", str(HEALTH_WINDOW_SECONDS), *args],
            identity=identity,
        )
        self.started.append(agent)
        return agent.start()

    def cleanup(self) -> None:
        for agent in self.started:
            if agent.process is not None and agent.process.poll() is None:
                agent.process.kill()
                agent.process.wait()
            # Whatever the agents started and left behind (they were killed on purpose, some of them).
            for pid in marked_processes(MARKER_VARIABLE, str(agent.work_dir.resolve())):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)


class Running(NamedTuple):
    """A robot whose agent deployed one release, InSync, and runs its application (``pid``)."""

    agent: AgentProcess
    job: dict[str, Any]
    pid: int


def run_first_release(robot: Robot, agents: Agents, mqtt_url: str, *agent_args: str) -> Running:
    """Given a robot that runs a deployed application: start its agent, deploy, wait for the process."""
    agent = agents.start(robot.name, mqtt_url, *agent_args)
    job = robot.release()
    done = robot.wait_job(job, details=agent.all_logs)
    assert done["robotDeploymentSummary"][0]["status"] == "InSync", done
    [pid] = wait_for("the application to run", robot.running, details=agent.all_logs)
    return Running(agent, job, pid)


def given_for(server: Any) -> Given:
    """A ``Given`` against a `fleetwave serve` the test started itself (``launcher.start``)."""
    return Given(ServeApi(server), _Aws(server), token_prefix=unique("e2e-agent"))
