"""Robots through the REST front door: create, describe, list, register, deregister, delete."""

from __future__ import annotations

import pytest
from fakes.channel import FakeRobotChannel
from fleetwave_service.core import ids
from fleetwave_service.engine import channels


def test_create_robot_returns_the_new_robot_and_makes_its_thing(api, aws, monkeypatch):
    # Given a clock
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000.5)

    # When a robot is created
    response = api.call(
        "createRobot",
        {"name": "r1", "architecture": "ARM64", "greengrassGroupId": "gg-7", "tags": {"site": "berlin"}},
    )

    # Then the response is the original's shape
    assert response.status == 200
    assert response.json == {
        "arn": "arn:aws:robomaker:us-east-1:123456789012:robot/r1/1700000000500",
        "name": "r1",
        "createdAt": 1_700_000_000.5,
        "greengrassGroupId": "gg-7",
        "architecture": "ARM64",
        "tags": {"site": "berlin"},
    }
    # And IoT has a thing of that name carrying its architecture
    thing = aws.client("iot").describe_thing(thingName="r1")
    assert thing["attributes"] == {"architecture": "ARM64"}


def test_create_robot_with_a_name_longer_than_iot_allows_gets_a_derived_thing(given, api, aws):
    # Given a robot name of 255 characters (the original's limit; IoT thing names stop at 128)
    name = "r" * 255
    fleet = given.fleet("f" * 255)

    # When the robot is created and registered
    robot = given.robot(name, fleet=fleet)

    # Then it answers its full name; its thing has the derived name, inside the fleet's derived group
    assert robot["name"] == name
    thing, group = ids.iot_name(name), ids.iot_name(fleet["name"])
    assert len(thing) == 128 and thing != name[:128]
    assert aws.client("iot").describe_thing(thingName=thing)["attributes"] == {"architecture": "X86_64"}
    assert aws.client("iot").list_things_in_thing_group(thingGroupName=group)["things"] == [thing]
    described = api.call("describeRobot", {"robot": robot["arn"]}).json
    assert (described["name"], described["status"]) == (name, "Registered")


def test_deregister_and_delete_robot_with_a_long_name_use_its_derived_thing(given, api, aws):
    fleet = given.fleet("f" * 255)
    robot = given.robot("r" * 255, fleet=fleet)
    iot = aws.client("iot")

    given.ok("deregisterRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})
    assert iot.list_things_in_thing_group(thingGroupName=ids.iot_name(fleet["name"]))["things"] == []
    given.ok("deleteRobot", {"robot": robot["arn"]})

    assert iot.list_things()["things"] == []


@pytest.mark.parametrize("long_first", [True, False], ids=["long-name-first", "derived-name-first"])
def test_create_robot_whose_thing_name_another_robot_has_is_rejected(given, api, aws, long_first):
    # Given a robot with a long name, or one named exactly like that long name's derived thing name
    long_name = "r" * 200
    derived = ids.iot_name(long_name)
    first, second = (long_name, derived) if long_first else (derived, long_name)
    given.robot(first)

    # When the other one is created
    response = api.call("createRobot", {"name": second, "architecture": "X86_64", "greengrassGroupId": "g"})

    # Then it is refused: both robots would be one IoT thing
    assert (response.status, response.error_type) == (400, "ResourceAlreadyExistsException")
    assert derived in response.message
    assert len(aws.client("iot").list_things()["things"]) == 1


def test_create_robot_with_a_taken_name_is_rejected(given, api):
    given.robot("r1")

    response = api.call("createRobot", {"name": "r1", "architecture": "X86_64", "greengrassGroupId": "g"})

    assert (response.status, response.error_type) == (400, "ResourceAlreadyExistsException")


def test_create_robot_adopts_a_thing_left_behind(given, api, aws):
    # Given an IoT thing of the robot's name that Fleetwave did not make
    aws.client("iot").create_thing(thingName="r1", attributePayload={"attributes": {"architecture": "ARMHF"}})

    # When the robot is created
    given.robot("r1", architecture="X86_64")

    # Then the thing now says the robot's architecture
    assert aws.client("iot").describe_thing(thingName="r1")["attributes"] == {"architecture": "X86_64"}


def test_describe_robot_shows_status_available_until_registered(given, api):
    robot = given.robot("r1")

    described = api.call("describeRobot", {"robot": robot["arn"]}).json

    assert described == {
        "arn": robot["arn"],
        "name": "r1",
        "status": "Available",
        "greengrassGroupId": "gg-1",
        "createdAt": robot["createdAt"],
        "architecture": "X86_64",
        "tags": {},
    }


def test_register_robot_puts_it_in_the_fleet_and_its_thing_group(given, api, aws):
    # Given a fleet and a robot
    fleet = given.fleet("warehouse")
    robot = given.robot("r1")

    # When the robot is registered
    response = api.call("registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})

    # Then it answers both ARNs, the robot is Registered in the fleet, and its thing is in the group
    assert (response.status, response.json) == (200, {"fleet": fleet["arn"], "robot": robot["arn"]})
    described = api.call("describeRobot", {"robot": robot["arn"]}).json
    assert (described["status"], described["fleetArn"]) == ("Registered", fleet["arn"])
    things = aws.client("iot").list_things_in_thing_group(thingGroupName="warehouse")["things"]
    assert things == ["r1"]


def test_register_robot_again_in_the_same_fleet_succeeds(given, api):
    fleet = given.fleet("warehouse")
    robot = given.robot("r1", fleet=fleet)

    response = api.call("registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})

    assert response.status == 200
    assert api.call("describeRobot", {"robot": robot["arn"]}).json["status"] == "Registered"


def test_register_robot_in_a_second_fleet_is_rejected(given, api):
    # Given a robot in one fleet
    first = given.fleet("first")
    second = given.fleet("second")
    robot = given.robot("r1", fleet=first)

    # When it is registered in another
    response = api.call("registerRobot", {"fleet": second["arn"], "robot": robot["arn"]})

    # Then it is an InvalidParameterException naming the fleet it is in, and it stays there
    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert "first" in response.message
    assert api.call("describeRobot", {"robot": robot["arn"]}).json["fleetArn"] == first["arn"]


def test_register_robot_with_unknown_resources_is_not_found(given, api):
    fleet = given.fleet("warehouse")
    robot = given.robot("r1")
    ghost_robot = "arn:aws:robomaker:us-east-1:123456789012:robot/ghost/1"
    ghost_fleet = "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/ghost/1"

    assert api.call("registerRobot", {"fleet": fleet["arn"], "robot": ghost_robot}).error_type == (
        "ResourceNotFoundException"
    )
    assert api.call("registerRobot", {"fleet": ghost_fleet, "robot": robot["arn"]}).error_type == (
        "ResourceNotFoundException"
    )


def test_deregister_robot_makes_it_available_again(given, api, aws):
    fleet = given.fleet("warehouse")
    robot = given.robot("r1", fleet=fleet)

    response = api.call("deregisterRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})

    assert (response.status, response.json) == (200, {"fleet": fleet["arn"], "robot": robot["arn"]})
    described = api.call("describeRobot", {"robot": robot["arn"]}).json
    assert described["status"] == "Available"
    assert "fleetArn" not in described
    assert api.call("describeFleet", {"fleet": fleet["arn"]}).json["robots"] == []
    assert aws.client("iot").list_things_in_thing_group(thingGroupName="warehouse")["things"] == []


def test_deregister_robot_from_a_fleet_it_is_not_in_is_rejected(given, api):
    fleet = given.fleet("warehouse")
    robot = given.robot("r1")

    response = api.call("deregisterRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


def test_list_robots_filters_by_fleet_and_by_status(given, api):
    # Given two robots in a fleet and one outside it
    fleet = given.fleet("warehouse")
    given.robot("a", fleet=fleet)
    given.robot("b", fleet=fleet)
    given.robot("c")

    # When robots are listed by fleet, by status, and unfiltered
    by_fleet = api.call("listRobots", {"filters": [{"name": "fleetName", "values": ["warehouse"]}]}).json
    available = api.call("listRobots", {"filters": [{"name": "status", "values": ["Available"]}]}).json
    everything = api.call("listRobots").json

    # Then each shows exactly the matching robots
    assert [robot["name"] for robot in by_fleet["robots"]] == ["a", "b"]
    assert [robot["name"] for robot in available["robots"]] == ["c"]
    assert [robot["name"] for robot in everything["robots"]] == ["a", "b", "c"]


def test_list_robots_pages_with_a_filter_that_skips_rows(given, api):
    # Given robots where only every other one matches the status filter
    fleet = given.fleet("warehouse")
    for index in range(6):
        given.robot(f"r{index}", fleet=fleet if index % 2 else None)

    # When Available robots are listed one per page
    names, token = [], None
    while True:
        body = {"maxResults": 1, "filters": [{"name": "status", "values": ["Available"]}]}
        page = api.call("listRobots", {**body, **({"nextToken": token} if token else {})}).json
        names += [robot["name"] for robot in page["robots"]]
        token = page.get("nextToken")
        if not token:
            break

    # Then every matching robot appears once
    assert names == ["r0", "r2", "r4"]


def test_list_robots_with_an_unknown_status_is_an_invalid_parameter(api):
    response = api.call("listRobots", {"filters": [{"name": "status", "values": ["Sleeping"]}]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


def test_delete_robot_removes_it_its_membership_and_its_thing(given, api, aws):
    fleet = given.fleet("warehouse")
    robot = given.robot("r1", fleet=fleet)

    response = api.call("deleteRobot", {"robot": robot["arn"]})

    assert (response.status, response.json) == (200, {})
    assert api.call("describeRobot", {"robot": robot["arn"]}).error_type == "ResourceNotFoundException"
    assert api.call("describeFleet", {"fleet": fleet["arn"]}).json["robots"] == []
    assert aws.client("iot").list_things()["things"] == []


def _provisioned(iot, thing, policy="robot-policy"):
    """A certificate as `fleetwave robot provision` makes it: active, the robot policy, the thing attached."""
    if policy not in {p["policyName"] for p in iot.list_policies()["policies"]}:
        iot.create_policy(policyName=policy, policyDocument='{"Version": "2012-10-17", "Statement": []}')
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=policy, target=created["certificateArn"])
    iot.attach_thing_principal(thingName=thing, principal=created["certificateArn"])
    return created


def test_delete_robot_revokes_its_certificates_and_deletes_its_thing(given, api, aws):
    # Given a robot with two certificates (one being rotated in) and another robot with its own
    iot = aws.client("iot")
    robot = given.robot("r1", fleet=given.fleet("warehouse"))
    given.robot("r2")
    _provisioned(iot, "r1"), _provisioned(iot, "r1")
    other = _provisioned(iot, "r2")

    # When the robot is deleted
    assert api.call("deleteRobot", {"robot": robot["arn"]}).status == 200

    # Then its certificates are gone from the registry (detached, deactivated, deleted), and its thing too
    remaining = {c["certificateId"] for c in iot.list_certificates()["certificates"]}
    assert remaining == {other["certificateId"]}
    assert [t["thingName"] for t in iot.list_things()["things"]] == ["r2"]
    assert iot.list_targets_for_policy(policyName="robot-policy")["targets"] == [other["certificateArn"]]
    # And the other robot keeps its identity
    assert iot.list_thing_principals(thingName="r2")["principals"] == [other["certificateArn"]]


def test_delete_robot_with_a_long_name_retires_its_derived_thing(given, api, aws):
    iot = aws.client("iot")
    name = "r" * 255
    robot = given.robot(name)
    thing = ids.iot_name(name)
    _provisioned(iot, thing)

    assert api.call("deleteRobot", {"robot": robot["arn"]}).status == 200

    assert iot.list_things()["things"] == [] and iot.list_certificates()["certificates"] == []


def test_delete_robot_keeps_the_robot_when_its_identity_cannot_be_retired(given, api, aws, monkeypatch):
    # Given IoT failing to delete certificates
    from fleetwave_service.fleet import registry

    robot = given.robot("r1")
    _provisioned(aws.client("iot"), "r1")

    def failing(self, arn, thing=None):
        raise RuntimeError("IoT is down")

    monkeypatch.setattr(registry.IotRegistry, "revoke_certificate", failing)

    # When the robot is deleted, the answer says to try again, and the robot is still there to delete
    response = api.call("deleteRobot", {"robot": robot["arn"]})
    assert (response.status, response.error_type) == (500, "InternalServerException")
    assert api.call("describeRobot", {"robot": robot["arn"]}).status == 200
    monkeypatch.undo()
    assert api.call("deleteRobot", {"robot": robot["arn"]}).status == 200
    assert aws.client("iot").list_certificates()["certificates"] == []


def test_delete_robot_during_a_deployment_is_allowed(given, api):
    # Given a fleet with a robot and an active deployment job
    fleet = given.fleet("warehouse")
    robot = given.robot("r1", fleet=fleet)
    given.job(fleet, given.application_version("nav"))

    # When the robot is deleted
    response = api.call("deleteRobot", {"robot": robot["arn"]})

    # Then it is gone
    assert response.status == 200
    assert api.call("describeRobot", {"robot": robot["arn"]}).error_type == "ResourceNotFoundException"


def test_delete_robot_clears_its_retained_command(given, api, monkeypatch):
    # Given a robot whose command topic holds a retained deployment command
    channel = FakeRobotChannel()
    monkeypatch.setattr(channels, "get_channel", lambda settings: channel)
    robot = given.robot("r1")
    channel.retained["r1"] = object()

    # When the robot is deleted
    assert api.call("deleteRobot", {"robot": robot["arn"]}).status == 200

    # Then nothing is retained for that name any more
    assert "r1" not in channel.retained


@pytest.fixture
def robot_thing_type(aws, monkeypatch):
    from fleetwave_service.core.settings import reset_settings

    aws.client("iot").create_thing_type(thingTypeName="fleetwave-robot")
    monkeypatch.setenv("FLEETWAVE_THING_TYPE_NAME", "fleetwave-robot")
    reset_settings()
    yield "fleetwave-robot"
    reset_settings()


def test_create_robot_assigns_the_thing_type_and_answers_unchanged(api, aws, robot_thing_type, monkeypatch):
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000.5)

    response = api.call("createRobot", {"name": "r1", "architecture": "ARM64", "greengrassGroupId": "gg-7"})

    # The wire response is exactly the original's (the thing type is IoT's business, not RoboMaker's)
    assert response.json == {
        "arn": "arn:aws:robomaker:us-east-1:123456789012:robot/r1/1700000000500",
        "name": "r1",
        "createdAt": 1_700_000_000.5,
        "greengrassGroupId": "gg-7",
        "architecture": "ARM64",
        "tags": {},
    }
    thing = aws.client("iot").describe_thing(thingName="r1")
    assert thing["thingTypeName"] == robot_thing_type
    assert thing["attributes"] == {"architecture": "ARM64"}


def test_create_robot_types_a_thing_left_behind(given, aws, robot_thing_type):
    aws.client("iot").create_thing(thingName="r1", attributePayload={"attributes": {"architecture": "ARMHF"}})

    given.robot("r1", architecture="X86_64")

    thing = aws.client("iot").describe_thing(thingName="r1")
    assert thing["thingTypeName"] == robot_thing_type
    assert thing["attributes"] == {"architecture": "X86_64"}
