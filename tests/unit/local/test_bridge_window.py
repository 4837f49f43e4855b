"""The local bridge's batching window runs from when a batch's first record became receivable, as the
deployed event source's poller gathers records while the function handles the previous batch."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

from fleetwave.local import bridge as bridge_module
from fleetwave.local.bridge import StatusBridge


def test_records_that_waited_out_the_window_are_handed_over_at_once(monkeypatch):
    # Given a bridge with a 30 s window (its clock ours), and three reports queued at t = 0
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(bridge_module, "time", SimpleNamespace(monotonic=lambda: clock.now, time=time.time))
    bridge = StatusBridge(lambda event, context: {"batchItemFailures": []}, batch_size=10, linger_seconds=30)
    for seq in range(3):
        payload = json.dumps({"jobId": "j", "seq": seq}).encode()
        assert bridge.submit(f"fleetwave/robots/r{seq}/status", payload)

    # When the bridge comes to them 31 s later (it was handling an earlier batch meanwhile)
    clock.now = 31.0
    batches: list[list] = []
    taker = threading.Thread(target=lambda: batches.append(bridge._next_batch()), daemon=True)
    taker.start()
    taker.join(timeout=10)

    # Then they are one batch at once: the window ran out while they waited (not 30 s more from now)
    assert not taker.is_alive(), "the batch waited another window"
    assert len(batches[0]) == 3
