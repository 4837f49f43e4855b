"""What every List operation shares: its one filter, its page size and its nextToken scope."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

from fleetwave_service.core import pagination
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import InvalidParameterError
from fleetwave_service.core.wire import Filter


def single_filter(filters: Sequence[Filter] | None, supported: Sequence[str]) -> tuple[str, str] | None:
    """(name, value) of the request's filter, or None; an unsupported filter name is a 400."""
    if not filters:
        return None
    only = filters[0]
    if only.name not in supported:
        raise InvalidParameterError(
            f"filters[0].name: {only.name} is not supported here; use one of: {', '.join(supported)}"
        )
    return only.name, only.values[0]


def token_scope(operation: str, selected: tuple[str, str] | None, *extra: str) -> str:
    """What a nextToken is bound to: the operation and its filter, so it cannot steer another listing."""
    parts = [operation, *(selected or ()), *extra]
    return "|".join(parts)


class StatusOrFleet(NamedTuple):
    """ListRobots' and ListDeploymentJobs' one filter, resolved: at most one of the two is set."""

    fleet_name: str | None
    status: str | None
    scope: str


def status_or_fleet_page(
    request: Any,
    operation: str,
    statuses: Collection[str],
    status_noun: str,
    list_page: Callable[..., tuple[list[Row], dict[str, Any] | None]],
    default_page_size: int,
) -> tuple[list[Row], str | None]:
    """A page of ListRobots or ListDeploymentJobs (``request``: filters, maxResults, nextToken) and the
    nextToken that continues it. ``list_page(limit, start_key, fleet_name=, status=)`` reads the store."""
    chosen = status_or_fleet_filter(request.filters, operation, statuses, status_noun)
    rows, last = list_page(
        request.maxResults or default_page_size,
        pagination.decode(request.nextToken, chosen.scope),
        fleet_name=chosen.fleet_name,
        status=chosen.status,
    )
    return rows, pagination.encode(last, chosen.scope)


def status_or_fleet_filter(
    filters: Sequence[Filter] | None, operation: str, statuses: Collection[str], status_noun: str
) -> StatusOrFleet:
    """The request's `status` (one of ``statuses``) or `fleetName` filter, and its nextToken scope."""
    selected = single_filter(filters, ["status", "fleetName"])
    if selected and selected[0] == "status" and selected[1] not in statuses:
        raise InvalidParameterError(f"filters[0].values[0]: {selected[1]} is not a {status_noun}")
    name, value = selected or (None, None)
    return StatusOrFleet(
        fleet_name=value if name == "fleetName" else None,
        status=value if name == "status" else None,
        scope=token_scope(operation, selected),
    )
