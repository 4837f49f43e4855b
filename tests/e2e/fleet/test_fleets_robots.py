"""Fleets, robots and tags over HTTP: `fleetwave serve` driven with SigV4-signed requests, as a user does.

Every name is unique (the serve process is shared by the whole session). IoT effects are read back from
the embedded AWS endpoint, where a robot is a thing and a fleet a thing group.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fakes.robomaker import unique
from fleetwave_service.core import ids

ACCOUNT_PREFIX = "arn:aws:robomaker:us-east-1:123456789012"


def test_fleet_create_describe_list_delete_over_http(api, serve):
    # Given a fleet name nobody uses
    name = unique("fleet")

    # When a fleet is created with a tag
    created = api.call("createFleet", {"name": name, "tags": {"team": "ops"}})

    # Then it answers the original's shape, with a fleet ARN, and IoT has its thing group
    assert created.status == 200, created.json
    arn = created.json["arn"]
    assert arn.startswith(f"{ACCOUNT_PREFIX}:deployment-fleet/{name}/")
    assert created.json == {
        "arn": arn,
        "name": name,
        "createdAt": created.json["createdAt"],
        "tags": {"team": "ops"},
    }
    assert serve.aws_client("iot").describe_thing_group(thingGroupName=name)["thingGroupName"] == name

    # And DescribeFleet and ListFleets (filtered by name) show it
    described = api.call("describeFleet", {"fleet": arn})
    assert (described.status, described.json) == (
        200,
        {
            "name": name,
            "arn": arn,
            "createdAt": created.json["createdAt"],
            "robots": [],
            "tags": {"team": "ops"},
        },
    )
    listed = api.call("listFleets", {"filters": [{"name": "name", "values": [name]}]})
    assert [fleet["arn"] for fleet in listed.json["fleetDetails"]] == [arn]

    # When it is deleted, it is gone, and so is its thing group
    deleted = api.call("deleteFleet", {"fleet": arn})
    assert (deleted.status, deleted.json) == (200, {})
    gone = api.call("describeFleet", {"fleet": arn})
    assert (gone.status, gone.error_type) == (400, "ResourceNotFoundException")
    groups = serve.aws_client("iot").list_thing_groups()["thingGroups"]
    assert name not in [group["groupName"] for group in groups]


def test_fleet_with_a_taken_name_is_already_existing(api, given):
    name = unique("fleet")
    given.fleet(name)

    response = api.call("createFleet", {"name": name})

    assert (response.status, response.error_type) == (400, "ResourceAlreadyExistsException")


def test_robot_create_register_list_deregister_delete_over_http(api, given, serve):
    # Given a fleet
    fleet = given.fleet(unique("fleet"))
    name = unique("robot")
    iot = serve.aws_client("iot")

    # When a robot is created
    created = api.call("createRobot", {"name": name, "architecture": "ARM64", "greengrassGroupId": "gg-7"})

    # Then it answers the original's shape, is Available, and is an IoT thing carrying its architecture
    assert created.status == 200, created.json
    robot_arn = created.json["arn"]
    assert robot_arn.startswith(f"{ACCOUNT_PREFIX}:robot/{name}/")
    assert created.json == {
        "arn": robot_arn,
        "name": name,
        "createdAt": created.json["createdAt"],
        "greengrassGroupId": "gg-7",
        "architecture": "ARM64",
        "tags": {},
    }
    assert api.call("describeRobot", {"robot": robot_arn}).json["status"] == "Available"
    assert iot.describe_thing(thingName=name)["attributes"] == {"architecture": "ARM64"}

    # When it is registered in the fleet
    registered = api.call("registerRobot", {"fleet": fleet["arn"], "robot": robot_arn})

    # Then it is Registered there, listed by fleet and by status, shown by the fleet, and in its thing group
    assert (registered.status, registered.json) == (200, {"fleet": fleet["arn"], "robot": robot_arn})
    described = api.call("describeRobot", {"robot": robot_arn}).json
    assert (described["status"], described["fleetArn"]) == ("Registered", fleet["arn"])
    by_fleet = api.call("listRobots", {"filters": [{"name": "fleetName", "values": [fleet["name"]]}]})
    assert [robot["arn"] for robot in by_fleet.json["robots"]] == [robot_arn]
    assert robot_arn in _all_robot_arns(api, {"filters": [{"name": "status", "values": ["Registered"]}]})
    assert [robot["arn"] for robot in api.call("describeFleet", {"fleet": fleet["arn"]}).json["robots"]] == [
        robot_arn
    ]
    assert iot.list_things_in_thing_group(thingGroupName=fleet["name"])["things"] == [name]

    # When it is deregistered, it is Available again and out of the fleet and its group
    deregistered = api.call("deregisterRobot", {"fleet": fleet["arn"], "robot": robot_arn})
    assert (deregistered.status, deregistered.json) == (200, {"fleet": fleet["arn"], "robot": robot_arn})
    described = api.call("describeRobot", {"robot": robot_arn}).json
    assert described["status"] == "Available" and "fleetArn" not in described
    assert iot.list_things_in_thing_group(thingGroupName=fleet["name"])["things"] == []

    # When it is deleted, it is gone, with its thing
    deleted = api.call("deleteRobot", {"robot": robot_arn})
    assert (deleted.status, deleted.json) == (200, {})
    gone = api.call("describeRobot", {"robot": robot_arn})
    assert (gone.status, gone.error_type) == (400, "ResourceNotFoundException")
    assert name not in [thing["thingName"] for thing in iot.list_things()["things"]]


def _all_robot_arns(api, body):
    arns, token = [], None
    while True:
        page = api.call("listRobots", {**body, "maxResults": 200, **({"nextToken": token} if token else {})})
        assert page.status == 200, page.json
        arns += [robot["arn"] for robot in page.json["robots"]]
        token = page.json.get("nextToken")
        if not token:
            return arns


def test_robot_and_fleet_with_255_character_names_use_derived_iot_names(api, given, serve):
    # Given names as long as the reference allows (IoT names stop at 128 characters)
    fleet_name = unique("f" * 244)
    robot_name = unique("r" * 244)
    assert len(fleet_name) == len(robot_name) == 255

    # When both are created and the robot registered
    fleet = given.fleet(fleet_name)
    robot = given.robot(robot_name, fleet=fleet)

    # Then the API answers the full names, and IoT holds them under their derived names
    assert (fleet["name"], robot["name"]) == (fleet_name, robot_name)
    assert api.call("describeRobot", {"robot": robot["arn"]}).json["status"] == "Registered"
    iot = serve.aws_client("iot")
    things = iot.list_things_in_thing_group(thingGroupName=ids.iot_name(fleet_name))["things"]
    assert things == [ids.iot_name(robot_name)]


def test_robot_with_a_256_character_name_is_an_invalid_parameter(api):
    response = api.call(
        "createRobot", {"name": "r" * 256, "architecture": "X86_64", "greengrassGroupId": "g"}
    )

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.json["message"].startswith("name:")


def test_robot_registered_in_a_second_fleet_is_an_invalid_parameter(api, given):
    first, second = given.fleet(unique("first")), given.fleet(unique("second"))
    robot = given.robot(unique("robot"), fleet=first)

    response = api.call("registerRobot", {"fleet": second["arn"], "robot": robot["arn"]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert first["name"] in response.json["message"]


def test_robot_and_fleet_that_do_not_exist_are_not_found(api, given):
    fleet = given.fleet(unique("fleet"))
    robot = given.robot(unique("robot"))
    ghost_robot = f"{ACCOUNT_PREFIX}:robot/{unique('ghost')}/1"
    ghost_fleet = f"{ACCOUNT_PREFIX}:deployment-fleet/{unique('ghost')}/1"

    answers = [
        api.call("registerRobot", {"fleet": fleet["arn"], "robot": ghost_robot}),
        api.call("registerRobot", {"fleet": ghost_fleet, "robot": robot["arn"]}),
        api.call("describeRobot", {"robot": ghost_robot}),
        api.call("deleteFleet", {"fleet": ghost_fleet}),
    ]

    # DeleteFleet's AWS model lists no ResourceNotFoundException: its missing fleet is an invalid parameter
    assert [(answer.status, answer.error_type) for answer in answers] == [
        (400, "ResourceNotFoundException")
    ] * 3 + [(400, "InvalidParameterException")]
    assert "does not exist" in answers[3].json["message"]


def test_robot_with_a_taken_name_is_already_existing(api, given):
    name = unique("robot")
    given.robot(name)

    response = api.call("createRobot", {"name": name, "architecture": "X86_64", "greengrassGroupId": "g"})

    assert (response.status, response.error_type) == (400, "ResourceAlreadyExistsException")


# --- tags: GET/POST/DELETE /tags/{resourceArn} ---------------------------------------------------


def _resource(kind, given):
    if kind == "fleet":
        return given.fleet(unique("fleet"), tags={"team": "ops"})
    if kind == "robot":
        return given.robot(unique("robot"))
    version = given.application_version(unique("app"))
    if kind == "application":
        return version
    return given.job(given.fleet(unique("fleet")), version, tags={"release": "1"})


def _tags_path(arn, encoded):
    return "/tags/" + (quote(arn, safe="") if encoded else arn)


@pytest.mark.parametrize("kind", ["fleet", "robot", "application", "job"])
@pytest.mark.parametrize("encoded", [True, False], ids=["percent-encoded", "raw-arn"])
def test_tags_post_get_delete_with_the_arn_in_the_path(api, given, kind, encoded):
    # Given a resource and what it is tagged with now
    arn = _resource(kind, given)["arn"]
    path = _tags_path(arn, encoded)
    before = api.call(path, method="GET")
    assert before.status == 200, before.json

    # When tags are added (TagResource)
    tagged = api.call(path, {"tags": {"env": "prod", "owner": "a b/c:d+e", "drop": "x"}})

    # Then ListTagsForResource shows them merged into what was there
    assert (tagged.status, tagged.json) == (200, {})
    expected = {**before.json["tags"], "env": "prod", "owner": "a b/c:d+e", "drop": "x"}
    assert api.call(path, method="GET").json == {"tags": expected}

    # When some are removed (UntagResource, keys repeated in the query), only those go
    untagged = api.call(path, method="DELETE", query={"tagKeys": ["drop", "env", "not-there"]})
    assert (untagged.status, untagged.json) == (200, {})
    expected.pop("drop")
    expected.pop("env")
    assert api.call(path, method="GET").json == {"tags": expected}


def test_tags_show_in_describe_fleet(api, given):
    fleet = given.fleet(unique("fleet"), tags={"team": "ops"})

    api.call(_tags_path(fleet["arn"], True), {"tags": {"env": "prod"}})

    assert api.call("describeFleet", {"fleet": fleet["arn"]}).json["tags"] == {"team": "ops", "env": "prod"}


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_tags_of_an_unknown_resource_are_not_found(api, method):
    arn = f"{ACCOUNT_PREFIX}:robot/{unique('ghost')}/1"
    body = {"tags": {"a": "b"}} if method == "POST" else None
    query = {"tagKeys": ["a"]} if method == "DELETE" else None

    response = api.call(_tags_path(arn, True), body, method=method, query=query)

    assert (response.status, response.error_type) == (400, "ResourceNotFoundException")
