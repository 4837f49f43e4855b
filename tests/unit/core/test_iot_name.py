"""ids.iot_name: the IoT thing / thing group name of a RoboMaker name (IoT stops at 128 characters)."""

from __future__ import annotations

import re

import pytest
from fleetwave_service.core import ids

IOT_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")  # IoT's thing and thing group name rule


@pytest.mark.parametrize("name", ["r", "robot-1", "a_b-C9", "x" * 128])
def test_iot_name_of_a_name_iot_allows_is_the_name_itself(name):
    assert ids.iot_name(name) == name


def test_iot_name_of_a_long_name_keeps_a_readable_prefix_and_a_hash():
    name = "warehouse-berlin-" + "r" * 238

    derived = ids.iot_name(name)

    assert len(derived) == 128 and IOT_NAME.match(derived)
    assert derived[:111] == name[:111]
    assert re.fullmatch(r"-[0-9a-f]{16}", derived[111:])
    assert ids.iot_name(name) == derived  # deterministic: every party derives the same thing name


def test_iot_name_of_long_names_sharing_a_prefix_differ():
    first, second = "r" * 200, "r" * 201

    assert ids.iot_name(first) != ids.iot_name(second)
    assert ids.iot_name("r" * 129) != "r" * 128


@pytest.mark.parametrize(
    "thing,prefix",
    [
        ("r" * 111 + "-" + "0" * 16, "r" * 111),
        ("r" * 128, None),
        ("short", None),
    ],
    ids=["derived-shape", "128-without-separator", "short"],
)
def test_iot_name_prefix_is_only_given_for_names_that_could_be_derived(thing, prefix):
    assert ids.iot_name_prefix(thing) == prefix
