"""Every malformed request is a typed 400 under the front door's own error name, never a 500 (issue 11).

RoboMaker's 400 is InvalidParameterException, Greengrass's ValidationException (its paths, and tags of its
ARNs). The limits are core/body.py's, documented in docs/reliability.md.
"""

from __future__ import annotations

import base64
import json

import pytest
from fakes.api_events import rest_event
from fleetwave_service.core import body as body_limits

ROBOMAKER = ("POST", "/createFleet", "InvalidParameterException")
GREENGRASS = ("POST", "/greengrass/v2/deployments", "ValidationException")
GG_TAGS = (
    "POST",
    "/tags/arn:aws:greengrass:us-east-1:123456789012:deployments:d-1",
    "ValidationException",
)
DOORS = [ROBOMAKER, GREENGRASS, GG_TAGS]
DOOR_IDS = ["robomaker", "greengrass", "greengrass-tags"]


def _binary_event(method: str, path: str, raw: bytes, content_type: str = "application/json") -> dict:
    event = rest_event(method, path, raw_body="", headers={"Content-Type": content_type})
    event["body"] = base64.b64encode(raw).decode("ascii")
    event["isBase64Encoded"] = True
    return event


def _nested(depth: int) -> str:
    return '{"name": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


TEXT_BODIES = [
    ("[1, 2]", "must be a JSON object"),
    ('[{"name": "a"}]', "must be a JSON object"),
    ("true", "must be a JSON object"),
    (_nested(body_limits.MAX_DEPTH + 1), f"nested at most {body_limits.MAX_DEPTH} levels"),
    (_nested(5000), f"nested at most {body_limits.MAX_DEPTH} levels"),
    ('{"name": ' + "9" * 5000 + "}", f"at most {body_limits.MAX_INTEGER_DIGITS} digits"),
    ('{"name": -' + "1" * 21 + "}", f"at most {body_limits.MAX_INTEGER_DIGITS} digits"),
    ('{"name": NaN}', "NaN is not a JSON number"),
    ('{"name": Infinity}', "Infinity is not a JSON number"),
    ('{"name": 1e999}', "numbers must be 0 or between"),
    ('{"name": 1e-300}', "numbers must be 0 or between"),
    ('{"name": "\\ud800"', "is not valid JSON"),
]
BYTE_BODIES = [
    (b'{"name": "\xff\xfe"}', "is not valid UTF-8"),
    ('{"name": "x"}'.encode("utf-16"), "without a byte-order mark"),
    ('{"name": "x"}'.encode("utf-16-le"), "is not valid JSON"),
    (b"\xef\xbb\xbf{}", "without a byte-order mark"),
    (b"\x80\x81", "is not valid UTF-8"),
]


@pytest.mark.parametrize("method,path,error", DOORS, ids=DOOR_IDS)
@pytest.mark.parametrize("text,reason", TEXT_BODIES)
def test_a_malformed_text_body_is_the_front_doors_400(api, method, path, error, text, reason):
    response = api.send(rest_event(method, path, raw_body=text))

    assert (response.status, response.error_type) == (400, error), response.json
    assert reason in response.message
    assert "Traceback" not in json.dumps(response.json)


@pytest.mark.parametrize("method,path,error", DOORS, ids=DOOR_IDS)
@pytest.mark.parametrize("raw,reason", BYTE_BODIES)
def test_a_body_that_is_not_utf8_is_the_front_doors_400(api, method, path, error, raw, reason):
    response = api.send(_binary_event(method, path, raw))

    assert (response.status, response.error_type) == (400, error), response.json
    assert reason in response.message


@pytest.mark.parametrize("method,path,error", DOORS, ids=DOOR_IDS)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_of_another_content_type_is_the_front_doors_400(api, method, path, error, content_type):
    event = rest_event(method, path, raw_body="name=x", headers={"Content-Type": content_type})

    response = api.send(event)

    assert (response.status, response.error_type) == (400, error)
    assert response.message == "Content-Type: request bodies must be application/json"


def test_an_array_body_creates_no_fleet(api):
    response = api.send(rest_event("POST", "/createFleet", raw_body='[{"name": "a"}, {"name": "b"}]'))

    assert response.status == 400
    assert api.call("listFleets").json["fleetDetails"] == []


@pytest.mark.parametrize(
    "path,error",
    [
        ("/tags/arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/f/1", "InvalidParameterException"),
        ("/tags/arn:aws:greengrass:us-east-1:123456789012:deployments:d-1", "ValidationException"),
    ],
)
def test_untag_resource_bounds_its_tag_keys_before_storage(api, path, error):
    # 50 tag keys is the contract's limit (seeds); 1,000 must never reach DynamoDB
    response = api.request("DELETE", path, query={"tagKeys": [f"k{i}" for i in range(1000)]})

    assert (response.status, response.error_type) == (400, error)
    assert "tagKeys" in response.message and "at most 50" in response.message


def test_the_limits_are_what_the_documentation_says():
    assert body_limits.MAX_DEPTH == 32
    assert body_limits.MAX_INTEGER_DIGITS == 20
    assert body_limits.parse_object('{"a": ' + "[" * 31 + "]" * 31 + "}")["a"] is not None
    assert body_limits.parse_object('{"a": 12345678901234567890}') == {"a": 12345678901234567890}
