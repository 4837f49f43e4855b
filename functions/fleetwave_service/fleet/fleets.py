"""Fleets: create, describe, list and delete. A fleet is also an IoT thing group, named by ids.iot_name
(the fleet's name unless that is longer than IoT allows)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids, listing, pagination
from fleetwave_service.core.errors import (
    ConcurrentDeploymentError,
    LimitExceededError,
)
from fleetwave_service.core.settings import get_settings
from fleetwave_service.fleet import events, in_flight, lookup, models, registry, store

logger = Logger(service="fleetwave", child=True)

DEFAULT_PAGE_SIZE = 200
# The original listed at most 1,000 robots in DescribeFleet; ListRobots with a fleetName filter pages.
DESCRIBE_ROBOTS_LIMIT = 1000


def create_fleet(request: models.CreateFleetRequest) -> models.CreateFleetResponse:
    group = ids.iot_name(request.name)
    if len(request.name) >= ids.IOT_NAME_MAX_LENGTH:
        owner = store.find_by_thing_group_name(group)
        registry.check_iot_name_free(request.name, group, owner, "thing group")
    limit = get_settings().max_fleets
    if store.count_fleets() >= limit:
        raise LimitExceededError(f"this deployment allows at most {limit} fleets")
    created_at = ids.now()
    row = {
        "name": request.name,
        "thingGroupName": group,
        "arn": ids.fleet_arn(request.name, ids.epoch_millis(created_at)),
        "createdAt": created_at,
        "tags": request.tags or {},
    }
    things = registry.get_registry()
    registry.create_mirrored(
        "fleet",
        row,
        store.create_fleet,
        "thing group",
        lambda: things.create_thing_group(group),
        store.delete_fleet,
    )
    return models.CreateFleetResponse.model_validate(row)


def describe_fleet(request: models.FleetRequest) -> models.DescribeFleetResponse:
    row = lookup.fleet(request.fleet)
    members = in_flight.overlay(store.in_fleet(row["name"], limit=DESCRIBE_ROBOTS_LIMIT), {row["name"]: row})
    return models.DescribeFleetResponse.model_validate(dict(row, robots=members))


def list_fleets(request: models.ListFleetsRequest) -> models.ListFleetsResponse:
    selected = listing.single_filter(request.filters, ["name"])
    scope = listing.token_scope("ListFleets", selected)
    rows, last = store.list_fleets_page(
        request.maxResults or DEFAULT_PAGE_SIZE,
        pagination.decode(request.nextToken, scope),
        name=selected[1] if selected else None,
    )
    return models.ListFleetsResponse(
        fleetDetails=[models.FleetSummary.model_validate(row) for row in rows],
        nextToken=pagination.encode(last, scope),
    )


def delete_fleet(request: models.FleetRequest) -> None:
    """Cancel the fleet's active job (it stays visible), deregister its robots, then delete it."""
    row = lookup.fleet(request.fleet)
    name = row["name"]
    events.fleet_deleting(row)
    things = registry.get_registry()
    group = store.thing_group_name(row)
    for robot in store.in_fleet(name):
        if store.deregister(robot["name"], name):
            registry.best_effort(things.remove_thing_from_group, store.thing_name(robot), group)
    if not store.delete_fleet(name):
        raise ConcurrentDeploymentError(
            f"a deployment job started on fleet {name} while it was being deleted"
        )
    registry.best_effort(things.delete_thing_group, group)
    logger.info("fleet deleted", extra={"fleet": name})
