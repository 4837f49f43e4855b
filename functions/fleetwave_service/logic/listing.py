"""What every List operation shares: its one filter, its page size and its nextToken scope."""

from __future__ import annotations

from collections.abc import Sequence

from fleetwave_service.errors import InvalidParameterError
from fleetwave_service.models.wire import Filter


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
