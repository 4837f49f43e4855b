"""amqtt's records about deliveries acknowledged late are counted and summed up, not printed one by one."""

from __future__ import annotations

import logging

from fleetwave.local.broker import LateAcknowledgements


def _record(name: str, message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_late_puback_records_are_counted_and_summed_up_once_per_period(caplog):
    late = LateAcknowledgements(every=3600.0)
    timeouts = [
        _record("amqtt.mqtt.protocol.handler", f"Timeout waiting for PUBACK for packet ID {n}")
        for n in range(50)
    ]
    skipped = _record(
        "amqtt.broker",
        "Task failed and will be skipped: <Task finished exception="
        "TimeoutError('Timeout waiting for PUBACK for packet ID 7')>",
        logging.ERROR,
    )
    unknown = _record("amqtt.mqtt.protocol.handler", "Received PUBACK for unknown pending message Id: '7'")
    done = _record("amqtt.mqtt.protocol.handler", "PUBACK waiter with Id '14586' already done")
    other = _record("amqtt.broker", "Listener 'default' bind to 127.0.0.1:1883")

    with caplog.at_level(logging.WARNING, logger="fleetwave.broker"):
        kept = [late.filter(record) for record in [*timeouts, skipped, unknown, done, other]]

        # Only the unrelated record goes through; the 53 late ones are counted, the first summed up at once
        assert kept == [False] * 53 + [True]
        assert late.total == 53
        # and the rest when the broker stops (flush)
        late.flush()
        late.flush()
    summaries = [r for r in caplog.records if r.name == "fleetwave.broker"]
    assert [(r.late, r.lateSinceStart) for r in summaries] == [(1, 1), (52, 53)]
    # 50 deliveries: the other records are about the same deliveries (the task's failure, a late PUBACK)
    assert (summaries[-1].deliveries, late.deliveries) == (50, 50)


def test_a_command_with_its_own_figures_holds_the_summaries_and_reports_the_deliveries(caplog):
    late = LateAcknowledgements(every=0.0)
    with caplog.at_level(logging.WARNING, logger="fleetwave.broker"):
        late.filter(_record("amqtt.mqtt.protocol.handler", "Timeout waiting for PUBACK for packet ID 1"))
        with late.held() as deliveries:
            for n in range(3):
                timeout = f"Timeout waiting for PUBACK for packet ID {n}"
                late.filter(_record("amqtt.mqtt.protocol.handler", timeout))
            late.filter(_record("amqtt.mqtt.protocol.handler", "PUBACK waiter with Id '2' already done"))
            late.flush()  # the broker stopping inside the block
            assert deliveries() == 3
        late.flush()
    # Only the delivery before the block was summed up in the log
    summaries = [r for r in caplog.records if r.name == "fleetwave.broker"]
    assert [r.deliveries for r in summaries] == [1]
