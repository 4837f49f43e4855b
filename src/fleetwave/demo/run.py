"""`fleetwave demo`, step by step: start the stack, make the fleet and the application, roll out, sync,
sum up."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from fleetwave.demo.bundle import LAUNCH_FILE, PACKAGE, POST_LAUNCH, PRE_LAUNCH, build_bundle
from fleetwave.demo.plan import (
    ARCHITECTURES,
    DEFAULT_ROBOTS,
    DEFAULT_TIME_SCALE,
    FAILURE_CODE,
    WAVE_PERCENT,
    DemoError,
    DemoPlan,
)
from fleetwave.local.serve_process import ServeError, ServeProcess, start_serve
from fleetwave.local.signals import wait_for_interrupt
from fleetwave.local.simulator import BackgroundSimulator
from fleetwave.watch.display import ProgressDisplay, make_console, summary_tables
from fleetwave.watch.view import JobView, read_job

ROBOT_TIMEOUT_SECONDS = 60  # the API's minimum; the time scale shrinks the wait for the silent robot
SERVE_START_SECONDS = 120.0
SERVE_START_ATTEMPTS = 3
# Caps, not expectations: each rollout below takes seconds at the default time scale.
JOB_DEADLINE_SECONDS = 300.0


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

    def run(self, serve: ServeProcess, client: Any, simulator: BackgroundSimulator) -> None:
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

        broker = serve.mqtts_url + " (mTLS, a certificate each)" if simulator.mtls else serve.mqtt_url
        self.say(f"[bold]3.[/] simulated robots on {broker}: {plan.failing} will fail "
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

    def _upload_bundles(self, serve: ServeProcess) -> list[dict[str, str]]:
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


def _start_stack(time_scale: float) -> ServeProcess:
    """`fleetwave serve` on free ports, its output in one log file (retried if a port got taken)."""
    try:
        return start_serve(
            time_scale=f"{time_scale:g}",
            start_timeout=SERVE_START_SECONDS,
            merge_output=True,
            attempts=SERVE_START_ATTEMPTS,
            workdir_prefix="fleetwave-demo-",
        )
    except ServeError as error:
        raise DemoError(f"fleetwave serve did not start; its last output:\n{error.server.tail()}") from None


def run_demo(
    robots: int = DEFAULT_ROBOTS,
    time_scale: float = DEFAULT_TIME_SCALE,
    *,
    keep_running: bool = False,
    seed: int | None = None,
    console: Any = None,
    wait_forever: Callable[[], None] | None = None,
    mtls: bool = False,
    greengrass: bool = False,
) -> int:
    from fleetwave.sdk import FleetwaveApiError, FleetwaveClient, local_credentials

    console = console or make_console()
    started = time.monotonic()
    try:
        plan = DemoPlan.make(robots, time_scale, seed)
    except DemoError as error:
        console.print(f"fleetwave demo: {error}", markup=False)
        return 2
    demo = Demo(plan, console)
    if greengrass:
        demo.say("[bold]fleetwave demo --greengrass[/]: a Greengrass component on real robot agents")
    else:
        demo.say(f"[bold]fleetwave demo[/]: {robots} simulated robots, time scale {time_scale:g}")
    serve: ServeProcess | None = None
    simulator: BackgroundSimulator | None = None
    sim_log = io.StringIO()
    status = 1
    try:
        serve = _start_stack(time_scale)
        demo.say(f"   local stack: API {serve.api_url}  AWS {serve.aws_url}  MQTT {serve.mqtt_url}  "
                 f"(logs: {serve.log_path})")  # fmt: skip
        if greengrass:
            from fleetwave.demo.greengrass import run_greengrass_demo

            run_greengrass_demo(serve, console)
            elapsed = time.monotonic() - started
            demo.say(f"[green]demo finished in {elapsed:.0f} s[/]: the component runs on every robot")
            return 0
        client = FleetwaveClient(serve.api_url, credentials=local_credentials())
        simulator = BackgroundSimulator(
            client,
            plan.fleet,
            serve.mqtt_url,
            plan.behaviors,
            time_scale=time_scale,
            log=sim_log,
            mtls_endpoint=serve.api_url if mtls else None,
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
                f"  fleetwave simulate --fleet {plan.fleet}{' --mtls' if mtls else ''}\n"
                "Ctrl-C stops it."
            )
            (wait_forever or wait_for_interrupt)()
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
