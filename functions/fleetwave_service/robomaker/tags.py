"""TagResource, UntagResource and ListTagsForResource on fleets, robots, applications and jobs."""

from __future__ import annotations

from collections.abc import Callable

from fleetwave_service.core import arns, tags
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import InvalidParameterError, ResourceNotFoundError
from fleetwave_service.core.keys import Key, application_key, fleet_key, job_key, robot_key
from fleetwave_service.core.wire import MAX_TAGS, ListTagsForResourceResponse
from fleetwave_service.fleet import lookup as fleet_lookup
from fleetwave_service.robomaker import lookup

_RESOURCES: dict[str, tuple[Callable[[str], Row], Callable[[str], Key]]] = {
    arns.FLEET: (fleet_lookup.fleet, fleet_key),
    arns.ROBOT: (fleet_lookup.robot, robot_key),
    # Tags belong to the application ($LATEST row), one ARN for all its versions.
    arns.ROBOT_APPLICATION: (lookup.application, application_key),
    arns.DEPLOYMENT_JOB: (lookup.job, job_key),
}


def _resource(arn: str) -> tuple[Row, Key]:
    parsed = arns.parse(arn)
    if parsed is None:
        raise ResourceNotFoundError(f"resource {arn} does not exist")
    find, key_of = _RESOURCES[parsed.kind]
    return find(arn), key_of(parsed.name)


def list_tags(resource_arn: str) -> ListTagsForResourceResponse:
    row, _ = _resource(resource_arn)
    return ListTagsForResourceResponse(tags=row.get("tags") or {})


def tag_resource(resource_arn: str, new_tags: dict[str, str]) -> None:
    """Merge ``new_tags`` into the resource's tags (a key given again takes the new value)."""
    row, key = _resource(resource_arn)
    tags.check_limit(row, new_tags, MAX_TAGS, InvalidParameterError)
    if not tags.set_tags(key, resource_arn, new_tags):
        raise ResourceNotFoundError(f"resource {resource_arn} does not exist")


def untag_resource(resource_arn: str, tag_keys: list[str]) -> None:
    _, key = _resource(resource_arn)
    if not tags.remove_tags(key, resource_arn, tag_keys):
        raise ResourceNotFoundError(f"resource {resource_arn} does not exist")
