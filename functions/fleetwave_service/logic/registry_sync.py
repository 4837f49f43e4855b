"""Keeping IoT (registry and retained commands) in step with the rows: name limits, best-effort removals."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from fleetwave_service.errors import InvalidParameterError

logger = Logger(service="fleetwave", child=True)

# The original allowed 255 characters, but a robot is an IoT thing and a fleet an IoT thing group, and
# IoT caps those names at 128: reject a longer name up front rather than fail half-way through a create.
MAX_REGISTRY_NAME_LENGTH = 128


def check_name(name: str, what: str) -> None:
    if len(name) > MAX_REGISTRY_NAME_LENGTH:
        raise InvalidParameterError(
            f"name: must be at most {MAX_REGISTRY_NAME_LENGTH} characters (it also names the {what})"
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
