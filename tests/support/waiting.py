"""Waiting on a condition in tests that drive real processes: poll with a generous cap, never sleep to
synchronise (the machine is shared and loaded).

    wait_for("the job to end", lambda: ...)                      # ``check()``'s first truthy value
    wait_for("the agent to log X", check, 120, details=logs)    # the cap, and what to show when it passes
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# A cap, not an expectation: what the tests wait for happens within seconds.
DEADLINE_SECONDS = 90.0
POLL_SECONDS = 0.1


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float = DEADLINE_SECONDS,
    *,
    details: Callable[[], str] | None = None,
) -> Any:
    """``check()``'s first truthy value; past ``timeout`` an AssertionError naming ``what``, with the last
    value and ``details()`` (logs, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            shown = f"\n{details()}" if details is not None else ""
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {value!r}){shown}")
        time.sleep(POLL_SECONDS)
