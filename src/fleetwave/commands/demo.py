"""`fleetwave demo`: the whole product in one command, on one machine, in under two minutes.

What it does, the way a user would: starts `fleetwave serve` on free ports (a subprocess, logs to a file),
creates a fleet of simulated robots of mixed architectures, builds a small ROS-style bundle per
architecture and uploads it to the embedded S3, creates a robot application and a version, runs the real
robot agent for every robot (the simulator, in this process, over the embedded MQTT broker), rolls the
version out in 25% waves while one robot fails its pre-launch script and one stays silent, then registers
three new robots, runs SyncDeploymentJob, and prints a summary. Every API call goes through the signed SDK
over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROBOTS = 20
DEFAULT_TIME_SCALE = 0.1
NEW_ROBOTS = 3
WAVE_PERCENT = 25
MIN_FAILURE_THRESHOLD_PERCENT = 25
ROBOT_TIMEOUT_SECONDS = 60  # the API's minimum; the time scale shrinks the wait for the silent robot
ARCHITECTURES = ("X86_64", "ARM64", "ARMHF")
PACKAGE = "hello_fleet"
LAUNCH_FILE = "hello_fleet.launch"
PRE_LAUNCH = "scripts/pre_launch.sh"
POST_LAUNCH = "scripts/post_launch.sh"
FAILURE_CODE = "PreLaunchFileFailure"
FINAL_ROBOT_STATUSES = ("InSync", "Failed", "NoResponse")
FINAL_JOB_STATUSES = ("Succeeded", "Failed", "Canceled")
READY_PREFIX = "fleetwave serve: API "
SERVE_START_SECONDS = 120.0
# Caps, not expectations: each rollout below takes seconds at the default time scale.
JOB_DEADLINE_SECONDS = 300.0


class DemoError(Exception):
    """Something did not go as the demo expects; the message says what."""


# --- the bundle ----------------------------------------------------------------------------------------
def build_bundle(architecture: str, version: str = "1.0.0") -> bytes:
    """A tiny ROS-style package as tar.gz: package.xml, a launch file, pre/post-launch scripts."""
    files = {
        f"{PACKAGE}/package.xml": (
            f'<?xml version="1.0"?>\n<package format="3">\n  <name>{PACKAGE}</name>\n'
            f"  <version>{version}</version>\n  <description>Fleetwave demo node ({architecture})"
            '</description>\n  <maintainer email="demo@example.com">demo</maintainer>\n'
            "  <license>Apache-2.0</license>\n  <exec_depend>rclpy</exec_depend>\n</package>\n"
        ),
        f"{PACKAGE}/launch/{LAUNCH_FILE}": (
            '<launch>\n  <node pkg="hello_fleet" exec="talker" name="talker" output="screen">\n'
            f'    <param name="architecture" value="{architecture}"/>\n  </node>\n</launch>\n'
        ),
        f"{PACKAGE}/{PRE_LAUNCH}": "#!/bin/sh\nset -e\necho 'pre-launch: checking sensors'\n",
        f"{PACKAGE}/{POST_LAUNCH}": "#!/bin/sh\nset -e\necho 'post-launch: talker is up'\n",
        f"{PACKAGE}/lib/{PACKAGE}/talker": f"#!/usr/bin/env python3\nprint('hello from {architecture}')\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith((".sh", "talker")) else 0o644
            info.mtime = 0  # reproducible bytes: the same bundle has the same ETag
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- the local stack -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServeHandle:
    """`fleetwave serve` running as a subprocess; its output goes to ``log_path``."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    log_path: Path
    time_scale: float

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}/"

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['aws']}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.ports['mqtt']}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_serve(time_scale: float, *, attempts: int = 3) -> ServeHandle:
    """Start `fleetwave serve` on free ports and wait for its ready line (retried if a port got taken)."""
    workdir = Path(tempfile.mkdtemp(prefix="fleetwave-demo-"))
    last = ""
    for attempt in range(1, attempts + 1):
        ports = {"api": free_port(), "aws": free_port(), "mqtt": free_port()}
        log_path = workdir / f"serve-{attempt}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("FLEETWAVE_LOCAL_ACCESS_KEY_ID", "testing")
        env.setdefault("FLEETWAVE_LOCAL_SECRET_ACCESS_KEY", "testing")
        command = [
            sys.executable, "-m", "fleetwave.cli", "serve",
            "--port", str(ports["api"]), "--aws-port", str(ports["aws"]),
            "--mqtt-port", str(ports["mqtt"]), "--time-scale", f"{time_scale:g}",
        ]  # fmt: skip
        with log_path.open("wb") as log:
            # A file, not a pipe: the handlers log every request, and an unread pipe would stall serve.
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        handle = ServeHandle(process, ports, log_path, time_scale)
        deadline = time.monotonic() + SERVE_START_SECONDS
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if READY_PREFIX in text:
                return handle
            if process.poll() is not None:
                break
            time.sleep(0.1)
        handle.stop()
        last = handle.tail()
        if "already in use" not in last:
            break
    raise DemoError(f"fleetwave serve did not start; its last output:\n{last}")


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
    ) -> None:
        from fleetwave.agent.simulated import Behavior
        from fleetwave.commands.simulate import ApiFleetLookup

        self._lookup = ApiFleetLookup(client, fleet_name)
        self._mqtt_url = mqtt_url
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
            )

        try:
            self.exit_status = asyncio.run(main())
        finally:
            self._started.set()


# --- reading a job -------------------------------------------------------------------------------------
def robot_name_of(arn: str) -> str:
    """``arn:aws:robomaker:...:robot/<name>/<millis>`` -> ``<name>``."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) >= 2 else arn


def plan_waves(robot_names: Sequence[str], percent: int | None) -> dict[str, int]:
    """Wave number (from 1) of each targeted robot, by the engine's rule (docs/rollout.md): robots in name
    order, waves of ceil(N x percent / 100)."""
    names = sorted(robot_names)
    if not names:
        return {}
    size = max(1, math.ceil(len(names) * (percent or 100) / 100))
    return {name: index // size + 1 for index, name in enumerate(names)}


@dataclass
class JobView:
    """What the live view and the summary show of one job (from DescribeDeploymentJob)."""

    label: str
    arn: str
    status: str
    failure_code: str | None
    failure_reason: str | None
    robots: list[dict[str, Any]]  # name, status, currentProgress, percentDone, failureCode, wave
    wave_count: int

    @property
    def finished(self) -> int:
        return sum(1 for robot in self.robots if robot["status"] in FINAL_ROBOT_STATUSES)

    @property
    def current_wave(self) -> int:
        released = [r["wave"] for r in self.robots if r["status"] != "PendingNewDeployment"]
        return max(released, default=0)

    def count(self, status: str) -> int:
        return sum(1 for robot in self.robots if robot["status"] == status)

    @property
    def done(self) -> bool:
        return self.status in FINAL_JOB_STATUSES


def read_job(client: Any, label: str, arn: str, percent: int | None) -> JobView:
    job = client.call("describeDeploymentJob", {"job": arn})
    summary = job.get("robotDeploymentSummary") or []
    waves = plan_waves([robot_name_of(item["arn"]) for item in summary], percent)
    robots = []
    for item in sorted(summary, key=lambda entry: robot_name_of(entry["arn"])):
        name = robot_name_of(item["arn"])
        progress = item.get("progressDetail") or {}
        robots.append(
            {
                "name": name,
                "status": item.get("status", "?"),
                "currentProgress": progress.get("currentProgress", ""),
                "percentDone": progress.get("percentDone"),
                "failureCode": item.get("failureCode"),
                "failureReason": item.get("failureReason"),
                "wave": waves.get(name, 0),
                "deploymentStartTime": item.get("deploymentStartTime"),
                "deploymentFinishTime": item.get("deploymentFinishTime"),
            }
        )
    return JobView(
        label,
        arn,
        job.get("status", "?"),
        job.get("failureCode"),
        job.get("failureReason"),
        robots,
        max(waves.values(), default=0),
    )


# --- showing it ----------------------------------------------------------------------------------------
class ProgressDisplay:
    """A live rich view on a terminal; periodic plain lines otherwise (make, CI, a pipe)."""

    def __init__(self, console: Any, architectures: Mapping[str, str], plain_every: float = 2.0) -> None:
        self.console = console
        self.architectures = architectures
        self.interactive = bool(console.is_terminal)
        self._plain_every = plain_every
        self._last_line = ""
        self._last_stage: tuple[str, int] = ("", 0)
        self._last_print = 0.0
        self._reported: set[str] = set()
        self._live: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self.interactive:
            from rich.live import Live

            self._live = Live(console=self.console, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, view: JobView) -> None:
        if self._live is not None:
            self._live.update(self.render(view))
            return
        self._plain(view)

    def render(self, view: JobView) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        total = len(view.robots)
        header = Text.assemble(
            (f"{view.label} ", "bold"),
            f"{view.arn.rsplit('/', 1)[-1]}  ",
            ("status ", "dim"),
            (view.status, _status_style(view.status)),
            ("  wave ", "dim"),
            f"{view.current_wave} of {view.wave_count}",
        )
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=max(total, 1), completed=view.finished, width=40),
            Text(f"{view.finished}/{total} robots finished"),
        )
        table = Table(show_edge=False, pad_edge=False, expand=False)
        for column in ("robot", "arch", "wave", "status", "currentProgress", "percentDone"):
            table.add_column(column, justify="right" if column in ("wave", "percentDone") else "left")
        for robot in view.robots:
            detail = robot["currentProgress"] or ""
            if robot["failureCode"]:
                detail = robot["failureCode"]
            percent = robot["percentDone"]
            table.add_row(
                robot["name"],
                self.architectures.get(robot["name"], "?"),
                str(robot["wave"]),
                Text(robot["status"], _status_style(robot["status"])),
                detail,
                "" if percent is None else f"{percent:.0f}%",
            )
        return Group(header, bar, table)

    def _plain(self, view: JobView) -> None:
        for robot in view.robots:
            key = f"{view.arn}/{robot['name']}"
            if robot["status"] in ("Failed", "NoResponse") and key not in self._reported:
                self._reported.add(key)
                code = robot["failureCode"] or ""
                self._print(f"  {robot['name']} (wave {robot['wave']}): {robot['status']} {code}".rstrip())
        line = (
            f"{view.label}: {view.status}  wave {view.current_wave} of {view.wave_count}  "
            f"{_bar(view.finished, len(view.robots))} {view.finished}/{len(view.robots)} finished  "
            f"(InSync {view.count('InSync')}, Failed {view.count('Failed')}, "
            f"NoResponse {view.count('NoResponse')}, Deploying {view.count('Deploying')})"
        )
        now = time.monotonic()
        moved = (view.status, view.current_wave) != self._last_stage
        if line != self._last_line and (moved or now - self._last_print >= self._plain_every):
            self._last_stage = (view.status, view.current_wave)
            self._print(line)
            deploying = [
                f"{r['name']} {r['currentProgress'] or 'released'} {r['percentDone'] or 0:.0f}%"
                for r in view.robots
                if r["status"] == "Deploying"
            ]
            if deploying and not view.done:
                self._print("    deploying: " + ", ".join(deploying))
            self._last_line, self._last_print = line, now

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _status_style(status: str) -> str:
    return {
        "InSync": "green",
        "Succeeded": "green",
        "Failed": "red",
        "NoResponse": "yellow",
        "Canceled": "yellow",
        "Deploying": "cyan",
        "InProgress": "cyan",
    }.get(status, "")


def summary_tables(views: Sequence[JobView], architectures: Mapping[str, str]) -> list[Any]:
    from rich.table import Table

    jobs = Table(title="Deployment jobs", title_justify="left")
    for column in ("job", "id", "status", "failureCode", "failureReason", "robots", "InSync", "Failed",
                   "NoResponse"):  # fmt: skip
        jobs.add_column(column, overflow="fold")
    for view in views:
        jobs.add_row(
            view.label,
            view.arn.rsplit("/", 1)[-1],
            view.status,
            view.failure_code or "-",
            view.failure_reason or "-",
            str(len(view.robots)),
            str(view.count("InSync")),
            str(view.count("Failed")),
            str(view.count("NoResponse")),
        )
    robots = Table(title="Robots (final status per job)", title_justify="left")
    robots.add_column("robot")
    robots.add_column("arch")
    for view in views:
        robots.add_column(view.label)
    names = sorted(architectures)
    for name in names:
        cells = []
        for view in views:
            match = next((r for r in view.robots if r["name"] == name), None)
            if match is None:
                cells.append("-")
            else:
                cells.append(f"{match['status']} {match['failureCode'] or ''}".strip())
        robots.add_row(name, architectures[name], *cells)
    return [jobs, robots]


# --- the demo ------------------------------------------------------------------------------------------
@dataclass
class DemoPlan:
    """Names, architectures and behaviours, decided up front (``seed`` makes a run repeatable)."""

    fleet: str
    robots: list[str]
    new_robots: list[str]
    architectures: dict[str, str]
    behaviors: dict[str, str]
    failing: str
    silent: str
    application: str
    time_scale: float

    @property
    def failure_threshold(self) -> int:
        """Above the two planned failures (the engine stops when failed x 100 > threshold x N)."""
        return max(MIN_FAILURE_THRESHOLD_PERCENT, math.ceil(200 / len(self.robots)))

    @classmethod
    def make(cls, robots: int, time_scale: float, seed: int | None = None) -> DemoPlan:
        if robots < 4:
            raise DemoError("the demo needs at least 4 robots (one fails, one stays silent)")
        rng = random.Random(seed)
        suffix = uuid.uuid4().hex[:6]
        width = len(str(robots + NEW_ROBOTS))
        names = [f"robot-{i:0{width}d}" for i in range(1, robots + 1)]
        new = [f"robot-{i:0{width}d}" for i in range(robots + 1, robots + NEW_ROBOTS + 1)]
        architectures = {name: ARCHITECTURES[i % len(ARCHITECTURES)] for i, name in enumerate(names + new)}
        waves = plan_waves(names, WAVE_PERCENT)
        # The failure in the second wave and the silence in the third, so the first wave shows a clean run.
        second = [n for n in names if waves[n] == min(2, max(waves.values()))]
        failing = second[len(second) // 2]
        third = [n for n in names if waves[n] == min(3, max(waves.values())) and n != failing]
        silent = third[len(third) // 2]
        behaviors: dict[str, str] = {}
        for name in names + new:
            # Most robots take a random few simulated seconds; the rest run step by step ("ok").
            if rng.random() < 0.6:
                behaviors[name] = f"delay:{rng.uniform(5, 20):.1f}"
        behaviors[failing] = f"fail:{FAILURE_CODE}"
        behaviors[silent] = "silent"
        return cls(
            fleet=f"demo-fleet-{suffix}",
            robots=names,
            new_robots=new,
            architectures=architectures,
            behaviors=behaviors,
            failing=failing,
            silent=silent,
            application=f"hello-fleet-{suffix}",
            time_scale=time_scale,
        )


class Demo:
    def __init__(self, plan: DemoPlan, console: Any, *, poll_seconds: float = 0.25) -> None:
        self.plan = plan
        self.console = console
        self.poll_seconds = poll_seconds
        self.views: list[JobView] = []
        self._simulator: BackgroundSimulator | None = None
        self._token = uuid.uuid4().hex[:12]

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def run(self, serve: ServeHandle, client: Any, simulator: BackgroundSimulator) -> None:
        plan = self.plan
        mix = ", ".join(f"{a} x{self._count_arch(a, plan.robots)}" for a in ARCHITECTURES)
        self.say(f"[bold]1.[/] fleet {plan.fleet} with {len(plan.robots)} robots ({mix})")
        fleet = client.call("createFleet", {"name": plan.fleet})
        for name in plan.robots:
            self._add_robot(client, fleet["arn"], name)

        self.say(f"[bold]2.[/] bundle {PACKAGE}.tar.gz per architecture -> s3://fleetwave-bundles "
                 f"(embedded S3 at {serve.aws_url})")  # fmt: skip
        sources = self._upload_bundles(serve)
        application = client.call(
            "createRobotApplication",
            {"name": plan.application, "sources": sources,
             "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"}},
        )  # fmt: skip
        version = client.call("createRobotApplicationVersion", {"application": application["arn"]})
        self.say(f"   application {plan.application} version {version['version']}")

        self.say(f"[bold]3.[/] simulated robots on {serve.mqtt_url}: {plan.failing} will fail "
                 f"({FAILURE_CODE}), {plan.silent} stays silent; the rest succeed after a few "
                 f"simulated seconds (time scale {plan.time_scale:g}: a 60 s robot timeout lasts "
                 f"{ROBOT_TIMEOUT_SECONDS * plan.time_scale:g} s)")  # fmt: skip
        # The simulator reads the fleet through the API, so it starts once the fleet exists.
        simulator.start()
        self._simulator = simulator

        deployment_config = {
            "concurrentDeploymentPercentage": WAVE_PERCENT,
            "failureThresholdPercentage": plan.failure_threshold,
            "robotDeploymentTimeoutInSeconds": ROBOT_TIMEOUT_SECONDS,
        }
        job = client.call(
            "createDeploymentJob",
            {
                "clientRequestToken": f"demo-{self._token}-1",
                "fleet": fleet["arn"],
                "deploymentConfig": deployment_config,
                "deploymentApplicationConfigs": [
                    {
                        "application": version["arn"],
                        "applicationVersion": version["version"],
                        "launchConfig": {
                            "packageName": PACKAGE,
                            "launchFile": LAUNCH_FILE,
                            "preLaunchFile": PRE_LAUNCH,
                            "postLaunchFile": POST_LAUNCH,
                            "environmentVariables": {"GREETING": "hello"},
                        },
                    }
                ],
            },
        )
        self.say(f"[bold]4.[/] CreateDeploymentJob {job['arn'].rsplit('/', 1)[-1]}: waves of "
                 f"{WAVE_PERCENT}%, failure threshold {plan.failure_threshold}%")  # fmt: skip
        first = self._follow(client, "rollout", job["arn"])
        self._expect_first(first)

        self.say(f"[bold]5.[/] {plan.failing} and {plan.silent} leave the fleet for repair; "
                 f"{len(plan.new_robots)} new robots join: {', '.join(plan.new_robots)}")  # fmt: skip
        for name in (plan.failing, plan.silent):
            robot_arn = next(r["arn"] for r in self._robots(client) if r["name"] == name)
            client.call("deregisterRobot", {"fleet": fleet["arn"], "robot": robot_arn})
        for name in plan.new_robots:
            self._add_robot(client, fleet["arn"], name)
        sync = client.call(
            "syncDeploymentJob", {"clientRequestToken": f"demo-{self._token}-2", "fleet": fleet["arn"]}
        )
        self.say(f"[bold]6.[/] SyncDeploymentJob {sync['arn'].rsplit('/', 1)[-1]}")
        second = self._follow(client, "sync", sync["arn"])
        self._expect_sync(second)

    # --- steps ---
    def _count_arch(self, architecture: str, names: Sequence[str]) -> int:
        return sum(1 for name in names if self.plan.architectures[name] == architecture)

    def _add_robot(self, client: Any, fleet_arn: str, name: str) -> None:
        robot = client.call(
            "createRobot",
            {"name": name, "architecture": self.plan.architectures[name], "greengrassGroupId": "demo-group"},
        )
        client.call("registerRobot", {"fleet": fleet_arn, "robot": robot["arn"]})

    def _robots(self, client: Any) -> list[dict[str, Any]]:
        page = client.call(
            "listRobots", {"maxResults": 200, "filters": [{"name": "fleetName", "values": [self.plan.fleet]}]}
        )
        return list(page.get("robots", []))

    def _upload_bundles(self, serve: ServeHandle) -> list[dict[str, str]]:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=serve.aws_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        sources = []
        for architecture in ARCHITECTURES:
            key = f"{self.plan.application}/{architecture.lower()}/{PACKAGE}.tar.gz"
            body = build_bundle(architecture)
            etag = s3.put_object(Bucket="fleetwave-bundles", Key=key, Body=body)["ETag"].strip('"')
            self.say(f"   {architecture:<7} s3://fleetwave-bundles/{key}  {len(body)} bytes  etag {etag}")
            sources.append({"s3Bucket": "fleetwave-bundles", "s3Key": key, "architecture": architecture})
        return sources

    def _follow(self, client: Any, label: str, arn: str) -> JobView:
        display = ProgressDisplay(self.console, self.plan.architectures)
        deadline = time.monotonic() + JOB_DEADLINE_SECONDS
        with display:
            while True:
                view = read_job(client, label, arn, WAVE_PERCENT)
                display.update(view)
                if view.done:
                    break
                if self._simulator is not None and not self._simulator.running:
                    raise DemoError(f"the simulated robots stopped:\n{self._simulator.output()}")
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"{label} job {arn} still {view.status} after {JOB_DEADLINE_SECONDS:.0f} s"
                    )
                time.sleep(self.poll_seconds)
        self.views.append(view)
        return view

    def _expect_first(self, view: JobView) -> None:
        plan = self.plan
        problems = []
        if view.status != "Succeeded":
            problems.append(f"job ended {view.status} ({view.failure_code}: {view.failure_reason})")
        by_name = {robot["name"]: robot for robot in view.robots}
        failing = by_name.get(plan.failing, {})
        if (failing.get("status"), failing.get("failureCode")) != ("Failed", FAILURE_CODE):
            problems.append(f"{plan.failing} is {failing.get('status')} {failing.get('failureCode')}, "
                            f"expected Failed {FAILURE_CODE}")  # fmt: skip
        silent = by_name.get(plan.silent, {})
        if silent.get("status") != "NoResponse":
            problems.append(f"{plan.silent} is {silent.get('status')}, expected NoResponse")
        others = [n for n in plan.robots if n not in (plan.failing, plan.silent)]
        not_in_sync = [n for n in others if by_name.get(n, {}).get("status") != "InSync"]
        if not_in_sync:
            problems.append(f"not InSync: {', '.join(not_in_sync)}")
        if problems:
            raise DemoError("the rollout did not end as expected: " + "; ".join(problems))

    def _expect_sync(self, view: JobView) -> None:
        names = sorted(robot["name"] for robot in view.robots)
        problems = []
        if view.status != "Succeeded":
            problems.append(f"sync job ended {view.status} ({view.failure_code}: {view.failure_reason})")
        if names != sorted(self.plan.new_robots):
            problems.append(f"it targeted {', '.join(names) or 'no robot'}, expected only the new robots")
        if view.count("InSync") != len(view.robots):
            problems.append("not every new robot is InSync")
        if problems:
            raise DemoError("the sync did not end as expected: " + "; ".join(problems))


def run_demo(
    robots: int = DEFAULT_ROBOTS,
    time_scale: float = DEFAULT_TIME_SCALE,
    *,
    keep_running: bool = False,
    seed: int | None = None,
    console: Any = None,
    wait_forever: Callable[[], None] | None = None,
) -> int:
    from fleetwave.sdk import FleetwaveApiError, FleetwaveClient, local_credentials

    console = console or _console()
    started = time.monotonic()
    try:
        plan = DemoPlan.make(robots, time_scale, seed)
    except DemoError as error:
        console.print(f"fleetwave demo: {error}", markup=False)
        return 2
    demo = Demo(plan, console)
    demo.say(f"[bold]fleetwave demo[/]: {robots} simulated robots, time scale {time_scale:g}")
    serve: ServeHandle | None = None
    simulator: BackgroundSimulator | None = None
    sim_log = io.StringIO()
    status = 1
    try:
        serve = start_serve(time_scale)
        demo.say(f"   local stack: API {serve.api_url}  AWS {serve.aws_url}  MQTT {serve.mqtt_url}  "
                 f"(logs: {serve.log_path})")  # fmt: skip
        client = FleetwaveClient(serve.api_url, credentials=local_credentials())
        simulator = BackgroundSimulator(
            client, plan.fleet, serve.mqtt_url, plan.behaviors, time_scale=time_scale, log=sim_log
        )
        demo.run(serve, client, simulator)
        for table in summary_tables(demo.views, plan.architectures):
            console.print(table)
        elapsed = time.monotonic() - started
        demo.say(f"[green]demo finished in {elapsed:.0f} s[/]: rollout and sync ended as expected")
        status = 0
        if keep_running:
            demo.say(
                "The stack stays up; try, in another terminal:\n"
                f"  export FLEETWAVE_ENDPOINT_URL={serve.api_url} FLEETWAVE_MQTT_URL={serve.mqtt_url}\n"
                f"  fleetwave simulate --fleet {plan.fleet}\n"
                "Ctrl-C stops it."
            )
            (wait_forever or _wait_for_interrupt)()
    except DemoError as error:
        console.print(f"[red]fleetwave demo: {error}[/]", highlight=False)
        if serve is not None:
            console.print(f"last lines of {serve.log_path}:\n{serve.tail()}", markup=False, highlight=False)
    except FleetwaveApiError as error:
        console.print(f"[red]fleetwave demo: the API refused a call: {error}[/]", highlight=False)
    except KeyboardInterrupt:
        console.print("fleetwave demo: interrupted")
        status = status or 130
    finally:
        if simulator is not None:
            simulator.stop()
        if serve is not None:
            code = serve.stop()
            if code != 0 and status == 0:
                console.print(f"fleetwave demo: fleetwave serve exited with {code}", markup=False)
                status = 1
    return status


def _console() -> Any:
    from rich.console import Console

    # Off a terminal (make, CI, a pipe) rich would wrap at 80 columns: wide enough for the tables instead.
    if sys.stdout.isatty():
        return Console()
    return Console(width=160, no_color=True)


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the command line ----------------------------------------------------------------------------------
def _robots(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 4 <= value <= 500:
        raise argparse.ArgumentTypeError(f"robots must be between 4 and 500, not {value}")
    return value


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"time scale must be greater than 0 and at most 1, not {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the local stack, a simulated fleet and a rollout end to end",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--robots", type=_robots, default=DEFAULT_ROBOTS, help="robots in the fleet (default: %(default)s)"
    )
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=DEFAULT_TIME_SCALE,
        metavar="F",
        help=(
            "multiplies every simulated duration and every engine wait; at the default %(default)s the "
            "silent robot's 60 s timeout lasts 6 s"
        ),
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the local stack and the simulated robots up at the end (Ctrl-C stops them)",
    )
    parser.add_argument("--seed", type=int, default=None, help="repeat a run's random robot delays")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    return run_demo(args.robots, args.time_scale, keep_running=args.keep_running, seed=args.seed)
