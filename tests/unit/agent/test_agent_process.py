"""ProcessLauncher: a real bundle (tar.gz/zip with scripts) served over a local HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from fleetwave_service.engine.channels.port import encode_command
from fleetwave_service.engine.messages import (
    AbortCommand,
    Bundle,
    DeploymentCommand,
    DownloadCondition,
    HealthReport,
    LaunchConfig,
    LinkReply,
    ProgressStep,
    StatusReport,
)
from support.files_server import Files, serve_files

from fleetwave.agent.process import MARKER_VARIABLE, ProcessLauncher
from fleetwave.agent.protocol import RobotAgent
from fleetwave.agent.state import STATE_FILE, StateStore
from fleetwave.agent.supervisor import marked_processes

WAIT = 60

LAUNCH = """#!/bin/sh
echo "$ROBOT_MODE $FLEETWAVE_ROBOT_NAME $FLEETWAVE_JOB_ID" > "$FLEETWAVE_BUNDLE_DIR/../launched.txt"
echo $$ > "$FLEETWAVE_BUNDLE_DIR/../app.pid"
exec sleep 60
"""


@pytest.fixture
def server():
    with serve_files() as url:
        yield url


def tar_gz(members: dict[str, str], *, mode: int = 0o755) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_of(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def bundle_files(**overrides: str) -> dict[str, str]:
    files = {
        "hello/hello.launch": LAUNCH,
        "scripts/pre.sh": 'echo "pre $ROBOT_MODE" > "$FLEETWAVE_BUNDLE_DIR/../pre.txt"\n',
        "scripts/post.sh": 'echo post > "$FLEETWAVE_BUNDLE_DIR/../post.txt"\n',
    }
    files.update(overrides)
    return files


def command(
    base: str,
    *,
    job: str = "deployment-aaaaaaaaaaaa",
    attempt: int = 1,
    bundle_path: str = "/bundle.tar.gz",
    etag: str | None = None,
    condition: bool = False,
    pre: bool = True,
    post: bool = True,
) -> DeploymentCommand:
    return DeploymentCommand(
        jobId=job,
        attempt=attempt,
        application="hello",
        applicationVersion="1",
        bundle=Bundle(url=base + bundle_path, etag=etag, architecture="X86_64"),
        launchConfig=LaunchConfig(
            packageName="hello",
            launchFile="hello.launch",
            preLaunchFile="scripts/pre.sh" if pre else None,
            postLaunchFile="scripts/post.sh" if post else None,
            environmentVariables={"ROBOT_MODE": "demo"},
        ),
        downloadCondition=DownloadCondition(url=base + "/condition.sh") if condition else None,
        timeoutSeconds=120,
        deadline=4e9,
        issuedAt=1e9 + attempt,
    )


class Robot:
    def __init__(self, work: Path, *, state: bool = False, links=None, window: float = 0.3) -> None:
        self.reports: list[StatusReport] = []
        self.health: list[HealthReport] = []
        self.state = StateStore(work, robot_name="robot-1").load() if state else None
        self.launcher = ProcessLauncher(
            work,
            robot_name="robot-1",
            health_window_seconds=window,
            state=self.state,
            links=links,
            on_health=self.health.append,
        )
        self.agent = RobotAgent("robot-1", self.launcher, self.reports.append, state=self.state)
        self.work = work

    def deployment_dir(self, job: str = "deployment-aaaaaaaaaaaa", attempt: int = 1) -> Path:
        return self.work / "deployments" / f"{job}-{attempt}"

    @property
    def last(self) -> StatusReport:
        return self.reports[-1]


async def deploy(robot: Robot, *commands: DeploymentCommand | AbortCommand) -> Robot:
    for item in commands:
        robot.agent.receive(encode_command(item))
    await asyncio.wait_for(robot.agent.idle(), WAIT)
    return robot


def run(scenario):
    """One event loop per test: the launched application belongs to the loop that started it."""
    return asyncio.run(asyncio.wait_for(scenario, WAIT))


def deploy_once(robot: Robot, *commands: DeploymentCommand | AbortCommand) -> Robot:
    async def scenario():
        try:
            await deploy(robot, *commands)
        finally:
            await robot.launcher.close()

    run(scenario())
    return robot


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a parent) is not running either.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


def test_process_launcher_deploys_a_tar_gz_bundle_end_to_end(server, tmp_path):
    # Given a bundle with a launch file and pre/post scripts, its etag, and a download condition that passes
    Files.files["/bundle.tar.gz"] = body = tar_gz(bundle_files())
    Files.files["/condition.sh"] = b"exit 0\n"
    robot = Robot(tmp_path)

    async def scenario():
        try:
            await deploy(robot, command(server, etag=hashlib.md5(body).hexdigest(), condition=True))
            pid = robot.launcher.application_pid
            running = pid is not None and pid_alive(pid)
        finally:
            await robot.launcher.close()
        return pid, running

    pid, running = run(scenario())
    # Then the robot is InSync after running every step, in the reference order
    assert robot.last.status.value == "InSync", robot.last.failureReason
    assert [r.step for r in robot.reports] == list(ProgressStep)
    here = robot.deployment_dir()
    assert (here / "pre.txt").read_text().strip() == "pre demo"
    assert (here / "post.txt").read_text().strip() == "post"
    assert (here / "launched.txt").read_text().split() == ["demo", "robot-1", "deployment-aaaaaaaaaaaa"]
    # The application was running after launch, and is stopped when the agent closes
    assert running
    assert not pid_alive(pid)


def test_process_launcher_deploys_a_zip_bundle_without_served_etag_by_md5(server, tmp_path):
    Files.files["/bundle.zip"] = body = zip_of(bundle_files())
    Files.send_etag = False
    robot = deploy_once(
        Robot(tmp_path),
        command(server, bundle_path="/bundle.zip", etag=hashlib.md5(body).hexdigest(), post=False),
    )
    asyncio.run(robot.launcher.close())
    assert robot.last.status.value == "InSync", robot.last.failureReason


@pytest.mark.parametrize(
    ("setup", "kwargs", "step", "code", "reason"),
    [
        (
            {"/condition.sh": b"echo not now >&2; exit 1\n"},
            {"condition": True},
            "ExecutingDownloadCondition",
            "DownloadConditionFailed",
            "status 1: not now",
        ),
        ({}, {}, "DownloadingExtracting", "ResourceNotFound", "HTTP 404"),
        (
            {"/bundle.tar.gz": b"not an archive"},
            {},
            "DownloadingExtracting",
            "ExtractingBundleFailure",
            "neither",
        ),
        (
            {"/bundle.tar.gz": tar_gz({"../escape.sh": "x"})},
            {},
            "DownloadingExtracting",
            "ExtractingBundleFailure",
            "cannot extract",
        ),
        (
            {"/bundle.tar.gz": tar_gz(bundle_files(**{"scripts/pre.sh": "exit 3\n"}))},
            {},
            "ExecutingPreLaunch",
            "PreLaunchFileFailure",
            "exited with status 3",
        ),
        (
            {"/bundle.tar.gz": tar_gz({"scripts/pre.sh": "true\n", "scripts/post.sh": "true\n"})},
            {},
            "Launching",
            "MissingRobotDeploymentResource",
            "hello.launch",
        ),
        (
            {"/bundle.tar.gz": tar_gz(bundle_files(**{"scripts/post.sh": "echo broken; exit 2\n"}))},
            {},
            "ExecutingPostLaunch",
            "PostLaunchFileFailure",
            "status 2: broken",
        ),
    ],
)
def test_process_launcher_fails_at_the_step_with_the_reference_failure_code(
    server, tmp_path, setup, kwargs, step, code, reason
):
    Files.files.update(setup)
    robot = deploy_once(Robot(tmp_path), command(server, **kwargs))
    assert (robot.last.status.value, robot.last.step.value, robot.last.failureCode) == ("Failed", step, code)
    assert reason in (robot.last.failureReason or "")


def test_process_launcher_reports_etag_mismatch_against_the_served_etag(server, tmp_path):
    Files.files["/bundle.tar.gz"] = tar_gz(bundle_files())
    robot = deploy_once(Robot(tmp_path), command(server, etag='"0123456789abcdef0123456789abcdef"'))
    assert (robot.last.step.value, robot.last.failureCode) == ("DownloadingExtracting", "EtagMismatch")


def test_process_launcher_abort_kills_the_running_script(server, tmp_path):
    slow_pre = 'echo $$ > "$FLEETWAVE_BUNDLE_DIR/../pre.pid"; exec sleep 60\n'
    Files.files["/bundle.tar.gz"] = tar_gz(bundle_files(**{"scripts/pre.sh": slow_pre}))
    robot = Robot(tmp_path)
    pid_file = robot.deployment_dir() / "pre.pid"

    async def scenario():
        robot.agent.receive(encode_command(command(server)))
        while not (pid_file.exists() and pid_file.read_text().strip()):
            await asyncio.sleep(0.01)
        # When the job is canceled while the pre-launch script runs
        robot.agent.receive(
            encode_command(AbortCommand(jobId="deployment-aaaaaaaaaaaa", attempt=1, issuedAt=2e9))
        )
        await robot.agent.idle()
        await robot.launcher.close()

    run(scenario())
    assert (robot.last.failureCode, robot.last.step.value) == ("RobotDeploymentAborted", "ExecutingPreLaunch")
    assert not pid_alive(int(pid_file.read_text()))


def test_process_launcher_new_deployment_replaces_the_running_application(server, tmp_path):
    Files.files["/bundle.tar.gz"] = tar_gz(bundle_files())
    robot = Robot(tmp_path)

    async def scenario():
        try:
            await deploy(robot, command(server))
            first = robot.launcher.application_pid
            await deploy(robot, command(server, job="deployment-bbbbbbbbbbbb"))
            second = robot.launcher.application_pid
            return first, second, first is not None and pid_alive(first)
        finally:
            await robot.launcher.close()

    first, second, first_still_running = run(scenario())
    assert robot.last.jobId == "deployment-bbbbbbbbbbbb" and robot.last.status.value == "InSync"
    assert first is not None and not first_still_running
    assert second not in (None, first)


def app_pids(robot: Robot, job: str = "deployment-aaaaaaaaaaaa", attempt: int = 1) -> list[int]:
    path = robot.deployment_dir(job, attempt) / "app.pid"
    return [int(path.read_text())] if path.exists() else []


def test_process_launcher_new_version_failing_its_digest_leaves_the_running_one_untouched(server, tmp_path):
    Files.files["/bundle.tar.gz"] = body = tar_gz(bundle_files())
    robot = Robot(tmp_path)

    async def scenario():
        try:
            await deploy(robot, command(server, etag=hashlib.md5(body).hexdigest()))
            running = robot.launcher.application_pid
            # When the next version's download does not match its digest
            await deploy(robot, command(server, job="deployment-bbbbbbbbbbbb", etag="0" * 32))
            return running, robot.launcher.application_pid, running is not None and pid_alive(running)
        finally:
            await robot.launcher.close()

    before, after, still_alive = run(scenario())
    assert (robot.last.failureCode, robot.last.step.value) == ("EtagMismatch", "DownloadingExtracting")
    assert still_alive and before == after  # never stopped: the switch comes after download and pre-launch


# Agents these tests "crash" (they stop without closing anything). Kept referenced: asyncio kills a
# subprocess whose transport is garbage-collected, which a dead agent process would never do.
CRASHED: list[Robot] = []


def deployed_then_crashed(server: str, tmp_path: Path) -> int:
    """A robot whose agent deployed the command, then died (no close(): its application runs on)."""
    Files.files["/bundle.tar.gz"] = tar_gz(bundle_files())
    first = Robot(tmp_path, state=True)
    CRASHED.append(first)

    async def crashed_agent():
        await first.agent.start()
        await deploy(first, command(server))

    run(crashed_agent())
    [pid] = app_pids(first)
    return pid


def restarted(server: str, tmp_path: Path) -> tuple[Robot, int | None, bool]:
    """The agent started again on the same work directory, the retained command delivered again."""
    robot = Robot(tmp_path, state=True)

    async def restarted_agent():
        try:
            await robot.agent.start()
            robot.agent.receive(encode_command(command(server)))
            await robot.agent.idle()
            pid = robot.launcher.application_pid
            return pid, pid is not None and pid_alive(pid)
        finally:
            await robot.launcher.close()

    return robot, *run(restarted_agent())


def test_process_launcher_recovers_after_an_agent_crash_adopting_its_application_and_stopping_orphans(
    server, tmp_path
):
    pid = deployed_then_crashed(server, tmp_path)
    assert pid_alive(pid)
    # An orphan of this work directory (say a pre-launch script of a deployment cut short)
    orphan = subprocess.Popen(
        ["sleep", "600"], env={**os.environ, MARKER_VARIABLE: str(tmp_path.resolve())}, start_new_session=True
    )
    try:
        # Until it has exec'd, the new process still shows this test's environment, without the marker
        deadline = time.monotonic() + WAIT
        while orphan.pid not in marked_processes(MARKER_VARIABLE, str(tmp_path.resolve())):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        robot, adopted, running = restarted(server, tmp_path)
        orphan.wait(timeout=WAIT)
    finally:
        if orphan.poll() is None:
            orphan.kill()
    assert adopted == pid and running  # the same process, not a second copy
    assert orphan.returncode == -signal.SIGKILL
    assert robot.reports == []  # nothing deployed again, nothing reported again
    assert not pid_alive(pid)  # close() stopped it
    assert [h.state.value for h in robot.health] == ["Running", "Stopped"]


def test_process_launcher_with_a_corrupt_state_file_stops_the_unknown_application_and_redeploys(
    server, tmp_path
):
    old = deployed_then_crashed(server, tmp_path)
    (tmp_path / STATE_FILE).write_bytes(b'{"format": 1, "robot": "robot-1", "agent": {"acc')  # torn

    robot, new, running = restarted(server, tmp_path)

    assert robot.state is not None and "not JSON" in (robot.state.discarded or "")
    assert not pid_alive(old) and running and new != old
    assert robot.last.status.value == "InSync"


def test_process_launcher_restarted_during_a_health_window_rolls_back_then_deploys_again(server, tmp_path):
    Files.files["/bundle.tar.gz"] = tar_gz(bundle_files())
    good_pid = deployed_then_crashed(server, tmp_path)
    new = command(server, job="deployment-bbbbbbbbbbbb")
    slow = Robot(tmp_path, state=True, window=120)
    CRASHED.append(slow)

    async def crashed_during_the_window():
        await slow.agent.start()
        slow.agent.receive(encode_command(new))
        while not app_pids(slow, "deployment-bbbbbbbbbbbb"):
            await asyncio.sleep(0.01)
        for task in list(slow.agent._tasks):  # the agent dies inside the new version's window
            task.cancel()

    run(crashed_during_the_window())
    [unproven] = app_pids(slow, "deployment-bbbbbbbbbbbb")
    assert not pid_alive(good_pid) and pid_alive(unproven)  # the switch had happened
    robot = Robot(tmp_path, state=True)

    async def restarted():
        try:
            await robot.agent.start()
            # At once: the unproven version is gone, the last-known-good one runs again
            back = app_pids(robot)
            state = (not pid_alive(unproven), back != [good_pid] and pid_alive(back[0]))
            await robot.agent.idle()  # then the interrupted deployment is run again, to the end
            return state, robot.launcher.application_pid
        finally:
            await robot.launcher.close()

    (unproven_gone, good_back), final = run(restarted())
    assert unproven_gone and good_back
    assert robot.last.jobId == "deployment-bbbbbbbbbbbb" and robot.last.status.value == "InSync"
    assert final == app_pids(robot, "deployment-bbbbbbbbbbbb")[0] != unproven


class Links:
    """The service's answers to link requests, as the MQTT connection would deliver them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.requests = 0

    async def fresh_links(self, command: DeploymentCommand) -> LinkReply:
        self.requests += 1
        return LinkReply(
            requestId="r",
            jobId=command.jobId,
            bundle=Bundle(url=self.base + "/bundle.tar.gz?fresh", architecture="X86_64"),
            sentAt=1e9,
        )


@pytest.mark.parametrize(
    "stale_query",
    [
        "?AWSAccessKeyId=AKIA&Signature=x&Expires=1000000000",  # its own expiry says it is over
        "?expired",  # the server refuses it
    ],
    ids=["expiry-in-url", "http-403"],
)
def test_process_launcher_downloads_with_a_fresh_link_when_the_command_link_no_longer_works(
    server, tmp_path, stale_query
):
    Files.files["/bundle.tar.gz"] = tar_gz(bundle_files())
    links = Links(server)
    robot = deploy_once(
        Robot(tmp_path, links=links), command(server, bundle_path="/bundle.tar.gz" + stale_query)
    )
    assert robot.last.status.value == "InSync", robot.last.failureReason
    assert links.requests == 1
