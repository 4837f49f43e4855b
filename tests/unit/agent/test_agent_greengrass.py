"""ComponentRunner: Greengrass components from their recipes, with real artifacts served over a local HTTP
server and real lifecycle processes (RobotAgent + ProcessLauncher, as `fleetwave agent` runs them)."""

from __future__ import annotations

import asyncio
import base64
import grp
import hashlib
import io
import os
import pwd
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fleetwave_service.engine.channels.port import encode_command
from fleetwave_service.engine.messages import (
    ComponentSpec,
    ComponentStatesReport,
    DeploymentCommand,
    LinkReply,
    StatusReport,
)
from support.agent_harness import pid_alive
from support.files_server import Files, serve_files

from fleetwave.agent.process import ProcessLauncher
from fleetwave.agent.protocol import RobotAgent
from fleetwave.agent.state import StateStore
from fleetwave.agent.supervisor import RestartPolicy

WAIT = 60
BUCKET = "s3://artifacts"


@pytest.fixture
def server():
    with serve_files() as url:
        yield url


def artifact(server: str, key: str, data: bytes, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A recipe artifact served at ``key`` (digest from the data) and its link."""
    Files.files[f"/{key}"] = data
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    uri = f"{BUCKET}/{key}"
    return {"Uri": uri, "Digest": digest, "Algorithm": "SHA-256", **extra}, {uri: f"{server}/{key}"}


def recipe(
    name: str,
    version: str,
    lifecycle: dict[str, Any],
    *,
    artifacts: list[dict[str, Any]] | None = None,
    depends: dict[str, str] | None = None,
    default: dict[str, Any] | None = None,
    platform: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentDependencies": {
            dep: {"VersionRequirement": req, "DependencyType": "HARD"} for dep, req in (depends or {}).items()
        },
        "Manifests": [
            {
                "Platform": platform if platform is not None else {"os": "linux"},
                "Lifecycle": lifecycle,
                "Artifacts": artifacts or [],
            }
        ],
        "ComponentConfiguration": {"DefaultConfiguration": default or {}},
    }


def spec(
    version: str, the_recipe: dict | None, links: dict[str, str] | None = None, **extra: Any
) -> ComponentSpec:
    return ComponentSpec(componentVersion=version, recipe=the_recipe, artifactLinks=links or {}, **extra)


def command(components: dict[str, ComponentSpec], *, attempt: int = 1, job: str = "gg-1", **extra: Any):
    return DeploymentCommand(
        jobId=job,
        attempt=attempt,
        components=components,
        platform={"os": "linux", "architecture": "amd64"},
        failureHandlingPolicy=extra.pop("policy", "ROLLBACK"),
        timeoutSeconds=120,
        deadline=4e9,
        issuedAt=1e9 + attempt + (100 if job != "gg-1" else 0),
        **extra,
    )


def looping(control: Path, tag: str) -> str:
    """A run script that records ``<pid> <tag>`` in control/starts and runs until stopped."""
    return f'echo "$$ {tag}" >> {control}/starts; while true; do sleep 0.05; done'


class FreshLinks:
    def __init__(self, links: dict[str, dict[str, str]]) -> None:
        self.links = links
        self.requests = 0

    async def fresh_links(self, command: DeploymentCommand) -> LinkReply:
        self.requests += 1
        return LinkReply(requestId="r", jobId=command.jobId, artifacts=self.links, sentAt=0.0)


class Robot:
    def __init__(self, work: Path, *, links=None, window: float = 0.3) -> None:
        self.reports: list[StatusReport] = []
        self.states: list[ComponentStatesReport] = []
        self.state = StateStore(work, robot_name="robot-1").load()
        self.launcher = ProcessLauncher(
            work,
            robot_name="robot-1",
            health_window_seconds=window,
            state=self.state,
            links=links,
            restart_policy=RestartPolicy(initial_delay_seconds=0.05, max_delay_seconds=0.1),
            on_components=self.states.append,
        )
        self.agent = RobotAgent("robot-1", self.launcher, self.reports.append, state=self.state)
        self.work = work

    async def deploy(self, item: DeploymentCommand) -> StatusReport:
        self.agent.receive(encode_command(item))
        await asyncio.wait_for(self.agent.idle(), WAIT)
        return self.reports[-1]

    def lifecycle(self) -> dict[str, tuple[str, str]]:
        """Component -> (version, state) as last reported."""
        last = self.states[-1].components if self.states else {}
        return {name: (s.componentVersion, s.lifecycleState.value) for name, s in last.items()}

    def changes(self) -> list[tuple[str, str]]:
        """(component, state) for every state change reported, in order."""
        found, last = [], {}
        for report in self.states:
            for name, state in report.components.items():
                if last.get(name) != state.lifecycleState.value:
                    last[name] = state.lifecycleState.value
                    found.append((name, state.lifecycleState.value))
        return found

    async def until(self, what: str, check) -> Any:
        for _ in range(int(WAIT / 0.05)):
            found = check()
            if found:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.lifecycle()}")


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario, WAIT * 2))


def pids(control: Path, tag: str | None = None) -> list[int]:
    path = control / "starts"
    lines = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return [int(p) for p, t in lines if tag is None or t == tag]


def test_recipe_variables_configuration_artifacts_and_setenv_reach_the_scripts(server, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app/hello.txt", "hello")
    zipped, zip_link = artifact(server, "app-1.0.0.zip", archive.getvalue(), Unarchive="ZIP")
    plain, plain_link = artifact(server, "tool.sh", b"echo tool")
    lidar = recipe("Lidar", "2.0.0", {"run": looping(control, "lidar")}, default={"topic": "/scan"})
    app = recipe(
        "App",
        "1.0.0",
        {
            "Setenv": {"TOPIC": "{Lidar:configuration:/topic}"},
            "install": "cat {artifacts:decompressedPath}/app-1.0.0/app/hello.txt > installed.txt",
            "run": {
                "Script": 'echo "$$ app" >> ' + str(control) + "/starts; "
                'echo "{configuration:/speed} {configuration:/limits/max} {iot:thingName} $TOPIC $MODE '
                '{artifacts:path}" > {work:path}/seen.txt; sh {artifacts:path}/tool.sh >> seen.txt; '
                "while true; do sleep 0.05; done",
                "Setenv": {"MODE": "{configuration:/mode}"},
            },
        },
        artifacts=[zipped, plain],
        depends={"Lidar": "^2.0.0"},
        default={"speed": 1.0, "mode": "safe", "limits": {"max": 3}},
    )
    robot = Robot(tmp_path / "work")

    async def scenario():
        update = {"merge": '{"speed": 2.5}', "reset": ["/mode"]}
        report = await robot.deploy(
            command(
                {
                    "App": spec("1.0.0", app, {**zip_link, **plain_link}, configurationUpdate=update),
                    "Lidar": spec("2.0.0", lidar, root=False),
                }
            )
        )
        assert report.status.value == "InSync", report.failureReason
        assert robot.lifecycle() == {"App": ("1.0.0", "RUNNING"), "Lidar": ("2.0.0", "RUNNING")}
        work = robot.work / "greengrass" / "work" / "App"
        seen = await robot.until("the run script's output", lambda: (work / "seen.txt").exists())
        assert seen
        await robot.until("tool output", lambda: "tool" in (work / "seen.txt").read_text())
        first, tool = (work / "seen.txt").read_text().splitlines()
        artifacts = robot.work / "greengrass" / "packages" / "artifacts" / "App" / "1.0.0"
        assert first == f"2.5 3 robot-1 /scan safe {artifacts}"
        assert tool == "tool"
        assert (work / "installed.txt").read_text() == "hello"
        # Lidar (the dependency) ran before App started
        changes = robot.changes()
        assert changes.index(("Lidar", "RUNNING")) < changes.index(("App", "STARTING"))
        await robot.launcher.close()

    run(scenario())


@pytest.mark.parametrize(
    ("components", "step", "reason"),
    [
        (
            {"Nav": spec("1.0.0", recipe("Nav", "1.0.0", {"run": "true"}, platform={"os": "windows"}))},
            "Validating",
            "component Nav: version 1.0.0 has no manifest for this robot's platform "
            '{"architecture": "amd64"',
        ),
        (
            {
                "A": spec("1.0.0", recipe("A", "1.0.0", {"run": "true"}, depends={"B": "*"})),
                "B": spec("1.0.0", recipe("B", "1.0.0", {"run": "true"}, depends={"A": "*"})),
            },
            "Validating",
            "dependency cycle: A -> B -> A",
        ),
        (
            {
                "Nav": spec("1.0.0", recipe("Nav", "1.0.0", {"run": "true"}, depends={"Lidar": ">=2.0.0"})),
                "Map": spec("1.0.0", recipe("Map", "1.0.0", {"run": "true"}, depends={"Lidar": "~1.4.0"})),
                "Lidar": spec("1.5.0", recipe("Lidar", "1.5.0", {"run": "true"})),
            },
            "Validating",
            "Lidar 1.5.0 does not satisfy: Map 1.0.0 requires ~1.4.0; Nav 1.0.0 requires >=2.0.0",
        ),
        (
            {"Nav": spec("1.0.0", recipe("Nav", "1.0.0", {"run": "true"}, depends={"Lidar": "^1.0.0"}))},
            "Validating",
            "Lidar is not in the deployment (Nav 1.0.0 requires ^1.0.0)",
        ),
        (
            {"Nav": spec("1.0.0", None)},
            "Validating",
            "component Nav: version 1.0.0 is not registered",
        ),
        (
            {
                "Nav": spec(
                    "1.0.0",
                    recipe("Nav", "1.0.0", {"run": "true"}),
                    runWith={"systemResourceLimits": {"memory": 1024}},
                )
            },
            "Validating",
            "component Nav: runWith.systemResourceLimits is not supported",
        ),
        (
            {
                "Nav": spec(
                    "1.0.0", recipe("Nav", "1.0.0", {"run": "true"}), runWith={"posixUser": "no-such-user-x"}
                )
            },
            "Validating",
            "component Nav: runWith.posixUser no-such-user-x",
        ),
        (
            {"Nav": spec("1.0.0", recipe("Nav", "1.0.0", {"bootstrap": "reboot"}))},
            "Validating",
            "component Nav: lifecycle step(s) bootstrap are not supported",
        ),
        (
            {
                "Nav": spec(
                    "1.0.0",
                    recipe("Nav", "1.0.0", {"run": "true"}, artifacts=[{"Uri": f"{BUCKET}/missing.zip"}]),
                    {f"{BUCKET}/missing.zip": "SERVER/missing.zip"},
                )
            },
            "DownloadingExtracting",
            "artifact s3://artifacts/missing.zip of component Nav URL answered HTTP 404",
        ),
    ],
    ids=["no-manifest", "cycle", "conflict", "missing-dependency", "unregistered", "resource-limits",
         "unknown-user", "bootstrap", "missing-artifact"],
)  # fmt: skip
def test_bad_component_sets_fail_with_a_reason_naming_the_component_and_change_nothing(
    server, tmp_path, components, step, reason
):
    control = tmp_path / "control"
    control.mkdir()
    for item in components.values():
        item.artifactLinks = {k: v.replace("SERVER", server) for k, v in item.artifactLinks.items()}
    good = recipe("Good", "1.0.0", {"run": looping(control, "good")})
    robot = Robot(tmp_path / "work")

    async def scenario():
        assert (await robot.deploy(command({"Good": spec("1.0.0", good)}))).status.value == "InSync"
        [pid] = await robot.until("good to run", lambda: pids(control))
        report = await robot.deploy(command(components, job="gg-2"))
        assert (report.status.value, report.step.value) == ("Failed", step), report
        assert reason in (report.failureReason or ""), report.failureReason
        # The robot keeps running what it ran before
        assert pid_alive(pid) and pids(control) == [pid]
        assert robot.lifecycle() == {"Good": ("1.0.0", "RUNNING")}
        await robot.launcher.close()

    run(scenario())


def test_digest_mismatch_fails_and_an_expired_link_is_replaced_by_a_fresh_one(server, tmp_path):
    data = b"echo ok"
    good, _ = artifact(server, "tool.sh", data)
    links = FreshLinks({"Tool": {good["Uri"]: f"{server}/tool.sh"}})
    robot = Robot(tmp_path / "work", links=links)
    bad = {**good, "Digest": base64.b64encode(hashlib.sha256(b"other").digest()).decode()}

    async def scenario():
        tampered = recipe("Tool", "1.0.0", {"run": "true"}, artifacts=[bad])
        report = await robot.deploy(
            command({"Tool": spec("1.0.0", tampered, {good["Uri"]: f"{server}/tool.sh"})})
        )
        assert (report.status.value, report.failureCode) == ("Failed", "EtagMismatch")
        assert "component Tool: artifact s3://artifacts/tool.sh has SHA-256 digest" in report.failureReason
        fine = recipe("Tool", "1.0.0", {"install": "sh {artifacts:path}/tool.sh > out.txt"}, artifacts=[good])
        stale = {good["Uri"]: f"{server}/tool.sh?expired"}
        report = await robot.deploy(command({"Tool": spec("1.0.0", fine, stale)}, job="gg-2"))
        assert report.status.value == "InSync", report.failureReason
        assert links.requests == 1
        assert (robot.work / "greengrass" / "work" / "Tool" / "out.txt").read_text() == "ok\n"
        assert robot.lifecycle() == {"Tool": ("1.0.0", "FINISHED")}  # no startup, no run: done once installed

    run(scenario())


def test_install_timeout_rolls_back_and_removed_components_are_stopped_with_their_shutdown(server, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    robot = Robot(tmp_path / "work")
    first = {
        "Nav": spec("1.0.0", recipe("Nav", "1.0.0", {"run": looping(control, "nav1")})),
        "Old": spec(
            "1.0.0",
            recipe(
                "Old",
                "1.0.0",
                {"run": looping(control, "old"), "shutdown": f"echo bye >> {control}/shutdowns"},
            ),
        ),
    }

    async def scenario():
        assert (await robot.deploy(command(first))).status.value == "InSync"
        nav, old = await robot.until("both to run", lambda: len(pids(control)) == 2 and pids(control))
        slow = recipe("Nav", "2.0.0", {"install": {"Script": "sleep 30", "Timeout": 1}, "run": "true"})
        report = await robot.deploy(command({"Nav": spec("2.0.0", slow)}, job="gg-2"))
        assert report.status.value == "Failed"
        assert "component Nav: its install script timed out after 1 s" in report.failureReason
        assert "rolled back to the previous components (Nav 1.0.0, Old 1.0.0)" in report.failureReason
        # Old was stopped (its shutdown ran) and started again; Nav 1.0.0 runs again
        assert (control / "shutdowns").read_text() == "bye\n"
        await robot.until(
            "Nav 1.0.0 and Old again", lambda: len([p for p in pids(control) if pid_alive(p)]) == 2
        )
        assert not pid_alive(nav) and not pid_alive(old)
        assert robot.lifecycle() == {"Nav": ("1.0.0", "RUNNING"), "Old": ("1.0.0", "RUNNING")}
        # A deployment without Old stops and uninstalls it
        report = await robot.deploy(command({"Nav": first["Nav"]}, job="gg-3"))
        assert report.status.value == "InSync", report.failureReason
        assert robot.lifecycle() == {"Nav": ("1.0.0", "RUNNING")}
        assert (control / "shutdowns").read_text() == "bye\nbye\n"
        assert not (robot.work / "greengrass" / "work" / "Old").exists()
        assert [p for p in pids(control, "old") if pid_alive(p)] == []
        await robot.launcher.close()

    run(scenario())


def test_do_nothing_leaves_a_failed_component_broken_and_supervision_breaks_after_three_errors(
    server, tmp_path
):
    control = tmp_path / "control"
    control.mkdir()
    robot = Robot(tmp_path / "work", window=1.0)
    crashing = recipe("Nav", "1.0.0", {"run": f'echo "$$ nav" >> {control}/starts; echo boom; exit 4'})
    # Runs until the test creates control/fail; from then on every start fails at once.
    failing_later = (
        f'echo "$$ map" >> {control}/starts; while [ ! -e {control}/fail ]; do sleep 0.05; done; exit 7'
    )
    flaky = recipe("Map", "1.0.0", {"run": failing_later})

    async def scenario():
        report = await robot.deploy(command({"Nav": spec("1.0.0", crashing)}, policy="DO_NOTHING"))
        assert report.status.value == "Failed"
        assert "component Nav: its run script exited with status 4" in report.failureReason
        assert "boom" in report.failureReason and "DO_NOTHING" in report.failureReason
        assert report.components["Nav"].status == "FAILED"
        assert robot.lifecycle() == {"Nav": ("1.0.0", "BROKEN")}
        # A committed component whose run keeps failing: ERRORED, restarted, then BROKEN at the third error
        report = await robot.deploy(command({"Map": spec("1.0.0", flaky)}, job="gg-2"))
        assert report.status.value == "InSync", report.failureReason
        (control / "fail").touch()
        await robot.until("Map BROKEN", lambda: robot.lifecycle().get("Map") == ("1.0.0", "BROKEN"))
        seen = [r.components["Map"].lifecycleState.value for r in robot.states if "Map" in r.components]
        assert "ERRORED" in seen
        assert len(pids(control, "map")) == 3
        assert robot.states[-1].components["Map"].lifecycleStatusCodes == ["RUN_ERROR"]
        await robot.launcher.close()

    run(scenario())


def test_public_components_are_reported_skipped_and_startup_components_run(server, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    robot = Robot(tmp_path / "work")
    daemon_recipe = recipe(
        "Daemon",
        "1.0.0",
        {
            # A daemon in the background: the component while it runs
            "startup": f"echo started >> {control}/startup; "
            f"(while true; do sleep 0.05; done) & echo $! > {control}/daemon",
            "shutdown": f"echo stopped >> {control}/startup",
        },
    )

    async def scenario():
        components = {"aws.greengrass.Cli": spec("2.12.0", None), "Daemon": spec("1.0.0", daemon_recipe)}
        report = await robot.deploy(command(components))
        assert report.status.value == "InSync", report.failureReason
        last = robot.states[-1].components
        assert last["aws.greengrass.Cli"].lifecycleState.value == "FINISHED"
        assert last["aws.greengrass.Cli"].lifecycleStatusCodes == ["NOT_SUPPORTED_ON_FLEETWAVE_AGENT"]
        assert last["Daemon"].lifecycleState.value == "RUNNING"
        daemon = int((control / "daemon").read_text())
        assert pid_alive(daemon)  # the startup script's background process keeps running
        await robot.launcher.close()
        assert (control / "startup").read_text() == "started\nstopped\n"
        # and stops with the component
        await robot.until("the daemon to stop", lambda: not pid_alive(daemon))

    run(scenario())


def test_an_agent_restart_starts_the_installed_components_again(server, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    nav = recipe("Nav", "1.0.0", {"run": looping(control, "nav")})

    async def first_run():
        robot = Robot(tmp_path / "work")
        await robot.agent.start()
        assert (await robot.deploy(command({"Nav": spec("1.0.0", nav)}))).status.value == "InSync"
        await robot.until("nav to run", lambda: pids(control))
        await robot.launcher.close()

    async def second_run():
        robot = Robot(tmp_path / "work")
        await robot.agent.start()
        assert robot.lifecycle() == {"Nav": ("1.0.0", "RUNNING")}
        assert robot.reports == []  # the deployment had finished: nothing to report again
        await robot.until("nav to run again", lambda: len([p for p in pids(control) if pid_alive(p)]) == 1)
        await robot.launcher.close()

    run(first_run())
    assert [p for p in pids(control) if pid_alive(p)] == []
    run(second_run())
    assert len(pids(control)) == 2
    os.sync()


def test_a_hard_dependent_is_restarted_when_its_dependency_errors_and_runs_again(server, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    lidar = recipe(
        "Lidar",
        "1.0.0",
        {
            "run": f'echo "$$ lidar" >> {control}/starts; '
            f"while true; do if [ -e {control}/crash ]; then rm -f {control}/crash; exit 5; fi; "
            "sleep 0.05; done"
        },
    )
    nav = recipe("Nav", "1.0.0", {"run": looping(control, "nav")}, depends={"Lidar": "^1.0.0"})
    robot = Robot(tmp_path / "work")

    async def scenario():
        components = {"Lidar": spec("1.0.0", lidar), "Nav": spec("1.0.0", nav)}
        assert (await robot.deploy(command(components))).status.value == "InSync"
        [first_nav] = await robot.until("nav to run", lambda: pids(control, "nav"))
        # When the dependency's run exits with an error
        (control / "crash").touch()
        # Then it is restarted, and its HARD dependent with it, after it
        await robot.until("lidar restarted", lambda: len(pids(control, "lidar")) == 2)
        await robot.until("nav restarted", lambda: len(pids(control, "nav")) == 2)
        assert not pid_alive(first_nav)
        changes = robot.changes()
        errored = changes.index(("Lidar", "ERRORED"))
        again = changes.index(("Lidar", "RUNNING"), errored)
        assert errored < changes.index(("Nav", "STOPPING"), errored) < again
        assert again < changes.index(("Nav", "STARTING"), again)
        await robot.until(
            "both RUNNING",
            lambda: robot.lifecycle() == {"Lidar": ("1.0.0", "RUNNING"), "Nav": ("1.0.0", "RUNNING")},
        )
        seen = [r.components["Lidar"].lifecycleState.value for r in robot.states]
        assert "ERRORED" in seen
        await robot.launcher.close()

    run(scenario())


def test_an_upgraded_dependency_stops_after_its_dependent_and_starts_before_it(server, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    nav = recipe("Nav", "1.0.0", {"run": looping(control, "nav")}, depends={"Lidar": "^1.0.0"})
    robot = Robot(tmp_path / "work")

    async def scenario():
        first = {
            "Lidar": spec("1.0.0", recipe("Lidar", "1.0.0", {"run": looping(control, "lidar1")})),
            "Nav": spec("1.0.0", nav),
        }
        assert (await robot.deploy(command(first))).status.value == "InSync"
        before = len(robot.changes())
        upgrade = {
            **first,
            "Lidar": spec("1.1.0", recipe("Lidar", "1.1.0", {"run": looping(control, "lidar2")})),
        }
        assert (await robot.deploy(command(upgrade, job="gg-2"))).status.value == "InSync"
        changes = robot.changes()[before:]
        # Stopped in reverse dependency order, started in dependency order
        assert changes.index(("Nav", "STOPPING")) < changes.index(("Lidar", "STOPPING"))
        assert changes.index(("Lidar", "RUNNING")) < changes.index(("Nav", "STARTING"))
        assert robot.lifecycle() == {"Lidar": ("1.1.0", "RUNNING"), "Nav": ("1.0.0", "RUNNING")}
        await robot.launcher.close()

    run(scenario())


@pytest.mark.skipif(os.geteuid() != 0, reason="only an agent running as root can run scripts as another user")
def test_run_with_posix_user_runs_the_scripts_as_that_user(server):
    # A work directory other users can reach (pytest's own temporary root is private to root)
    base = Path(tempfile.mkdtemp(prefix="fleetwave-posix-user-"))
    base.chmod(0o755)
    whoami = recipe(
        "Who",
        "1.0.0",
        {"install": {"Script": "echo $(id -un) $(id -gn) > whoami", "RequiresPrivilege": False}},
    )
    robot = Robot(base / "work")
    (base / "work").chmod(0o755)

    async def scenario():
        report = await robot.deploy(command({"Who": spec("1.0.0", whoami, runWith={"posixUser": "nobody"})}))
        assert report.status.value == "InSync", report.failureReason
        work = robot.work / "greengrass" / "work" / "Who"
        primary = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        assert (work / "whoami").read_text().split() == ["nobody", primary]
        assert work.owner() == "nobody"

    try:
        run(scenario())
    finally:
        shutil.rmtree(base, ignore_errors=True)
