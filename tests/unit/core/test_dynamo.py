"""The one encoding between rows and DynamoDB attribute values (core/dynamo.py), pinned.

Both sides of the service wrote through it before they shared it (the API's storage functions and the
engine's store); these are the bytes every stored item has, and what reads give back.
"""

from __future__ import annotations

import math

from fleetwave_service.core import dynamo
from fleetwave_service.core.keys import Key, job_key


def test_dynamo_leaves_out_none_attributes_and_keeps_nested_none_as_null():
    item = dynamo.serialize(
        {"status": "Pending", "failureCode": None, "recipe": {"a": None, "b": [None, "x"]}}
    )
    assert item == {
        "status": {"S": "Pending"},
        "recipe": {"M": {"a": {"NULL": True}, "b": {"L": [{"NULL": True}, {"S": "x"}]}}},
    }


def test_dynamo_stores_floats_through_their_repr_and_non_finite_as_zero():
    assert dynamo.serialize({"t": 0.1, "n": 1700000000.123456, "big": 1e21}) == {
        "t": {"N": "0.1"},
        "n": {"N": "1700000000.123456"},
        "big": {"N": "1E+21"},
    }
    assert dynamo.serialize({"inf": math.inf, "nan": math.nan}) == {"inf": {"N": "0"}, "nan": {"N": "0"}}


def test_dynamo_stores_bools_tuples_and_maps_as_themselves():
    assert dynamo.serialize({"ok": True, "pair": (1, "a"), "map": {"k": 2}}) == {
        "ok": {"BOOL": True},
        "pair": {"L": [{"N": "1"}, {"S": "a"}]},
        "map": {"M": {"k": {"N": "2"}}},
    }


def test_dynamo_reads_whole_numbers_as_int_fractions_as_float_and_sets_as_sorted_lists():
    row = dynamo.deserialize(
        {
            "count": {"N": "3"},
            "at": {"N": "1.5"},
            "names": {"SS": ["b", "a"]},
            "nested": {"M": {"n": {"N": "2.0"}, "none": {"NULL": True}}},
        }
    )
    assert row == {"count": 3, "at": 1.5, "names": ["a", "b"], "nested": {"n": 2, "none": None}}
    assert isinstance(row["count"], int)


def test_dynamo_round_trips_a_row():
    row = {"id": "j-1", "createdAt": 1700000000.25, "tags": {}, "sources": [{"etag": "e", "n": 1}]}
    assert dynamo.deserialize(dynamo.serialize(row)) == row


def test_dynamo_update_leaves_out_none_values_and_aliases_every_name():
    params = dynamo.update_params(
        job_key("j-1"),
        sets={"status": "Failed", "failureReason": None},
        adds={"count": 1},
        removes=("waveToken",),
        condition="#st = :ip",
        names={"#st": "status"},
        values={":ip": "InProgress"},
        table="t",
    )
    assert params == {
        "TableName": "t",
        "Key": {"pk": {"S": "JOB#j-1"}, "sk": {"S": "JOB"}},
        "UpdateExpression": "SET #s0 = :s0 ADD #a0 :a0 REMOVE #r0",
        "ExpressionAttributeNames": {"#st": "status", "#s0": "status", "#a0": "count", "#r0": "waveToken"},
        "ExpressionAttributeValues": {":ip": {"S": "InProgress"}, ":s0": {"S": "Failed"}, ":a0": {"N": "1"}},
        "ConditionExpression": "#st = :ip",
    }


def test_dynamo_keys_read_as_tuples_or_items():
    assert dynamo.key_item(Key("FLEET#f", "FLEET")) == {"pk": "FLEET#f", "sk": "FLEET"}
    assert dynamo.key_item({"pk": "ROBOT#r", "sk": "ROBOT", "other": 1}) == {"pk": "ROBOT#r", "sk": "ROBOT"}
    assert dynamo.without_keys({"pk": "p", "sk": "s", "gsi1pk": "g", "name": "n"}) == {"name": "n"}
