"""Staying up until the user stops a foreground command: Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading


def wait_for_interrupt() -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM; the previous SIGTERM handler is restored afterwards."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
