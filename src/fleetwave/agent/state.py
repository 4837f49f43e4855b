"""The agent's state on disk (docs/robot-agent.md, "State files").

One JSON document, ``state.json`` in the work directory, with a section per owner: ``agent`` (the protocol
side: the newest command accepted, aborted attempts, the run in progress and its next ``seq``) and
``launcher`` (the deployment being installed, the last-known-good one, the application's process group).
Every change rewrites the whole file atomically: a temporary file beside it, fsync, rename over the old
one, fsync of the directory. A power cut leaves either the old document or the new one, never a mix.

A file that cannot be read (truncated, not JSON, not an object, a format this agent does not know) is
moved aside as ``state.json.corrupt-<epoch>`` and the agent starts from an empty state: it then deploys
the retained command again, and the launcher still finds and stops any application it started before
(processes carry a marker in their environment, see `process.py`), so there is never a second copy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("fleetwave.agent.state")

STATE_FILE = "state.json"
STATE_FORMAT = 1


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash at any moment leaves the old or the new content."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    os.close(fd)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (the entry itself lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, document: Any) -> None:
    atomic_write(path, json.dumps(document, indent=1, sort_keys=True).encode())


class WorkDirError(Exception):
    """The work directory cannot be this robot's (it belongs to another robot, or cannot be written)."""


class StateStore:
    """The state document, read once at start and written through on every change (thread-safe)."""

    def __init__(self, work_dir: str | Path, *, robot_name: str) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / STATE_FILE
        self.robot_name = robot_name
        self._lock = threading.Lock()
        self._document: dict[str, Any] = {}
        #: Why the file on disk was not used (None when it was read, or did not exist).
        self.discarded: str | None = None

    def load(self) -> StateStore:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        document, problem = _read(self.path, self.robot_name)
        if problem is not None:
            aside = self.path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            logger.error(
                "state file unreadable; starting from an empty state",
                extra={"robot": self.robot_name, "reason": problem, "movedTo": str(aside)},
            )
            self.discarded = problem
        with self._lock:
            self._document = document
        return self

    def section(self, name: str) -> dict[str, Any]:
        """A copy of one owner's section ({} when absent or not an object)."""
        with self._lock:
            value = self._document.get(name)
            return json.loads(json.dumps(value)) if isinstance(value, dict) else {}

    def save(self, name: str, value: dict[str, Any]) -> None:
        """Replace one section and write the whole document durably."""
        with self._lock:
            self._document[name] = value
            document = {**self._document, "format": STATE_FORMAT, "robot": self.robot_name}
            atomic_write_json(self.path, document)


def _read(path: Path, robot_name: str) -> tuple[dict[str, Any], str | None]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as error:
        return {}, f"cannot read {path}: {error}"
    try:
        document = json.loads(raw)
    except ValueError as error:
        return {}, f"not JSON ({len(raw)} bytes, truncated?): {error}"
    if not isinstance(document, dict):
        return {}, "not a JSON object"
    if document.get("format") != STATE_FORMAT:
        return {}, f"unknown state format {document.get('format')!r}; this agent writes {STATE_FORMAT}"
    if document.get("robot") not in (None, robot_name):
        raise WorkDirError(
            f"{path} belongs to robot {document.get('robot')!r}, not {robot_name!r}: "
            "give each robot its own --work-dir"
        )
    return document, None
