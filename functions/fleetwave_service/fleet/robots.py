"""Robots: create, describe, list, delete, and membership of a fleet. A robot is also an IoT thing, named
by ids.iot_name (the robot's name unless that is longer than IoT allows)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids, listing
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import InternalServerError, InvalidParameterError
from fleetwave_service.core.wire import RobotStatus
from fleetwave_service.fleet import events, in_flight, lookup, models, registry, store

logger = Logger(service="fleetwave", child=True)

DEFAULT_PAGE_SIZE = 200
_STATUSES = RobotStatus.__args__  # type: ignore[attr-defined]


def new_robot_row(
    name: str, architecture: str, greengrass_group_id: str, tags: dict[str, str] | None = None
) -> Row:
    """A new robot's row, as CreateRobot stores it."""
    created_at = ids.now()
    return {
        "name": name,
        "thingName": ids.iot_name(name),
        "arn": ids.robot_arn(name, ids.epoch_millis(created_at)),
        "architecture": architecture,
        "greengrassGroupId": greengrass_group_id,
        "createdAt": created_at,
        "status": "Available",
        "tags": tags or {},
    }


def create_robot(request: models.CreateRobotRequest) -> models.CreateRobotResponse:
    thing = ids.iot_name(request.name)
    if len(request.name) >= ids.IOT_NAME_MAX_LENGTH:
        registry.check_iot_name_free(request.name, thing, store.find_by_thing_name(thing), "thing")
    row = new_robot_row(request.name, request.architecture, request.greengrassGroupId, request.tags)
    things = registry.get_registry()
    registry.create_mirrored(
        "robot",
        row,
        store.create_robot,
        "thing",
        lambda: things.create_thing(thing, request.architecture),
        store.delete_robot,
    )
    return models.CreateRobotResponse.model_validate(row)


def describe_robot(request: models.RobotRequest) -> models.DescribeRobotResponse:
    return models.DescribeRobotResponse.model_validate(in_flight.overlay([lookup.robot(request.robot)])[0])


def _robots_page(
    limit: int, start_key: dict | None, *, fleet_name: str | None = None, status: str | None = None
) -> tuple[list[Row], dict | None]:
    """A page of robots as their readers see them (fleet/in_flight.py); the status filter applies to that,
    so it is applied here, not in the query (a robot deploying reads Deploying before its row says so).
    Like DynamoDB's own filters, a page may hold fewer robots than ``limit`` and still have a next one."""
    rows, last = store.list_robots_page(limit, start_key, fleet_name=fleet_name)
    rows = in_flight.overlay(rows)
    return ([row for row in rows if row.get("status") == status] if status else rows), last


def list_robots(request: models.ListRobotsRequest) -> models.ListRobotsResponse:
    rows, token = listing.status_or_fleet_page(
        request, "ListRobots", _STATUSES, "robot status", _robots_page, DEFAULT_PAGE_SIZE
    )
    return models.ListRobotsResponse(
        robots=[models.RobotSummary.model_validate(row) for row in rows], nextToken=token
    )


def delete_robot(request: models.RobotRequest) -> None:
    """Allowed even during a deployment: the rollout treats a robot that is gone as one that failed.

    The robot's identity goes first: its certificates are detached, deactivated and deleted and its thing
    deleted (docs/robot-identity.md, "Retirement"). Only then is the row deleted: when IoT fails, the answer
    is an InternalServerError and the robot is still there to delete again, never a row gone with a
    certificate that still connects.
    """
    row = lookup.robot(request.robot)
    things = registry.get_registry()
    thing = store.thing_name(row)
    if row.get("fleetName"):
        registry.best_effort(things.remove_thing_from_group, thing, ids.iot_name(row["fleetName"]))
    try:
        revoked = things.retire_thing(thing)
    except Exception as error:
        logger.exception("robot identity could not be retired", extra={"robot": row["name"], "thing": thing})
        raise InternalServerError(
            "the robot's certificates or thing could not be deleted; try again"
        ) from error
    store.delete_robot(row["name"])
    events.robot_deleted(row)
    logger.info(
        "robot deleted", extra={"robot": row["name"], "thing": thing, "certificatesRevoked": len(revoked)}
    )


def register_robot(request: models.RobotMembershipRequest) -> models.RobotMembershipResponse:
    """A robot belongs to at most one fleet; registering it again in the same fleet is a no-op."""
    fleet = lookup.fleet(request.fleet)
    robot = lookup.robot(request.robot)
    response = models.RobotMembershipResponse(fleet=fleet["arn"], robot=robot["arn"])
    if robot.get("fleetName") == fleet["name"]:
        return response
    if not robot.get("fleetName") and store.register(
        robot["name"], robot["arn"], fleet["name"], fleet["arn"]
    ):
        registry.best_effort(
            registry.get_registry().add_thing_to_group, store.thing_name(robot), store.thing_group_name(fleet)
        )
        logger.info("robot registered", extra={"robot": robot["name"], "fleet": fleet["name"]})
        events.robot_joined(robot, fleet)
        return response
    # In another fleet, or registered by a concurrent request: the row now says which.
    current = lookup.robot(request.robot)
    if current.get("fleetName") == fleet["name"]:
        return response
    raise InvalidParameterError(
        f"robot: {robot['name']} is registered in fleet {current.get('fleetName')}; deregister it there first"
    )


def deregister_robot(request: models.RobotMembershipRequest) -> models.RobotMembershipResponse:
    fleet = lookup.fleet(request.fleet)
    robot = lookup.robot(request.robot)
    if not store.deregister(robot["name"], fleet["name"]):
        raise InvalidParameterError(f"robot: {robot['name']} is not registered in fleet {fleet['name']}")
    registry.best_effort(
        registry.get_registry().remove_thing_from_group,
        store.thing_name(robot),
        store.thing_group_name(fleet),
    )
    logger.info("robot deregistered", extra={"robot": robot["name"], "fleet": fleet["name"]})
    events.robot_left(robot, fleet)
    return models.RobotMembershipResponse(fleet=fleet["arn"], robot=robot["arn"])
