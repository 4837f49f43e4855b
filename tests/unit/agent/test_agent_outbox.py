"""Reports not acknowledged yet stay on disk, in order, across restarts."""

from __future__ import annotations

import logging

from fleetwave.agent.outbox import Outbox


def test_outbox_keeps_messages_until_acknowledged_and_across_a_restart(tmp_path):
    outbox = Outbox(tmp_path / "outbox")
    first = outbox.put("fleetwave/robots/r1/status", b'{"seq":0}')
    second = outbox.put("fleetwave/robots/r1/status", b'{"seq":1}')
    outbox.ack(first.number)

    reopened = Outbox(tmp_path / "outbox")

    assert [(m.topic, m.payload) for m in reopened.pending()] == [
        ("fleetwave/robots/r1/status", b'{"seq":1}')
    ]
    third = reopened.put("fleetwave/robots/r1/status", b'{"seq":2}')
    assert third.number > second.number  # numbering goes on: order survives restarts
    assert [m.payload for m in reopened.pending()] == [b'{"seq":1}', b'{"seq":2}']
    reopened.ack(second.number)
    reopened.ack(second.number)  # twice is harmless (a duplicate PUBACK)
    assert len(reopened) == 1


def test_outbox_drops_the_oldest_beyond_its_bound_and_unreadable_entries(tmp_path, caplog):
    outbox = Outbox(tmp_path, max_messages=3)
    for seq in range(5):
        outbox.put("t", f'{{"seq":{seq}}}'.encode())
    (tmp_path / "000000000099.json").write_text("{not json")

    with caplog.at_level(logging.WARNING):
        pending = outbox.pending()

    assert [m.payload for m in pending] == [b'{"seq":2}', b'{"seq":3}', b'{"seq":4}']
    assert "outbox full" in caplog.text and "unreadable" in caplog.text
    assert not (tmp_path / "000000000099.json").exists()
