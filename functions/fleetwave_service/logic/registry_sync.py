"""Keeping IoT (registry and retained commands) in step with the rows: IoT names, best-effort removals."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import ResourceAlreadyExistsError

logger = Logger(service="fleetwave", child=True)


def check_iot_name_free(name: str, iot_name: str, owner: Row | None, what: str) -> None:
    """Refuse a name whose IoT name another resource already has.

    Only names of 128 characters or more can meet here (one named exactly like another's hashed IoT
    name); two resources on one thing would delete or receive each other's IoT state.
    """
    if owner is not None and owner["name"] != name:
        raise ResourceAlreadyExistsError(
            f"name: its IoT {what} name {iot_name} is already used by {owner['name']}"
        )


def best_effort(call: Callable[..., None], *args: str) -> None:
    """Mirror a removal into IoT without failing the request.

    Rows are the source of truth; whatever is left behind in IoT is adopted (or cleaned up) by the next
    create of the same name, so a failed removal only costs a warning.
    """
    try:
        call(*args)
    except Exception:
        logger.warning(
            "registry update failed", extra={"call": call.__name__, "targets": list(args)}, exc_info=True
        )
