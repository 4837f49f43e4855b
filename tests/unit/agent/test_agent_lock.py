"""One agent per work directory."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from fleetwave.agent.lock import AgentLock, AgentLockedError

HOLDER = """
import sys, time
from fleetwave.agent.lock import AgentLock
AgentLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_agent_lock_refuses_a_second_agent_and_names_the_first(tmp_path):
    with AgentLock(tmp_path), pytest.raises(AgentLockedError, match=r"another agent \(pid \d+\) is running"):
        AgentLock(tmp_path).acquire()
    AgentLock(tmp_path).acquire().release()  # released: free again


def test_agent_lock_is_free_again_once_its_holder_was_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        with pytest.raises(AgentLockedError, match=str(holder.pid)):
            AgentLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    AgentLock(tmp_path).acquire().release()
