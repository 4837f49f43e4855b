"""The agent's state file: atomic, and never what stops an agent from starting."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from fleetwave.agent.state import STATE_FILE, StateStore, WorkDirError, atomic_write


def test_state_store_keeps_sections_across_a_restart(tmp_path):
    store = StateStore(tmp_path, robot_name="r1").load()
    store.save("agent", {"accepted": ["job-1", 2, 1.5]})
    store.save("launcher", {"running": "job-1-2"})

    again = StateStore(tmp_path, robot_name="r1").load()

    assert again.section("agent") == {"accepted": ["job-1", 2, 1.5]}
    assert again.section("launcher") == {"running": "job-1-2"}
    assert again.discarded is None
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left beside it


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"format": 1, "robot": "r1", "agent": {"accep', "not JSON"),  # truncated by a power cut
        (b"", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"format": 99, "robot": "r1"}', "unknown state format"),
    ],
)
def test_state_store_moves_an_unreadable_file_aside_and_starts_empty(tmp_path, content, why):
    (tmp_path / STATE_FILE).write_bytes(content)

    store = StateStore(tmp_path, robot_name="r1").load()

    assert store.section("agent") == {}
    assert why in (store.discarded or "")
    [aside] = tmp_path.glob(f"{STATE_FILE}.corrupt-*")
    assert aside.read_bytes() == content  # kept for a person to look at
    store.save("agent", {"ok": True})  # and the agent carries on writing
    assert json.loads((tmp_path / STATE_FILE).read_text())["agent"] == {"ok": True}


def test_state_store_refuses_another_robots_work_directory(tmp_path):
    StateStore(tmp_path, robot_name="r1").load().save("agent", {})
    with pytest.raises(WorkDirError, match="belongs to robot 'r1'"):
        StateStore(tmp_path, robot_name="r2").load()


WRITER = """
import sys
from pathlib import Path
from fleetwave.agent.state import atomic_write
path = Path(sys.argv[1])
n = 0
print("ready", flush=True)
while True:
    n += 1
    atomic_write(path, (str(n) + "," + "x" * 20000).encode())
"""


def test_atomic_write_killed_at_any_moment_leaves_a_whole_file(tmp_path):
    target = tmp_path / "file"
    atomic_write(target, b"0," + b"x" * 20000)
    for _ in range(5):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE)
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        time.sleep(0.05)  # let it write a few times; the kill lands anywhere in a write
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        number, padding = target.read_bytes().split(b",")
        assert int(number) >= 0 and padding == b"x" * 20000
