"""`fleetwave demo --greengrass`: a Greengrass component runs for real on two robots.

It starts `fleetwave serve` on free ports, creates a fleet of two robots, starts the real robot agent
(`fleetwave agent`, one process per robot, in a temporary work directory), uploads a component's artifact (a
shell script) to the embedded S3, registers the component with botocore's ``greengrassv2`` client
(CreateComponentVersion, a recipe with a run script and a configuration), deploys it to the fleet's thing
group (CreateDeployment) and waits until ListInstalledComponents shows it RUNNING on every robot, then
prints each robot's component state and the first lines its process wrote.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fleetwave.demo.plan import DemoError
from fleetwave.local.serve_process import ServeProcess

COMPONENT = "com.example.HelloFleet"
VERSION = "1.0.0"
ROBOTS = 2
BUCKET = "fleetwave-bundles"
# A cap, not an expectation: the deployment takes a few seconds.
DEADLINE_SECONDS = 180.0
GREETER = """#!/bin/sh
# The demo component's artifact: greets every second with its configuration.
n=0
while true; do
  n=$((n + 1))
  echo "$1 from $2 (#$n)"
  sleep 1
done
"""


def _recipe(digest: str) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": COMPONENT,
        "ComponentVersion": VERSION,
        "ComponentDescription": "Fleetwave demo: greets from each robot",
        "ComponentPublisher": "Fleetwave demo",
        "ComponentConfiguration": {"DefaultConfiguration": {"greeting": "hello"}},
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Lifecycle": {
                    "run": "sh {artifacts:path}/greeter.sh '{configuration:/greeting}' {iot:thingName}"
                },
                "Artifacts": [
                    {
                        "Uri": f"s3://{BUCKET}/demo/{COMPONENT}/{VERSION}/greeter.sh",
                        "Digest": digest,
                        "Algorithm": "SHA-256",
                    }
                ],
            }
        ],
    }


class GreengrassDemo:
    def __init__(self, serve: ServeProcess, console: Any, work: Path) -> None:
        from fleetwave.sdk import FleetwaveClient, greengrassv2_client, local_credentials

        self.serve = serve
        self.console = console
        self.work = work
        credentials = local_credentials()
        self.client = FleetwaveClient(serve.api_url, credentials=credentials)
        self.gg = greengrassv2_client(
            serve.api_url,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
        )
        token = uuid.uuid4().hex[:6]
        self.fleet = f"gg-demo-{token}"
        self.robots = [f"gg-robot-{token}-{i}" for i in range(1, ROBOTS + 1)]
        self.agents: list[subprocess.Popen[bytes]] = []

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def run(self) -> None:
        self.say(
            f"[bold]1.[/] fleet {self.fleet} (thing group) with {ROBOTS} robots: {', '.join(self.robots)}"
        )
        fleet = self.client.call("createFleet", {"name": self.fleet})
        for name in self.robots:
            robot = self.client.call(
                "createRobot", {"name": name, "architecture": "X86_64", "greengrassGroupId": "demo-group"}
            )
            self.client.call("registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})
        self.say(f"[bold]2.[/] the real robot agent for each robot (work directories under {self.work})")
        for name in self.robots:
            self._start_agent(name)

        body = GREETER.encode()
        key = f"demo/{COMPONENT}/{VERSION}/greeter.sh"
        self.serve.aws_client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        self.say(f"[bold]3.[/] artifact s3://{BUCKET}/{key} ({len(body)} bytes, SHA-256 {digest})")
        created = self.gg.create_component_version(inlineRecipe=json.dumps(_recipe(digest)).encode())
        self.say(f"   CreateComponentVersion {created['componentName']} {created['componentVersion']}: "
                 f"{created['status']['componentState']}")  # fmt: skip

        target = f"arn:aws:iot:us-east-1:123456789012:thinggroup/{self.fleet}"
        deployment = self.gg.create_deployment(
            targetArn=target,
            deploymentName="hello-fleet",
            components={
                COMPONENT: {
                    "componentVersion": VERSION,
                    "configurationUpdate": {"merge": json.dumps({"greeting": "hello Greengrass"})},
                }
            },
        )
        self.say(f"[bold]4.[/] CreateDeployment {deployment['deploymentId']} -> {target}")
        states = self._wait_running()
        self.say("[bold]5.[/] ListInstalledComponents")
        for robot in self.robots:
            item = states[robot]
            log = self._component_log(robot)
            self.say(f"   {robot}  {COMPONENT} {item['componentVersion']}  {item['lifecycleState']}  "
                     f"output: {log[0] if log else '(none yet)'}")  # fmt: skip

    def _start_agent(self, name: str) -> None:
        work = self.work / name
        work.mkdir(parents=True)
        command = [
            sys.executable, "-m", "fleetwave.cli", "agent", "--robot", name,
            "--mqtt-url", self.serve.mqtt_url, "--work-dir", str(work), "--health-window", "2",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
        with (self.work / f"{name}.log").open("wb") as log:
            self.agents.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))

    def _wait_running(self) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            found = {}
            for robot in self.robots:
                listed = self.gg.list_installed_components(coreDeviceThingName=robot)["installedComponents"]
                item = next((i for i in listed if i["componentName"] == COMPONENT), None)
                if item is not None and item["lifecycleState"] == "RUNNING" and self._component_log(robot):
                    found[robot] = item
            if len(found) == len(self.robots):
                return found
            stopped = [p for p in self.agents if p.poll() is not None]
            if stopped:
                raise DemoError(f"a robot agent exited ({stopped[0].returncode}); logs in {self.work}")
            if time.monotonic() > deadline:
                raise DemoError(f"{COMPONENT} not RUNNING on every robot after {DEADLINE_SECONDS:.0f} s "
                                f"(robot agent logs in {self.work})")  # fmt: skip
            time.sleep(0.5)

    def _component_log(self, robot: str) -> list[str]:
        path = self.work / robot / "greengrass" / "logs" / f"{COMPONENT}.log"
        with contextlib.suppress(OSError):
            return [line for line in path.read_text().splitlines() if line and not line.startswith("---")]
        return []

    def stop(self) -> None:
        for process in self.agents:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.agents:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_greengrass_demo(serve: ServeProcess, console: Any) -> None:
    """The Greengrass part on a running stack (DemoError when something did not happen as it should)."""
    with tempfile.TemporaryDirectory(prefix="fleetwave-demo-greengrass-") as scratch:
        demo = GreengrassDemo(serve, console, Path(scratch))
        try:
            demo.run()
        finally:
            demo.stop()
