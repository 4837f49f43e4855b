"""Fleets: create, describe, list and delete. A fleet is also an IoT thing group, named by ids.iot_name
(the fleet's name unless that is longer than IoT allows)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids, listing, pagination
from fleetwave_service.core.errors import (
    ConcurrentDeploymentError,
    InternalServerError,
    LimitExceededError,
    ResourceAlreadyExistsError,
)
from fleetwave_service.core.settings import get_settings
from fleetwave_service.logic import jobs, lookup, registry_sync
from fleetwave_service.models.fleets import (
    CreateFleetRequest,
    CreateFleetResponse,
    DescribeFleetResponse,
    FleetRequest,
    FleetSummary,
    ListFleetsRequest,
    ListFleetsResponse,
)
from fleetwave_service.storage import fleets, robots
from fleetwave_service.storage.registry import get_registry

logger = Logger(service="fleetwave", child=True)

DEFAULT_PAGE_SIZE = 200
# The original listed at most 1,000 robots in DescribeFleet; ListRobots with a fleetName filter pages.
DESCRIBE_ROBOTS_LIMIT = 1000


def create_fleet(request: CreateFleetRequest) -> CreateFleetResponse:
    group = ids.iot_name(request.name)
    if len(request.name) >= ids.IOT_NAME_MAX_LENGTH:
        owner = fleets.find_by_thing_group_name(group)
        registry_sync.check_iot_name_free(request.name, group, owner, "thing group")
    limit = get_settings().max_fleets
    if fleets.count() >= limit:
        raise LimitExceededError(f"this deployment allows at most {limit} fleets")
    created_at = ids.now()
    row = {
        "name": request.name,
        "thingGroupName": group,
        "arn": ids.fleet_arn(request.name, ids.epoch_millis(created_at)),
        "createdAt": created_at,
        "tags": request.tags or {},
    }
    if not fleets.create(row):
        raise ResourceAlreadyExistsError(f"a fleet named {request.name} already exists")
    try:
        get_registry().create_thing_group(group)
    except Exception as error:
        # Without its thing group the fleet would be half made: undo the row, let the caller retry.
        logger.exception("thing group creation failed", extra={"fleet": request.name})
        fleets.delete(request.name)
        raise InternalServerError("the fleet could not be created; try again") from error
    logger.info("fleet created", extra={"fleet": request.name})
    return CreateFleetResponse.model_validate(row)


def describe_fleet(request: FleetRequest) -> DescribeFleetResponse:
    row = lookup.fleet(request.fleet)
    members = robots.in_fleet(row["name"], limit=DESCRIBE_ROBOTS_LIMIT)
    return DescribeFleetResponse.model_validate(dict(row, robots=members))


def list_fleets(request: ListFleetsRequest) -> ListFleetsResponse:
    selected = listing.single_filter(request.filters, ["name"])
    scope = listing.token_scope("ListFleets", selected)
    rows, last = fleets.list_page(
        request.maxResults or DEFAULT_PAGE_SIZE,
        pagination.decode(request.nextToken, scope),
        name=selected[1] if selected else None,
    )
    return ListFleetsResponse(
        fleetDetails=[FleetSummary.model_validate(row) for row in rows],
        nextToken=pagination.encode(last, scope),
    )


def delete_fleet(request: FleetRequest) -> None:
    """Cancel the fleet's active job (it stays visible), deregister its robots, then delete it."""
    row = lookup.fleet(request.fleet)
    name = row["name"]
    if row.get("activeJobId"):
        jobs.cancel_for_fleet_deletion(name, row["activeJobId"])
    registry = get_registry()
    group = fleets.thing_group_name(row)
    for robot in robots.in_fleet(name):
        if robots.deregister(robot["name"], name):
            registry_sync.best_effort(registry.remove_thing_from_group, robots.thing_name(robot), group)
    if not fleets.delete(name):
        raise ConcurrentDeploymentError(
            f"a deployment job started on fleet {name} while it was being deleted"
        )
    registry_sync.best_effort(registry.delete_thing_group, group)
    logger.info("fleet deleted", extra={"fleet": name})
