"""Run one long-lived process the way a robot needs it: own process group, adoptable, restarted, bounded.

`Supervisor` owns one process (a robot application today; a Greengrass component's run script reuses it):

- **start** spawns it in a new session (its own process group, so stopping it stops everything it started),
  output appended to a log file, and hands its `ProcessIdentity` to ``on_started`` at once so the caller
  can record it on disk before anything else happens;
- **adopt** takes over a process a previous agent started (after a crash of the agent), once its identity
  is confirmed: same pid, same start time since boot, same boot, same process group. A pid that was
  reused by another program never matches;
- while ``supervised`` it restarts the process when it exits, after a jittered backoff, at most
  ``RestartPolicy.limit`` times within ``RestartPolicy.window_seconds`` (systemd's StartLimitBurst and
  StartLimitIntervalSec; Greengrass's "errored 3 times within an hour"); past that it is **broken** and
  stays down until the next deployment or agent start;
- **stop** sends SIGTERM to the process group, SIGKILL after ``stop_timeout``.

Every change of state goes to ``on_state(state, detail)``: Running, Restarting, Broken, Stopped.

Log files are rotated by copy-and-truncate: the process writes with O_APPEND to a file it keeps open (and
keeps writing to if the agent dies), so the agent copies it to ``.1`` (older copies shift to ``.2`` ...)
and truncates it, as logrotate's ``copytruncate`` does. A few lines written during the copy may be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetwave.agent.backoff import Backoff

logger = logging.getLogger("fleetwave.agent.supervisor")

RUNNING = "Running"
RESTARTING = "Restarting"
BROKEN = "Broken"
STOPPED = "Stopped"
FINISHED = "Finished"  # exited with status 0 while ``finish_on_success``: done, not restarted

_POLL_SECONDS = 0.5
_ROTATE_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class ProcessIdentity:
    """What tells a process apart from any later process that gets the same pid."""

    pid: int
    pgid: int
    start_ticks: int
    boot_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "pgid": self.pgid, "startTicks": self.start_ticks, "bootId": self.boot_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessIdentity | None:
        try:
            return cls(int(data["pid"]), int(data["pgid"]), int(data["startTicks"]), str(data["bootId"]))
        except (KeyError, TypeError, ValueError):
            return None


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (field 3), or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces and parentheses.
    return text[text.rfind(")") + 2 :].split()


def identify(pid: int) -> ProcessIdentity | None:
    """The identity of a running process (None when it is gone or a zombie)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    try:
        return ProcessIdentity(pid, int(fields[2]), int(fields[19]), boot_id())
    except ValueError:
        return None


def is_alive(identity: ProcessIdentity) -> bool:
    return identify(identity.pid) == identity


def marked_processes(variable: str, value: str) -> list[int]:
    """Pids of running processes whose environment has ``variable=value``.

    Only processes whose environment this one may read are seen: the same user's, or all for root.
    """
    needle = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and identify(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a whole process group; False when it has no process left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        logger.warning("not allowed to signal process group", extra={"pgid": pgid})
        return False
    return True


async def _wait_gone(identity: ProcessIdentity, timeout: float | None) -> bool:
    """Wait for a process we did not start (no waitpid): pidfd when the kernel has it, else polling."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    pidfd = None
    with contextlib.suppress(OSError, AttributeError):
        pidfd = os.pidfd_open(identity.pid)
    if pidfd is not None:
        gone = asyncio.Event()
        loop.add_reader(pidfd, gone.set)
        try:
            while not gone.is_set() and is_alive(identity):
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return False
                # Re-check now and then: a zombie makes the pidfd readable, but so does nothing else.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        gone.wait(), min(remaining or _POLL_SECONDS * 4, _POLL_SECONDS * 4)
                    )
            return True
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
    while is_alive(identity):
        if deadline is not None and loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_SECONDS)
    return True


@dataclass(frozen=True)
class ProcessSpec:
    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str]
    log: Path
    #: Run as this posix user / group (only an agent running as root can); None: the agent's own.
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """How a supervised process is restarted; every duration is multiplied by ``time_scale``."""

    limit: int = 5
    window_seconds: float = 600.0
    initial_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    stop_timeout_seconds: float = 10.0
    time_scale: float = 1.0

    def backoff(self) -> Backoff:
        initial = max(0.001, self.initial_delay_seconds * self.time_scale)
        return Backoff(initial, max(initial, self.max_delay_seconds * self.time_scale))


@dataclass(frozen=True)
class RotatingLog:
    path: Path
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 3

    def open_for_child(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def rotate_if_needed(self) -> bool:
        try:
            if self.path.stat().st_size <= self.max_bytes:
                return False
        except FileNotFoundError:
            return False
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups > 0:
            shutil.copyfile(self.path, self.path.with_name(f"{self.path.name}.1"))
        os.truncate(self.path, 0)
        return True


StateCallback = Callable[[str, dict[str, Any]], None]


def _identity_arguments(spec: ProcessSpec) -> dict[str, Any]:
    """subprocess's ``user``/``group`` for a spec that asks for another identity (only what it asks)."""
    found: dict[str, Any] = {}
    if spec.user is not None:
        found["user"] = spec.user
    if spec.group is not None:
        found["group"] = spec.group
    return found


@dataclass
class _Exit:
    code: int | None
    at: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(
        self,
        name: str,
        spec: ProcessSpec,
        policy: RestartPolicy,
        *,
        on_started: Callable[[ProcessIdentity], None] = lambda identity: None,
        on_state: StateCallback = lambda state, detail: None,
        log: RotatingLog | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.policy = policy
        self.supervised = False
        #: A process that exits with status 0 has done its work (a Greengrass run script): FINISHED, not
        #: restarted. Otherwise every exit counts against the restart limit.
        self.finish_on_success = False
        self.state = STOPPED
        self.restarts = 0
        self.identity: ProcessIdentity | None = None
        self.last_exit: int | None = None
        self.started_at: float | None = None  # monotonic
        self._on_started = on_started
        self._on_state = on_state
        self._log = log or RotatingLog(spec.log)
        self._context = dict(context or {})
        self._process: asyncio.subprocess.Process | None = None
        self._exited = asyncio.Event()
        self._exit: _Exit | None = None
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None
        self._restart: asyncio.Task[None] | None = None
        self._rotate: asyncio.Task[None] | None = None
        self._exits: deque[float] = deque()
        self._backoff = policy.backoff()

    # --- what the owner calls -------------------------------------------------------------------------
    async def start(self) -> ProcessIdentity:
        """Spawn the process (OSError when it cannot be started at all)."""
        self._stopping = False
        await self._spawn()
        assert self.identity is not None
        return self.identity

    def adopt(self, identity: ProcessIdentity) -> bool:
        """Watch a process a previous agent started; False (nothing adopted) unless it is that process."""
        if not is_alive(identity):
            return False
        self._stopping = False
        self.identity = identity
        self._process = None
        self._running(adopted=True)
        return True

    @property
    def running(self) -> bool:
        return self.identity is not None and self._exit is None

    async def wait_exit(self) -> int | None:
        """Wait until the current process exits; its exit status (None when it was adopted)."""
        await self._exited.wait()
        assert self._exit is not None
        return self._exit.code

    def exited(self) -> asyncio.Event:
        return self._exited

    async def stop(self) -> None:
        """Stop the process group and give up supervising (no restart follows)."""
        self._stopping = True
        self.supervised = False
        for task in (self._restart,):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        identity = self.identity
        if identity is not None and self._exit is None:
            kill_group(identity.pgid, signal.SIGTERM)
            if not await self._wait_exit(self.policy.stop_timeout_seconds):
                logger.warning(
                    "application ignored SIGTERM; killing its process group",
                    extra={**self._context, "pid": identity.pid},
                )
                kill_group(identity.pgid, signal.SIGKILL)
                await self._wait_exit(None)
        if self._watch is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        self._stop_rotation()
        if self.state != STOPPED:
            self._set_state(STOPPED, {})

    # --- internals ------------------------------------------------------------------------------------
    async def _spawn(self) -> None:
        log_fd = self._log.open_for_child()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                cwd=self.spec.cwd,
                env=dict(self.spec.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                **_identity_arguments(self.spec),
            )
        finally:
            os.close(log_fd)
        identity = identify(process.pid) or ProcessIdentity(process.pid, process.pid, -1, boot_id())
        self._process, self.identity = process, identity
        self._on_started(identity)
        self._running(adopted=False)

    def _running(self, *, adopted: bool) -> None:
        self._exit = None
        self._exited = asyncio.Event()
        self.started_at = time.monotonic()
        self._watch = asyncio.get_running_loop().create_task(self._watch_exit())
        if self._rotate is None or self._rotate.done():
            self._rotate = asyncio.get_running_loop().create_task(self._rotate_logs())
        assert self.identity is not None
        logger.info(
            "application adopted" if adopted else "application started",
            extra={**self._context, "pid": self.identity.pid, "restarts": self.restarts},
        )
        self._set_state(RUNNING, {})

    async def _watch_exit(self) -> None:
        identity = self.identity
        assert identity is not None
        if self._process is not None:
            code: int | None = await self._process.wait()
        else:
            await _wait_gone(identity, None)
            code = None
        # Whatever the leader left behind in its group goes with it: never two versions side by side.
        kill_group(identity.pgid, signal.SIGKILL)
        self._exit = _Exit(code)
        self.last_exit = code
        self._exited.set()
        if self._stopping:
            return
        lived = time.monotonic() - (self.started_at or time.monotonic())
        logger.warning(
            "application exited",
            extra={**self._context, "pid": identity.pid, "exitCode": code, "ranSeconds": round(lived, 2)},
        )
        if self.supervised:
            if code == 0 and self.finish_on_success:
                self._stop_rotation()
                self._set_state(FINISHED, {"exitCode": 0})
                return
            self._after_exit(code)

    def _after_exit(self, code: int | None) -> None:
        now = time.monotonic()
        window = self.policy.window_seconds * self.policy.time_scale
        self._exits.append(now)
        while self._exits and now - self._exits[0] > window:
            self._exits.popleft()
        if len(self._exits) == 1:
            self._backoff.reset()  # the first exit in a while: start again from the shortest delay
        detail = {"exitCode": code, "restarts": self.restarts}
        if len(self._exits) > self.policy.limit:
            self._stop_rotation()
            reason = (
                f"exited {len(self._exits)} times within {window:g} s (restart limit {self.policy.limit}); "
                f"last exit status {code if code is not None else 'unknown'}"
            )
            logger.error("application broken", extra={**self._context, "reason": reason})
            self._set_state(BROKEN, {**detail, "reason": reason})
            return
        delay = self._backoff.next()
        self._set_state(RESTARTING, {**detail, "delaySeconds": round(delay, 3)})
        self._restart = asyncio.get_running_loop().create_task(self._restart_after(delay))

    async def _restart_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stopping:
            return
        self.restarts += 1
        try:
            await self._spawn()
        except OSError as error:
            reason = f"cannot restart {self.spec.argv[0]}: {error}"
            logger.error("application broken", extra={**self._context, "reason": reason})
            self._set_state(BROKEN, {"restarts": self.restarts, "reason": reason})

    async def _wait_exit(self, timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _rotate_logs(self) -> None:
        while True:
            await asyncio.sleep(_ROTATE_EVERY_SECONDS)
            with contextlib.suppress(OSError):
                self._log.rotate_if_needed()

    def _stop_rotation(self) -> None:
        if self._rotate is not None:
            self._rotate.cancel()
            self._rotate = None

    def _set_state(self, state: str, detail: dict[str, Any]) -> None:
        self.state = state
        try:
            self._on_state(state, {"restarts": self.restarts, **detail})
        except Exception:
            logger.exception("state callback failed", extra=self._context)
