"""Reports the broker has not acknowledged yet, kept on disk until it has (docs/robot-agent.md).

Every report is written here before it is published and removed when the broker's PUBACK arrives; after a
restart (or a reconnect) whatever is left is published again, oldest first. The service applies reports
idempotently (job, attempt, seq), so a report sent twice changes nothing; one never sent would leave the
service waiting for the robot's timeout.

One file per message (``outbox/<number>.json``, written atomically): appending is a create, acknowledging
an unlink, and a torn write can only lose the one message being written, never the others.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from fleetwave.agent.state import atomic_write_json, fsync_directory

logger = logging.getLogger("fleetwave.agent.outbox")

DEFAULT_MAX_MESSAGES = 10_000


@dataclass(frozen=True)
class OutboxMessage:
    number: int
    topic: str
    payload: bytes


class Outbox:
    def __init__(self, directory: str | Path, *, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._max = max_messages
        self._lock = threading.Lock()
        numbers = self._numbers()
        self._next = (numbers[-1] + 1) if numbers else 1

    def put(self, topic: str, payload: bytes) -> OutboxMessage:
        """Keep a message durably; the oldest are dropped (and logged) beyond ``max_messages``."""
        with self._lock:
            number = self._next
            self._next += 1
            atomic_write_json(self._path(number), {"topic": topic, "payload": payload.decode()})
            numbers = self._numbers()
            for old in numbers[: max(0, len(numbers) - self._max)]:
                logger.warning("outbox full: oldest report dropped", extra={"number": old})
                self._unlink(old)
        return OutboxMessage(number, topic, payload)

    def ack(self, number: int) -> None:
        """The broker has it: forget it."""
        with self._lock:
            self._unlink(number)

    def pending(self) -> list[OutboxMessage]:
        """Everything not acknowledged yet, oldest first (unreadable files are logged and dropped)."""
        messages = []
        with self._lock:
            for number in self._numbers():
                path = self._path(number)
                try:
                    entry = json.loads(path.read_text())
                    messages.append(
                        OutboxMessage(number, str(entry["topic"]), str(entry["payload"]).encode())
                    )
                except FileNotFoundError:
                    continue
                except (OSError, ValueError, KeyError, TypeError) as error:
                    logger.warning(
                        "outbox entry unreadable; dropped", extra={"file": str(path), "reason": str(error)}
                    )
                    self._unlink(number)
        return messages

    def __len__(self) -> int:
        with self._lock:
            return len(self._numbers())

    def _numbers(self) -> list[int]:
        numbers = []
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(ValueError):
                numbers.append(int(path.stem))
        return sorted(numbers)

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.json"

    def _unlink(self, number: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(number))
            fsync_directory(self.directory)
