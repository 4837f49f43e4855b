"""Pieces the Greengrass V2 operations share: ARNs, paging and the status vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fleetwave_service.core import pagination
from fleetwave_service.core.errors import (
    GreengrassResourceNotFoundError,
    InvalidParameterError,
    ValidationError,
)
from fleetwave_service.core.settings import get_settings

T = TypeVar("T")

DEFAULT_MAX_RESULTS = 50
# Fleetwave robot architectures as Greengrass platforms name them (core devices, recipe manifests).
ARCHITECTURES = {"X86_64": "amd64", "ARM64": "aarch64", "ARMHF": "arm"}


def greengrass_architecture(architecture: str) -> str:
    return ARCHITECTURES.get(architecture, architecture)


def greengrass_prefix() -> str:
    s = get_settings()
    return f"arn:{s.partition}:greengrass:{s.region}:{s.account_id}"


def deployment_arn(deployment_id: str) -> str:
    return f"{greengrass_prefix()}:deployments:{deployment_id}"


def component_arn(name: str) -> str:
    return f"{greengrass_prefix()}:components:{name}"


def component_version_arn(name: str, version: str) -> str:
    return f"{component_arn(name)}:versions:{version}"


def iot_job_arn(job_id: str) -> str:
    s = get_settings()
    return f"arn:{s.partition}:iot:{s.region}:{s.account_id}:job/{job_id}"


def thing_group_arn(group: str) -> str:
    s = get_settings()
    return f"arn:{s.partition}:iot:{s.region}:{s.account_id}:thinggroup/{group}"


def thing_arn(thing: str) -> str:
    s = get_settings()
    return f"arn:{s.partition}:iot:{s.region}:{s.account_id}:thing/{thing}"


def page(
    items: Sequence[T], max_results: int | None, next_token: str | None, scope: str
) -> tuple[list[T], str | None]:
    """One page of an in-memory listing; the token is a signed offset scoped to the listing."""
    try:
        start = pagination.decode(next_token, scope) if next_token else None
    except InvalidParameterError as error:
        raise ValidationError("nextToken: the token is not valid for this request") from error
    offset = int((start or {}).get("offset", 0))
    limit = max_results or DEFAULT_MAX_RESULTS
    chunk = list(items[offset : offset + limit])
    more = offset + limit < len(items)
    return chunk, pagination.encode({"offset": offset + limit}, scope) if more else None


def parse_component_version_arn(arn: str) -> tuple[str, str] | None:
    """(name, version) of ``arn:...:greengrass:...:components:<name>:versions:<version>``."""
    parts = arn.split(":")
    if len(parts) == 9 and parts[2] == "greengrass" and parts[5] == "components" and parts[7] == "versions":
        return parts[6], parts[8]
    return None


def parse_component_arn(arn: str) -> str | None:
    parts = arn.split(":")
    if len(parts) == 7 and parts[2] == "greengrass" and parts[5] == "components":
        return parts[6]
    return None


def parse_deployment_arn(arn: str) -> str | None:
    parts = arn.split(":")
    if len(parts) == 7 and parts[2] == "greengrass" and parts[5] == "deployments":
        return parts[6]
    return None


def found(row: T | None, what: str) -> T:
    """``row``, or the Greengrass 404 saying ``what`` does not exist."""
    if row is None:
        raise GreengrassResourceNotFoundError(f"{what} does not exist.")
    return row


def without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value
