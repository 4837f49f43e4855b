"""The engine's ports: built lazily from settings, swapped by tests and the local runtime."""

from __future__ import annotations

from fakes.channel import FakeRobotChannel
from fleetwave_service.core.settings import reset_settings
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports


def test_rollout_ports_follow_a_settings_reset_and_keep_overrides(monkeypatch):
    # Given a fake channel and a table name
    channel = FakeRobotChannel()
    monkeypatch.setenv("FLEETWAVE_TABLE_NAME", "first")
    reset_settings()
    use_ports(channel=channel)
    try:
        assert get_ports().settings.table_name == "first"

        # When the environment changes and settings are reset (as the local runtime and fixtures do)
        monkeypatch.setenv("FLEETWAVE_TABLE_NAME", "second")
        reset_settings()

        # Then the ports use the new settings and still the fake channel
        assert get_ports().settings.table_name == "second"
        assert get_ports().channel is channel
    finally:
        reset_ports()
        reset_settings()
