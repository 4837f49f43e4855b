"""Fleets through the REST front door: handler -> logic -> DynamoDB and IoT (moto)."""

from __future__ import annotations

import pytest
from fleetwave_service.core import ids


def test_create_fleet_returns_the_new_fleet(api, monkeypatch):
    # Given a clock
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000.25)

    # When a fleet is created with tags
    response = api.call("createFleet", {"name": "warehouse", "tags": {"team": "ops"}})

    # Then the response is the original's shape, with an ARN carrying the creation time in millis
    assert response.status == 200
    assert response.json == {
        "arn": "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/warehouse/1700000000250",
        "name": "warehouse",
        "createdAt": 1_700_000_000.25,
        "tags": {"team": "ops"},
    }


def test_create_fleet_creates_its_thing_group(given, api, aws):
    # When a fleet is created
    given.fleet("warehouse")

    # Then IoT has a thing group of the same name
    group = aws.client("iot").describe_thing_group(thingGroupName="warehouse")
    assert group["thingGroupName"] == "warehouse"


def test_create_fleet_with_a_taken_name_is_rejected(given, api):
    # Given a fleet
    given.fleet("warehouse")

    # When another fleet of that name is created
    response = api.call("createFleet", {"name": "warehouse"})

    # Then it is a ResourceAlreadyExistsException
    assert response.status == 400
    assert response.error_type == "ResourceAlreadyExistsException"


def test_create_fleet_beyond_the_fleet_quota_is_rejected(given, api, monkeypatch):
    # Given a deployment that allows one fleet, and that fleet
    monkeypatch.setenv("FLEETWAVE_MAX_FLEETS", "1")
    from fleetwave_service.core.settings import reset_settings

    reset_settings()
    given.fleet("first")

    # When a second fleet is created
    response = api.call("createFleet", {"name": "second"})

    # Then it is a LimitExceededException
    assert (response.status, response.error_type) == (400, "LimitExceededException")


def test_create_fleet_with_a_name_longer_than_iot_allows_gets_a_derived_thing_group(given, api, aws):
    # Given a fleet name of 255 characters (the original's limit; IoT group names stop at 128)
    name = "f" * 200 + "-" + "g" * 54

    # When the fleet is created
    fleet = given.fleet(name)

    # Then it answers its full name, and its thing group is the derived 128-character name
    assert fleet["name"] == name
    group = ids.iot_name(name)
    assert len(group) == 128 and group.startswith("f" * 111 + "-")
    assert aws.client("iot").describe_thing_group(thingGroupName=group)["thingGroupName"] == group
    assert api.call("describeFleet", {"fleet": fleet["arn"]}).json["name"] == name


def test_delete_fleet_with_a_long_name_removes_its_derived_thing_group(given, api, aws):
    fleet = given.fleet("f" * 255)
    robot = given.robot("member", fleet=fleet)

    assert api.call("deleteFleet", {"fleet": fleet["arn"]}).status == 200

    assert aws.client("iot").list_thing_groups()["thingGroups"] == []
    assert api.call("describeRobot", {"robot": robot["arn"]}).json["status"] == "Available"


def test_create_fleet_named_like_another_fleets_thing_group_is_rejected(given, api, aws):
    # Given a fleet with a long name, whose thing group has a derived name
    long_name = "f" * 255
    given.fleet(long_name)

    # When a fleet is created under exactly that derived name
    response = api.call("createFleet", {"name": ids.iot_name(long_name)})

    # Then it is refused: both fleets would share one thing group
    assert (response.status, response.error_type) == (400, "ResourceAlreadyExistsException")
    assert response.message.startswith("name:")
    assert len(aws.client("iot").list_thing_groups()["thingGroups"]) == 1


def test_describe_fleet_shows_its_robots(given, api):
    # Given a fleet with one registered robot and one robot elsewhere
    fleet = given.fleet("warehouse")
    member = given.robot("member")
    given.robot("loner")
    assert api.call("registerRobot", {"fleet": fleet["arn"], "robot": member["arn"]}).status == 200

    # When the fleet is described
    response = api.call("describeFleet", {"fleet": fleet["arn"]})

    # Then it lists only its own robot, in the original's shape, without absent fields
    assert response.status == 200
    assert response.json == {
        "name": "warehouse",
        "arn": fleet["arn"],
        "createdAt": fleet["createdAt"],
        "robots": [
            {
                "arn": member["arn"],
                "name": "member",
                "fleetArn": fleet["arn"],
                "status": "Registered",
                "greengrassGroupId": "gg-1",
                "createdAt": member["createdAt"],
                "architecture": "X86_64",
                "greenGrassGroupId": "gg-1",  # AWS's model spelled it so in this shape: both are sent
            }
        ],
        "tags": {},
    }


def test_describe_fleet_of_an_unknown_arn_is_not_found(given, api):
    # Given a fleet, deleted and re-created under the same name (so with a new ARN)
    old = given.fleet("warehouse")
    assert api.call("deleteFleet", {"fleet": old["arn"]}).status == 200
    given.fleet("warehouse")

    # When the old ARN is described
    response = api.call("describeFleet", {"fleet": old["arn"]})

    # Then it is not found
    assert (response.status, response.error_type) == (400, "ResourceNotFoundException")


def test_describe_fleet_with_a_robot_arn_is_an_invalid_parameter(given, api):
    robot = given.robot()

    response = api.call("describeFleet", {"fleet": robot["arn"]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("fleet:")


def test_list_fleets_pages_through_every_fleet(given, api):
    # Given five fleets
    for index in range(5):
        given.fleet(f"fleet-{index}")

    # When they are listed two at a time
    names, token, pages = [], None, 0
    while True:
        body = {"maxResults": 2, **({"nextToken": token} if token else {})}
        response = api.call("listFleets", body)
        assert response.status == 200
        names += [fleet["name"] for fleet in response.json["fleetDetails"]]
        pages += 1
        token = response.json.get("nextToken")
        if not token:
            break

    # Then every fleet appears once, in name order
    assert names == [f"fleet-{index}" for index in range(5)]
    assert pages >= 3


def test_list_fleets_filters_by_exact_name(given, api):
    given.fleet("alpha")
    given.fleet("alphabet")

    response = api.call("listFleets", {"filters": [{"name": "name", "values": ["alpha"]}]})

    assert [fleet["name"] for fleet in response.json["fleetDetails"]] == ["alpha"]
    assert "nextToken" not in response.json


def test_list_fleets_accepts_an_absent_body(given, api):
    given.fleet("alpha")

    response = api.request("POST", "/listFleets", None)

    assert response.status == 200
    assert [fleet["name"] for fleet in response.json["fleetDetails"]] == ["alpha"]


@pytest.mark.parametrize(
    "token",
    ["garbage", "eyJwayI6eyJTIjoiRkxFRVQjeCJ9fQ.forged", "a" * 2048],
    ids=["garbled", "forged-signature", "long"],
)
def test_list_fleets_with_a_token_it_did_not_issue_is_an_invalid_parameter(given, api, token):
    given.fleet("alpha")

    response = api.call("listFleets", {"nextToken": token})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert "nextToken" in response.message


def test_list_fleets_rejects_a_token_from_another_listing(given, api):
    # Given a token issued by an unfiltered ListRobots
    for index in range(3):
        given.robot(f"robot-{index}")
    token = api.call("listRobots", {"maxResults": 1}).json["nextToken"]

    # When it is replayed against ListFleets
    response = api.call("listFleets", {"nextToken": token})

    # Then it is refused
    assert (response.status, response.error_type) == (400, "InvalidParameterException")


def test_list_fleets_with_an_unsupported_filter_is_an_invalid_parameter(api):
    response = api.call("listFleets", {"filters": [{"name": "status", "values": ["x"]}]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("filters[0].name:")


def test_delete_fleet_deregisters_its_robots_and_removes_it(given, api, aws):
    # Given a fleet with a registered robot
    fleet = given.fleet("warehouse")
    robot = given.robot("member")
    api.call("registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})

    # When the fleet is deleted
    response = api.call("deleteFleet", {"fleet": fleet["arn"]})

    # Then it is gone, its robot is Available again, and its thing group is gone
    assert (response.status, response.json) == (200, {})
    assert api.call("describeFleet", {"fleet": fleet["arn"]}).error_type == "ResourceNotFoundException"
    described = api.call("describeRobot", {"robot": robot["arn"]}).json
    assert described["status"] == "Available"
    assert "fleetArn" not in described
    groups = aws.client("iot").list_thing_groups()["thingGroups"]
    assert [group["groupName"] for group in groups] == []


def test_delete_fleet_of_an_unknown_fleet_is_an_invalid_parameter(api):
    # AWS's model of DeleteFleet lists no ResourceNotFoundException
    arn = "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/ghost/1"

    response = api.call("deleteFleet", {"fleet": arn})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert "does not exist" in response.message


def test_describe_fleet_lists_at_most_the_original_cap_of_robots(given, api, monkeypatch):
    # Given a cap of two robots per DescribeFleet (1,000 in production) and a fleet of three
    from fleetwave_service.fleet import fleets as fleets_logic

    monkeypatch.setattr(fleets_logic, "DESCRIBE_ROBOTS_LIMIT", 2)
    fleet = given.fleet("warehouse")
    for name in ("c", "a", "b"):
        given.robot(name, fleet=fleet)

    # When the fleet is described
    described = api.call("describeFleet", {"fleet": fleet["arn"]}).json

    # Then it shows the first two by name, and ListRobots by fleet shows all three
    assert [robot["name"] for robot in described["robots"]] == ["a", "b"]
    listed = api.call("listRobots", {"filters": [{"name": "fleetName", "values": ["warehouse"]}]}).json
    assert [robot["name"] for robot in listed["robots"]] == ["a", "b", "c"]
