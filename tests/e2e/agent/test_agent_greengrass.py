"""Greengrass components run for real on a robot: botocore's ``greengrassv2`` client against the session's
`fleetwave serve`, the real `fleetwave agent` as a process, artifacts uploaded to the embedded S3, and the
components' lifecycle scripts running as real processes (docs/greengrass.md).

One robot goes through a component set's life: a two-component deployment with a dependency (both run, the
dependency first), a revision that upgrades the dependency (both restart), and a revision whose component
fails its install (rolled back: the previous set runs again). ListInstalledComponents shows the lifecycle
states throughout. Waits poll with generous caps; nothing asserts on elapsed time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import queue
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from fakes.robomaker import BUCKET
from support.agent_harness import Robot, given_for, pid_alive
from support.waiting import wait_for

from fleetwave.sdk import greengrassv2_client

ACCOUNT = "123456789012"

# The dependency: records "<pid> <version> <topic>" in lidar-starts, then runs until stopped.
LIDAR_SCRIPT = """echo "$$ $1 $2" >> "$CONTROL_DIR/lidar-starts"
echo "$$" > "$CONTROL_DIR/lidar-pid"
while true; do sleep 0.05; done
"""
# The dependent: records whether the lidar runs (waiting for its pid file: RUNNING means its process was
# started, not that it wrote anything yet), and its speed from the configuration.
NAV_SCRIPT = """lidar=down
for _ in $(seq 1 600); do
  if [ -e "$CONTROL_DIR/lidar-pid" ] && kill -0 "$(cat "$CONTROL_DIR/lidar-pid")" 2>/dev/null; then
    lidar=up; break
  fi
  sleep 0.05
done
echo "$$ $1 speed=$2 lidar=$lidar" >> "$CONTROL_DIR/nav-starts"
while true; do sleep 0.05; done
"""


def _unique(prefix: str) -> str:
    return f"{prefix}.C{uuid.uuid4().hex[:8]}"


class Components:
    def __init__(self, gg: Any, given: Any, control: Path) -> None:
        self.gg = gg
        self.given = given
        self.control = control
        self.prefix = _unique("com.example")

    def name(self, short: str) -> str:
        return f"{self.prefix}.{short}"

    def register(self, short: str, version: str, recipe: dict[str, Any], *, as_yaml: bool = False) -> None:
        document = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": self.name(short),
            "ComponentVersion": version,
            **recipe,
        }
        text = yaml.safe_dump(document) if as_yaml else json.dumps(document)
        self.gg.create_component_version(inlineRecipe=text.encode())

    def upload(self, key: str, data: bytes) -> dict[str, str]:
        self.given.bundle(key, data)
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        return {"Uri": f"s3://{BUCKET}/{key}", "Digest": digest, "Algorithm": "SHA-256"}

    def lidar(self, version: str) -> None:
        """Registered as a YAML recipe (the other component's is JSON)."""
        artifact = self.upload(f"{self.prefix}/lidar-{version}.sh", LIDAR_SCRIPT.encode())
        self.register(
            "Lidar",
            version,
            {
                "ComponentConfiguration": {"DefaultConfiguration": {"topic": "/scan"}},
                "Manifests": [
                    {
                        "Platform": {"os": "linux"},
                        "Lifecycle": {
                            "Setenv": {"CONTROL_DIR": str(self.control)},
                            "run": f"sh {{artifacts:path}}/lidar-{version}.sh {version} "
                            "{configuration:/topic}",
                        },
                        "Artifacts": [artifact],
                    }
                ],
            },
            as_yaml=True,
        )

    def nav(self, version: str, *, install: str = "echo installed > installed.txt") -> None:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("nav/nav.sh", NAV_SCRIPT)
        artifact = self.upload(f"{self.prefix}/nav-{version}.zip", archive.getvalue())
        self.register(
            "Nav",
            version,
            {
                "ComponentDependencies": {
                    self.name("Lidar"): {"VersionRequirement": ">=1.0.0 <2.0.0", "DependencyType": "HARD"}
                },
                "ComponentConfiguration": {"DefaultConfiguration": {"speed": 1.5}},
                "Manifests": [
                    {"Platform": {"os": "windows"}, "Lifecycle": {"run": "exit 9"}},
                    {
                        "Platform": {"os": "linux", "architecture": "/amd64|x86_64/"},
                        "Lifecycle": {
                            "Setenv": {"CONTROL_DIR": str(self.control)},
                            "install": {"Script": install, "Timeout": 60},
                            "run": "sh {artifacts:decompressedPath}/nav-" + version + "/nav/nav.sh "
                            f"{version} {{configuration:/speed}}",
                        },
                        "Artifacts": [{**artifact, "Unarchive": "ZIP"}],
                    },
                ],
            },
        )

    def deploy(self, fleet: str, components: dict[str, str]) -> str:
        response = self.gg.create_deployment(
            targetArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{fleet}",
            deploymentName=_unique("deploy"),
            components={self.name(short): {"componentVersion": v} for short, v in components.items()},
            deploymentPolicies={"failureHandlingPolicy": "ROLLBACK"},
        )
        return str(response["deploymentId"])

    def installed(self, robot: str) -> dict[str, dict[str, Any]]:
        listed = self.gg.list_installed_components(coreDeviceThingName=robot, topologyFilter="ALL")
        return {item["componentName"]: item for item in listed["installedComponents"]}

    def starts(self, which: str) -> list[list[str]]:
        path = self.control / f"{which}-starts"
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _execution(components: Components, robot: str, deployment: str, details: Any) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        listed = components.gg.list_effective_deployments(coreDeviceThingName=robot)["effectiveDeployments"]
        item = next((i for i in listed if i["deploymentId"] == deployment), None)
        return item if item and item["coreDeviceExecutionStatus"] not in ("QUEUED", "IN_PROGRESS") else None

    return wait_for(f"{robot} to finish {deployment}", final, details=details)


def _running(components: Components, robot: str, versions: dict[str, str], details: Any) -> dict[str, Any]:
    """Wait until ListInstalledComponents shows exactly these versions RUNNING."""

    def shown() -> dict[str, Any] | None:
        installed = components.installed(robot)
        wanted = {components.name(short): version for short, version in versions.items()}
        ok = all(
            installed.get(name, {}).get("componentVersion") == version
            and installed[name]["lifecycleState"] == "RUNNING"
            for name, version in wanted.items()
        )
        return installed if ok and set(installed) == set(wanted) else None

    return wait_for(f"{versions} RUNNING on {robot}", shown, details=details)


def _retained_artifact_link(mqtt_url: str, robot_name: str) -> str:
    """The first artifact link of the robot's retained deploy command, read as the robot receives it."""
    received: queue.Queue[bytes] = queue.Queue()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"peek-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"fleetwave/robots/{robot_name}/deployment", qos=1)
    client.on_message = lambda c, u, m: received.put(bytes(m.payload))
    client.connect("127.0.0.1", int(mqtt_url.rsplit(":", 1)[1]))
    client.loop_start()
    try:
        command = json.loads(received.get(timeout=60))
    finally:
        client.disconnect()
        client.loop_stop()
    return next(url for spec in command["components"].values() for url in spec["artifactLinks"].values())


def _refused(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=30):
            return False
    except urllib.error.HTTPError as error:
        return error.code == 403


def _ran_first(installed: dict[str, dict[str, Any]], first: str, then: str) -> bool:
    """``first`` became RUNNING no later than ``then`` (the agent starts a dependent once its dependency
    runs)."""
    return installed[first]["lastStatusChangeTimestamp"] <= installed[then]["lastStatusChangeTimestamp"]


def _alive(starts: list[list[str]]) -> list[list[str]]:
    return [start for start in starts if pid_alive(int(start[0]))]


def test_components_run_in_dependency_order_upgrade_restarts_dependents_and_a_failed_install_rolls_back(
    robot, agents, serve, api, given
) -> None:
    components = Components(api.greengrass, given, robot.control)
    agent = agents.start(robot.name, serve.mqtt_url)
    fleet = robot.fleet["name"]

    # Given two registered components, Nav depending (HARD) on Lidar, with artifacts in S3
    components.lidar("1.0.0")
    components.nav("1.0.0")

    # When Nav alone is deployed (the service resolves Lidar)
    first = components.deploy(fleet, {"Nav": "1.0.0"})

    # Then the deployment succeeds, both run, Lidar first, with their configuration
    assert _execution(components, robot.name, first, agent.all_logs)["coreDeviceExecutionStatus"] == (
        "SUCCEEDED"
    )
    installed = _running(components, robot.name, {"Nav": "1.0.0", "Lidar": "1.0.0"}, agent.all_logs)
    assert installed[components.name("Nav")]["isRoot"] is True
    assert installed[components.name("Lidar")]["isRoot"] is False
    assert _ran_first(installed, components.name("Lidar"), components.name("Nav"))
    [lidar] = wait_for("lidar to run", lambda: _alive(components.starts("lidar")), details=agent.all_logs)
    [nav] = wait_for("nav to run", lambda: _alive(components.starts("nav")), details=agent.all_logs)
    assert lidar[1:] == ["1.0.0", "/scan"]
    assert nav[1:] == ["1.0.0", "speed=1.5", "lidar=up"]
    work = agent.work_dir / "greengrass" / "work" / components.name("Nav") / "installed.txt"
    assert work.read_text().strip() == "installed"

    # When a revision upgrades Lidar to 1.1.0
    components.lidar("1.1.0")
    second = components.deploy(fleet, {"Nav": "1.0.0", "Lidar": "1.1.0"})

    # Then Lidar and its HARD dependent Nav are restarted, Lidar first again
    assert _execution(components, robot.name, second, agent.all_logs)["coreDeviceExecutionStatus"] == (
        "SUCCEEDED"
    )
    installed = _running(components, robot.name, {"Nav": "1.0.0", "Lidar": "1.1.0"}, agent.all_logs)
    assert _ran_first(installed, components.name("Lidar"), components.name("Nav"))
    [lidar2] = wait_for("lidar 1.1.0 to run", lambda: _alive(components.starts("lidar")))
    [nav2] = wait_for("nav to run again", lambda: _alive(components.starts("nav")))
    assert lidar2[1] == "1.1.0" and lidar2[0] != lidar[0]
    assert nav2[0] != nav[0] and nav2[3] == "lidar=up"
    assert not pid_alive(int(lidar[0])) and not pid_alive(int(nav[0]))

    # When a revision brings Nav 1.2.0, whose install fails
    components.nav("1.2.0", install="echo 'calibration data missing' >&2; exit 3")
    third = components.deploy(fleet, {"Nav": "1.2.0", "Lidar": "1.1.0"})

    # Then the deployment fails, naming the component and its install, and the previous set runs again
    execution = _execution(components, robot.name, third, agent.all_logs)
    assert execution["coreDeviceExecutionStatus"] == "FAILED", execution
    reason = json.dumps(execution, default=str)
    assert components.name("Nav") in reason and "install" in reason, reason
    _running(components, robot.name, {"Nav": "1.0.0", "Lidar": "1.1.0"}, agent.all_logs)
    [nav3] = wait_for("nav 1.0.0 to run again", lambda: _alive(components.starts("nav")))
    assert nav3[1] == "1.0.0"
    assert _alive(components.starts("lidar")) == [lidar2]  # Lidar did not change: never stopped


def test_a_robot_that_comes_online_after_its_artifact_links_expired_still_runs_the_component(
    launcher, agents, tmp_path
) -> None:
    # Given a stack whose presigned links expire after 0.6 s, and a deployment to a robot that is offline
    server = launcher.start(env={"FLEETWAVE_PRESIGNED_URL_TTL_SECONDS": "60"})
    given = given_for(server)
    robot = Robot.create(given, tmp_path / "control")
    gg = greengrassv2_client(server.api_url, aws_access_key_id="testing", aws_secret_access_key="testing")
    components = Components(gg, given, robot.control)
    components.lidar("1.0.0")
    deployment = components.deploy(robot.fleet["name"], {"Lidar": "1.0.0"})
    url = _retained_artifact_link(server.mqtt_url, robot.name)
    wait_for("the artifact link to expire", lambda: _refused(url))

    # When only then the robot comes online
    agent = agents.start(robot.name, server.mqtt_url)

    # Then it asks the service for fresh artifact links, and the component runs
    agent.wait_log("artifact link unusable; asking the service for a fresh one")
    execution = _execution(components, robot.name, deployment, agent.all_logs)
    assert execution["coreDeviceExecutionStatus"] == "SUCCEEDED", execution
    _running(components, robot.name, {"Lidar": "1.0.0"}, agent.all_logs)
    wait_for("lidar to run", lambda: _alive(components.starts("lidar")), details=agent.all_logs)
