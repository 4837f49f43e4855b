"""One agent per work directory: an exclusive ``flock`` on ``agent.lock``.

The kernel drops the lock when the process dies, however it dies (SIGKILL, power cut), so a restarted agent
never finds a stale lock. The file descriptor is not inherited by the application (Python opens files
close-on-exec), so an application that outlives a killed agent does not keep the lock either.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = "agent.lock"


class AgentLockedError(RuntimeError):
    """Another agent runs on this work directory."""


class AgentLock:
    def __init__(self, work_dir: str | Path) -> None:
        self.path = Path(work_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> AgentLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AgentLockedError(
                f"another agent (pid {holder}) is running on {self.path.parent}; one agent per robot"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message above and for people (the lock itself is the flock, not this).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> AgentLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
