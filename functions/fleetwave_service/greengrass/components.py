"""The Greengrass V2 component registry a deployment needs: versions made from inline recipes.

Recipes are JSON (YAML too where PyYAML is importable: the local runtime has it, the Lambda layer may not).
A deployment may name components that are not registered here (public ``aws.greengrass.*`` ones, or any
other): it is accepted, and the robot reports per-component results (docs/greengrass.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import ConflictError, GreengrassResourceNotFoundError, ValidationError
from fleetwave_service.greengrass import store
from fleetwave_service.greengrass.common import (
    component_arn,
    component_version_arn,
    found,
    page,
    parse_component_arn,
    parse_component_version_arn,
)
from fleetwave_service.greengrass.idempotency import idempotent_on_client_token
from fleetwave_service.greengrass.models import (
    CloudComponentStatus,
    ComponentLatestVersion,
    ComponentSummary,
    ComponentVersionListItem,
    CreateComponentVersionRequest,
    CreateComponentVersionResponse,
    DescribeComponentResponse,
    ListComponentsResponse,
    ListComponentVersionsResponse,
)
from fleetwave_service.greengrass.recipes import check_recipe

logger = Logger(service="fleetwave", child=True)

_NAME = re.compile(r"^[a-zA-Z0-9._\-]{1,128}$")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.\-+]*)?$")
_DEPLOYABLE = CloudComponentStatus(componentState="DEPLOYABLE", message="NONE", errors={})


def _parse_recipe(encoded: str) -> dict[str, Any]:
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValidationError("inlineRecipe: must be a base64-encoded UTF-8 JSON or YAML recipe") from error
    try:
        recipe = json.loads(text)
    except ValueError:
        recipe = _parse_yaml(text)
    if not isinstance(recipe, dict):
        raise ValidationError("inlineRecipe: the recipe must be a JSON or YAML object")
    return recipe


def _parse_yaml(text: str) -> Any:
    try:
        import yaml  # in AWS: the PyYAML layer (infra/layers.py)
    except ImportError:
        raise ValidationError("inlineRecipe: not valid JSON (YAML recipes are not supported here)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValidationError("inlineRecipe: not valid JSON or YAML") from error


def _status() -> CloudComponentStatus:
    return _DEPLOYABLE


@idempotent_on_client_token(CreateComponentVersionResponse, ("inlineRecipe", "lambdaFunction", "tags"))
def create_component_version(request: CreateComponentVersionRequest) -> CreateComponentVersionResponse:
    if request.lambdaFunction is not None:
        raise ValidationError("lambdaFunction: Lambda components are not supported; use inlineRecipe")
    if request.inlineRecipe is None:
        raise ValidationError("inlineRecipe: a recipe is required")
    recipe = _parse_recipe(request.inlineRecipe)
    name, version = recipe.get("ComponentName"), recipe.get("ComponentVersion")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("inlineRecipe: ComponentName is required (1-128 of a-z A-Z 0-9 . _ -)")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValidationError("inlineRecipe: ComponentVersion is required, a semantic version like 1.0.0")
    if name.startswith("aws.greengrass."):
        raise ValidationError("inlineRecipe: the aws.greengrass. prefix is reserved for public components")
    check_recipe(recipe)
    now = ids.now()
    arn = component_version_arn(name, version)
    row = {
        "arn": arn,
        "componentName": name,
        "componentVersion": version,
        "creationTimestamp": now,
        "recipe": recipe,
        "description": recipe.get("ComponentDescription"),
        "publisher": recipe.get("ComponentPublisher"),
        "platforms": _platforms(recipe),
        "tags": request.tags or {},
    }
    if not store.put_component_version(row):
        raise ConflictError(f"Component {name} version {version} already exists.")
    logger.info("component version created", extra={"component": name, "version": version})
    return CreateComponentVersionResponse(
        arn=arn, componentName=name, componentVersion=version, creationTimestamp=now, status=_status()
    )


def _platforms(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    platforms = []
    for manifest in recipe.get("Manifests") or []:
        platform = (manifest or {}).get("Platform") if isinstance(manifest, dict) else None
        if isinstance(platform, dict):
            attributes = {str(k): str(v) for k, v in platform.items()}
            platforms.append({"name": attributes.get("os", "all"), "attributes": attributes})
    return platforms


def _version_row(arn: str) -> Row:
    parsed = parse_component_version_arn(arn)
    if parsed is None:
        raise ValidationError(
            f"arn: {arn} is not a component version ARN (...:components:<name>:versions:<version>)"
        )
    return found(store.get_component_version(*parsed), f"Component version {arn}")


def describe_component(arn: str) -> DescribeComponentResponse:
    row = _version_row(arn)
    return DescribeComponentResponse(
        arn=row["arn"],
        componentName=row["componentName"],
        componentVersion=row["componentVersion"],
        creationTimestamp=row["creationTimestamp"],
        publisher=row.get("publisher"),
        description=row.get("description"),
        status=_status(),
        platforms=row.get("platforms") or [],
        tags=row.get("tags") or {},
    )


def get_component(arn: str, output_format: str | None) -> dict[str, Any]:
    row = _version_row(arn)
    recipe = row.get("recipe") or {}
    fmt = output_format or "JSON"
    if fmt == "YAML":
        try:
            import yaml
        except ImportError:
            raise ValidationError("recipeOutputFormat: YAML is not available here; use JSON") from None
        text = yaml.safe_dump(recipe, sort_keys=False)
    else:
        text = json.dumps(recipe)
    return {
        "recipeOutputFormat": fmt,
        "recipe": base64.b64encode(text.encode()).decode(),
        "tags": row.get("tags") or {},
    }


def _version_key(version: str) -> tuple[Any, ...]:
    core = re.split(r"[-+]", version, maxsplit=1)[0]
    return tuple(int(part) if part.isdigit() else 0 for part in core.split(".")) + (version,)


def list_components(
    scope: str | None, max_results: int | None, next_token: str | None
) -> ListComponentsResponse:
    if scope == "PUBLIC":
        # Public components are AWS's; Fleetwave hosts none (they deploy without a registry entry).
        return ListComponentsResponse(components=[])
    by_name: dict[str, list[Row]] = {}
    for row in store.all_component_versions():
        by_name.setdefault(row["componentName"], []).append(row)
    summaries = []
    for name in sorted(by_name):
        latest = max(by_name[name], key=lambda r: _version_key(r["componentVersion"]))
        summaries.append(
            ComponentSummary(
                arn=component_arn(name),
                componentName=name,
                latestVersion=ComponentLatestVersion(
                    arn=latest["arn"],
                    componentVersion=latest["componentVersion"],
                    creationTimestamp=latest["creationTimestamp"],
                    description=latest.get("description"),
                    publisher=latest.get("publisher"),
                    platforms=latest.get("platforms") or [],
                ),
            )
        )
    chunk, token = page(summaries, max_results, next_token, f"gg-components|{scope}")
    return ListComponentsResponse(components=chunk, nextToken=token)


def list_component_versions(
    arn: str, max_results: int | None, next_token: str | None
) -> ListComponentVersionsResponse:
    name = parse_component_arn(arn)
    if name is None:
        raise ValidationError(f"arn: {arn} is not a component ARN (...:components:<name>)")
    rows = store.component_versions(name)
    if not rows:
        raise GreengrassResourceNotFoundError(f"Component {arn} does not exist.")
    rows.sort(key=lambda r: _version_key(r["componentVersion"]), reverse=True)
    items = [
        ComponentVersionListItem(
            componentName=r["componentName"], componentVersion=r["componentVersion"], arn=r["arn"]
        )
        for r in rows
    ]
    chunk, token = page(items, max_results, next_token, f"gg-component-versions|{arn}")
    return ListComponentVersionsResponse(componentVersions=chunk, nextToken=token)


def delete_component(arn: str) -> None:
    row = _version_row(arn)
    store.delete_component_version(row["componentName"], row["componentVersion"])
    logger.info("component version deleted", extra={"arn": arn})
