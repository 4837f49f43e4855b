"""The supervisor with real processes: process groups, adoption by identity, restarts, the limit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetwave.agent.supervisor import (
    BROKEN,
    RESTARTING,
    RUNNING,
    STOPPED,
    ProcessSpec,
    RestartPolicy,
    RotatingLog,
    Supervisor,
    identify,
    is_alive,
)

WAIT = 60

# Starts a child of its own (a ROS node, say), records both pids, then waits for a signal file.
APP = """
echo "$$" >> "$DIR/starts"
sleep 600 &
echo "$!" > "$DIR/child"
while [ ! -e "$DIR/crash" ]; do sleep 0.02; done
echo "crashing" 
exit 7
"""


def spec(tmp_path: Path, script: str = APP) -> ProcessSpec:
    return ProcessSpec(
        ["/bin/sh", "-c", script], tmp_path, {**os.environ, "DIR": str(tmp_path)}, tmp_path / "app.log"
    )


def alive(pid: int) -> bool:
    identity = identify(pid)
    return identity is not None


def gone(pid: int) -> bool:
    """The process has died (signals are delivered asynchronously: poll, with a cap)."""
    deadline = time.monotonic() + WAIT
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT} s")
        await asyncio.sleep(0.02)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, WAIT))


def test_supervisor_stop_ends_the_whole_process_group(tmp_path):
    async def scenario():
        recorded = []
        supervisor = Supervisor("app", spec(tmp_path), RestartPolicy(), on_started=recorded.append)
        identity = await supervisor.start()
        await until(lambda: (tmp_path / "child").read_text().strip() if (tmp_path / "child").exists() else "",
                    "the app's child to start")  # fmt: skip
        child = int((tmp_path / "child").read_text())
        assert recorded == [identity] and identity.pgid == identity.pid  # its own group, recorded at once
        await supervisor.stop()
        return identity, child, supervisor.state

    identity, child, state = run(scenario())
    assert gone(identity.pid) and gone(child)
    assert state == STOPPED


def test_supervisor_restarts_with_backoff_then_marks_broken_past_the_limit(tmp_path):
    states: list[tuple[str, dict]] = []

    async def scenario():
        policy = RestartPolicy(limit=2, window_seconds=600, initial_delay_seconds=0.05, max_delay_seconds=0.2)
        supervisor = Supervisor("app", spec(tmp_path), policy, on_state=lambda s, d: states.append((s, d)))
        supervisor.supervised = True
        await supervisor.start()
        await until(lambda: (tmp_path / "starts").exists(), "the first start")
        (tmp_path / "crash").touch()  # from now on it exits at once
        await until(lambda: supervisor.state == BROKEN, "the application to be broken")
        return supervisor

    supervisor = run(scenario())
    assert [state for state, _ in states] == [RUNNING, RESTARTING, RUNNING, RESTARTING, RUNNING, BROKEN]
    assert len((tmp_path / "starts").read_text().split()) == 3  # the first start and two restarts
    assert supervisor.restarts == 2 and supervisor.last_exit == 7
    assert "restart limit 2" in states[-1][1]["reason"] and states[-1][1]["exitCode"] == 7
    # Whatever it had started went with it each time
    assert gone(int((tmp_path / "child").read_text()))
    assert "crashing" in (tmp_path / "app.log").read_text()


def test_supervisor_adopts_a_process_by_identity_and_never_a_reused_pid(tmp_path):
    # An application a previous (now dead) agent started in its own session
    orphan = subprocess.Popen(
        ["/bin/sh", "-c", APP], env={**os.environ, "DIR": str(tmp_path)}, start_new_session=True
    )
    try:
        identity = identify(orphan.pid)
        assert identity is not None and is_alive(identity)

        async def scenario():
            impostor = Supervisor("app", spec(tmp_path), RestartPolicy())
            # Same pid, another start time: a different process that got the pid
            assert not impostor.adopt(
                type(identity)(identity.pid, identity.pgid, identity.start_ticks + 1, identity.boot_id)
            )
            supervisor = Supervisor("app", spec(tmp_path), RestartPolicy())
            assert supervisor.adopt(identity)
            assert supervisor.running
            await supervisor.stop()

        run(scenario())
        orphan.wait(timeout=WAIT)
        assert orphan.returncode == -signal.SIGTERM
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_supervisor_notices_an_adopted_process_exit(tmp_path):
    orphan = subprocess.Popen(
        ["/bin/sh", "-c", APP], env={**os.environ, "DIR": str(tmp_path)}, start_new_session=True
    )
    try:
        identity = identify(orphan.pid)

        async def scenario():
            supervisor = Supervisor("app", spec(tmp_path), RestartPolicy())
            assert supervisor.adopt(identity)
            (tmp_path / "crash").touch()
            orphan.wait()  # its parent (this test) reaps it, as init would
            return await asyncio.wait_for(supervisor.wait_exit(), WAIT)

        assert run(scenario()) is None  # an adopted process's exit status is not ours to read
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_rotating_log_copies_and_truncates_beyond_its_size(tmp_path):
    log = RotatingLog(tmp_path / "application.log", max_bytes=100, backups=2)
    fd = log.open_for_child()  # the application's end: O_APPEND, kept open across rotations
    try:
        for round_ in range(3):
            os.write(fd, f"round {round_} ".encode() * 20)
            assert log.rotate_if_needed()
        os.write(fd, b"after")
    finally:
        os.close(fd)
    assert (tmp_path / "application.log").read_bytes() == b"after"
    assert (tmp_path / "application.log.1").read_text().startswith("round 2")
    assert (tmp_path / "application.log.2").read_text().startswith("round 1")
    assert not (tmp_path / "application.log.3").exists()
    assert not log.rotate_if_needed()


@pytest.mark.parametrize("limit", [0])
def test_supervisor_with_no_restarts_allowed_is_broken_at_the_first_exit(tmp_path, limit):
    async def scenario():
        states = []
        policy = RestartPolicy(limit=limit, initial_delay_seconds=0.01)
        supervisor = Supervisor(
            "app", spec(tmp_path, "exit 3"), policy, on_state=lambda s, d: states.append(s)
        )
        supervisor.supervised = True
        await supervisor.start()
        await until(lambda: supervisor.state == BROKEN, "broken")
        return states

    assert run(scenario()) == [RUNNING, BROKEN]


def test_identify_reads_no_identity_for_a_missing_process():
    assert identify(2**22 + 12345) is None
    assert identify(os.getpid()) is not None and sys.platform.startswith("linux")
