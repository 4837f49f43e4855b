"""TagResource, UntagResource and ListTagsForResource on fleets, robots, applications and jobs."""

from __future__ import annotations

from collections.abc import Callable

from fleetwave_service.core import arns, tags
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import InvalidParameterError, ResourceNotFoundError
from fleetwave_service.core.wire import LATEST, MAX_TAGS
from fleetwave_service.logic import lookup
from fleetwave_service.models.tags import ListTagsForResourceResponse
from fleetwave_service.storage import applications, fleets, jobs, robots

_RESOURCES: dict[str, tuple[Callable[[str], Row], Callable[[str], tuple[str, str]]]] = {
    arns.FLEET: (lookup.fleet, fleets.fleet_key),
    arns.ROBOT: (lookup.robot, robots.robot_key),
    arns.ROBOT_APPLICATION: (
        lookup.application,
        lambda name: (applications.partition(name), applications.sort_key(LATEST)),
    ),
    arns.DEPLOYMENT_JOB: (lookup.job, jobs.job_key),
}


def _resource(arn: str) -> tuple[Row, tuple[str, str]]:
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
    merged = {**(row.get("tags") or {}), **new_tags}
    if len(merged) > MAX_TAGS:
        raise InvalidParameterError(
            f"tags: a resource can have at most {MAX_TAGS} tags; this would make {len(merged)}"
        )
    if not tags.set_tags(key, resource_arn, new_tags):
        raise ResourceNotFoundError(f"resource {resource_arn} does not exist")


def untag_resource(resource_arn: str, tag_keys: list[str]) -> None:
    _, key = _resource(resource_arn)
    if not tags.remove_tags(key, resource_arn, tag_keys):
        raise ResourceNotFoundError(f"resource {resource_arn} does not exist")
