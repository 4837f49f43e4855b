"""Tags on Greengrass resources (deployments and component versions), under the shared ``/tags`` routes."""

from __future__ import annotations

from fleetwave_service.core import tags
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import GreengrassResourceNotFoundError, ValidationError
from fleetwave_service.core.keys import Key, gg_component_key, job_key
from fleetwave_service.greengrass import store
from fleetwave_service.greengrass.common import parse_component_version_arn, parse_deployment_arn
from fleetwave_service.greengrass.models import MAX_GG_TAGS


def _resource(arn: str) -> tuple[Row, Key]:
    deployment_id = parse_deployment_arn(arn)
    if deployment_id is not None:
        row = store.get_deployment(deployment_id)
        if row is not None:
            return row, job_key(deployment_id)
    component = parse_component_version_arn(arn)
    if component is not None:
        row = store.get_component_version(*component)
        if row is not None:
            return row, gg_component_key(*component)
    raise GreengrassResourceNotFoundError(f"Resource {arn} does not exist.")


def list_tags(arn: str) -> dict[str, str]:
    row, _ = _resource(arn)
    return row.get("tags") or {}


def tag_resource(arn: str, new_tags: dict[str, str]) -> None:
    row, key = _resource(arn)
    tags.check_limit(row, new_tags, MAX_GG_TAGS, ValidationError)
    if not row.get("tags"):
        # A row stored without a tags map: SET tags.#k needs the map to exist first.
        if row.get("componentName"):
            store.set_component_tags(row["componentName"], row["componentVersion"], new_tags)
            return
        store.update_deployment(row["id"], {"tags": new_tags})
        return
    if not tags.set_tags(key, arn, new_tags):
        raise GreengrassResourceNotFoundError(f"Resource {arn} does not exist.")


def untag_resource(arn: str, tag_keys: list[str]) -> None:
    row, key = _resource(arn)
    if not row.get("tags"):
        return
    if not tags.remove_tags(key, arn, tag_keys):
        raise GreengrassResourceNotFoundError(f"Resource {arn} does not exist.")
