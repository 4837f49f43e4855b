"""The engine's policy registry: a front door's policy registered lazily is loaded by its first job."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fleetwave_service.engine import policy


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(policy, "_policies", {})
    monkeypatch.setattr(policy, "_loaders", {})
    return policy


def test_policy_for_loads_a_lazily_registered_policy_once(registry):
    loads = []

    def load():
        loads.append(1)
        return SimpleNamespace(front_door="door")

    registry.register_lazily("door", load)

    first = registry.policy_for({"frontDoor": "door"})
    again = registry.policy_for({"frontDoor": "door"})

    assert first is again
    assert loads == [1]


def test_policy_for_an_unregistered_front_door_is_a_lookup_error(registry):
    registry.register_lazily(None, lambda: SimpleNamespace(front_door=None))

    with pytest.raises(LookupError, match="'other'"):
        registry.policy_for({"frontDoor": "other"})


def test_policy_for_refuses_a_loader_that_returns_another_front_doors_policy(registry):
    registry.register_lazily("door", lambda: SimpleNamespace(front_door=None))

    with pytest.raises(LookupError, match="None"):
        registry.policy_for({"frontDoor": "door"})
