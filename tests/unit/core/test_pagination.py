"""nextToken values: opaque, signed, and bound to the listing that issued them."""

from __future__ import annotations

import pytest
from fleetwave_service.core import pagination
from fleetwave_service.core.errors import InvalidParameterError
from fleetwave_service.core.settings import reset_settings

KEY = {"pk": {"S": "FLEET#a"}, "sk": {"S": "FLEET"}, "gsi1pk": {"S": "FLEETS"}, "gsi1sk": {"S": "a"}}


@pytest.fixture(autouse=True)
def settings(monkeypatch):
    monkeypatch.setenv("FLEETWAVE_TABLE_NAME", "fleetwave-unit")
    reset_settings()
    yield
    reset_settings()


def test_pagination_token_round_trips_the_last_key():
    token = pagination.encode(KEY, "ListFleets")

    assert pagination.decode(token, "ListFleets") == KEY


def test_pagination_token_is_absent_when_the_listing_is_complete():
    assert pagination.encode(None, "ListFleets") is None
    assert pagination.encode({}, "ListFleets") is None
    assert pagination.decode(None, "ListFleets") is None


def test_pagination_token_fits_the_original_token_pattern():
    token = pagination.encode(KEY, "ListFleets")

    assert len(token) <= 2048
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/+=")


def test_pagination_token_from_another_scope_is_refused():
    token = pagination.encode(KEY, "ListFleets")

    with pytest.raises(InvalidParameterError):
        pagination.decode(token, "ListRobots")


@pytest.mark.parametrize("tamper", ["payload", "signature", "separator"])
def test_pagination_token_that_was_altered_is_refused(tamper):
    payload, _, signature = pagination.encode(KEY, "ListFleets").partition(".")
    forged_payload = pagination.encode({"pk": {"S": "FLEET#z"}, "sk": {"S": "FLEET"}}, "x").partition(".")[0]
    token = {
        "payload": f"{forged_payload}.{signature}",
        "signature": f"{payload}.{signature[:-2]}AA",
        "separator": payload + signature,
    }[tamper]

    with pytest.raises(InvalidParameterError) as raised:
        pagination.decode(token, "ListFleets")
    assert raised.value.message.startswith("nextToken:")


def test_pagination_token_of_another_table_is_refused(monkeypatch):
    token = pagination.encode(KEY, "ListFleets")
    monkeypatch.setenv("FLEETWAVE_TABLE_NAME", "another-table")
    reset_settings()

    with pytest.raises(InvalidParameterError):
        pagination.decode(token, "ListFleets")
