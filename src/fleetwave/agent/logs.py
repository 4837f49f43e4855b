"""The agent's logging: one line per event on stderr (journald collects it), ``key=value`` fields.

    2026-05-04T10:12:03.412Z INFO fleetwave.agent deployment accepted robot=r1 jobId=deployment-ab12 attempt=1

Whatever a call passes in ``extra`` becomes a field; ``robot``, ``jobId`` and ``attempt`` come first.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_FIRST = ("robot", "jobId", "attempt")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"{stamp}.{int(record.msecs):03d}Z", record.levelname, record.name, record.getMessage()]
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        for key in (*[k for k in _FIRST if k in fields], *sorted(k for k in fields if k not in _FIRST)):
            if fields[key] is not None:
                parts.append(f"{key}={_value(fields[key])}")
        if record.exc_info:
            parts.append(f"error={_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log line of the process to ``stream`` (stderr) at ``level`` and above."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
