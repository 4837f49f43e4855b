"""Tags on fleets, robots, robot applications and deployment jobs: GET/POST/DELETE /tags/{resourceArn}."""

from __future__ import annotations

from urllib.parse import quote

import pytest


@pytest.fixture
def resources(given):
    fleet = given.fleet("warehouse", tags={"team": "ops"})
    robot = given.robot("r1")
    version = given.application_version("nav")
    job = given.job(fleet, version, tags={"release": "1"})
    return {"fleet": fleet, "robot": robot, "application": version, "job": job}


KINDS = ["fleet", "robot", "application", "job"]


def tags_path(arn, encode=True):
    return "/tags/" + (quote(arn, safe="") if encode else arn)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("encoded", [True, False], ids=["percent-encoded", "raw-slashes"])
def test_tag_resource_merges_and_list_tags_shows_them(api, resources, kind, encoded):
    arn = resources[kind]["arn"]
    before = api.request("GET", tags_path(arn, encoded)).json["tags"]

    # When two tags are added, one of them overwriting nothing and one new
    response = api.request("POST", tags_path(arn, encoded), {"tags": {"env": "prod", "owner": "a b/c:d+e"}})

    # Then they are merged into what was there
    assert (response.status, response.json) == (200, {})
    listed = api.request("GET", tags_path(arn, encoded))
    assert listed.status == 200
    assert listed.json == {"tags": {**before, "env": "prod", "owner": "a b/c:d+e"}}


def test_tag_resource_overwrites_a_key_given_again(api, resources):
    arn = resources["fleet"]["arn"]

    api.request("POST", tags_path(arn), {"tags": {"team": "platform"}})

    assert api.request("GET", tags_path(arn)).json["tags"] == {"team": "platform"}


@pytest.mark.parametrize("kind", KINDS)
def test_untag_resource_removes_the_given_keys(api, resources, kind):
    arn = resources[kind]["arn"]
    api.request("POST", tags_path(arn), {"tags": {"a": "1", "b": "2", "c": "3"}})

    response = api.request("DELETE", tags_path(arn), query={"tagKeys": ["a", "c", "not-there"]})

    assert (response.status, response.json) == (200, {})
    remaining = api.request("GET", tags_path(arn)).json["tags"]
    assert "b" in remaining and "a" not in remaining and "c" not in remaining


def test_tags_show_in_describe(api, resources):
    fleet = resources["fleet"]
    api.request("POST", tags_path(fleet["arn"]), {"tags": {"env": "prod"}})

    assert api.call("describeFleet", {"fleet": fleet["arn"]}).json["tags"] == {"team": "ops", "env": "prod"}


def test_tag_resource_beyond_fifty_tags_is_an_invalid_parameter(api, resources):
    # Given a fleet with one tag, and 50 more requested
    arn = resources["fleet"]["arn"]
    more = {f"k{index}": "v" for index in range(50)}

    # When they are added
    response = api.request("POST", tags_path(arn), {"tags": more})

    # Then it is refused and nothing changed
    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("tags:")
    assert api.request("GET", tags_path(arn)).json["tags"] == {"team": "ops"}


def test_tag_resource_with_more_than_fifty_tags_in_one_request_is_an_invalid_parameter(api, resources):
    response = api.request(
        "POST", tags_path(resources["robot"]["arn"]), {"tags": {f"k{i}": "v" for i in range(51)}}
    )

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:robomaker:us-east-1:123456789012:robot/ghost/1",
        "arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-000000000000",
        "arn:aws:s3:::some-bucket",
    ],
    ids=["unknown-robot", "unknown-job", "not-robomaker"],
)
def test_tags_of_an_unknown_resource_are_not_found(api, method, arn):
    options = {"GET": {}, "POST": {"body": {"tags": {"a": "b"}}}, "DELETE": {"query": {"tagKeys": ["a"]}}}[
        method
    ]

    response = api.request(method, tags_path(arn), **options)

    assert (response.status, response.error_type) == (400, "ResourceNotFoundException")


def test_tags_with_a_resource_that_is_not_an_arn_is_an_invalid_parameter(api):
    response = api.request("GET", "/tags/not-an-arn")

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("resourceArn:")


def test_untag_resource_without_tag_keys_is_an_invalid_parameter(api, resources):
    response = api.request("DELETE", tags_path(resources["fleet"]["arn"]))

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("tagKeys:")


def test_tag_resource_with_a_bad_tag_value_is_an_invalid_parameter(api, resources):
    response = api.request("POST", tags_path(resources["fleet"]["arn"]), {"tags": {"ok": "semi;colon"}})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("tags.ok:")
