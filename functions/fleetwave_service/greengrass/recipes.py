"""Component recipes: what CreateComponentVersion checks, and the one JSON form robots read.

A recipe arrives as JSON or YAML (recipe format 2020-01-25) and is stored as it was sent. Keys are read
case-insensitively, as the nucleus reads them (``lifecycle``, ``Lifecycle``...).

``robot_recipe`` is what a deployment command carries for each component (docs/greengrass.md "Recipes on
the robot"): name, version, type, dependencies (``VersionRequirement`` and ``DependencyType``, HARD by
default), the default configuration, and every manifest with its ``Platform``, its ``Artifacts`` and its
``Lifecycle``. A manifest without a lifecycle of its own gets the recipe's top-level ``Lifecycle`` filtered
by the manifest's ``Selections`` here, the way the nucleus's RecipeLoader does it, so the robot only ever
picks a manifest. Descriptions, publisher and other fields the robot has no use for stay behind: the
command must fit in one MQTT message.
"""

from __future__ import annotations

from typing import Any

from fleetwave_service.core.errors import ValidationError
from fleetwave_service.core.semver import Requirement, SemverError

ALL_SELECTOR = "all"
DEPENDENCY_TYPES = ("HARD", "SOFT")
UNARCHIVE = ("NONE", "ZIP")
DIGEST_ALGORITHMS = ("SHA-256", "SHA-384", "SHA-512", "SHA-1", "MD5")
ARTIFACT_SCHEMES = ("s3://", "docker:")


def field(mapping: Any, key: str, default: Any = None) -> Any:
    """``mapping[key]`` read case-insensitively (the exact spelling first)."""
    if not isinstance(mapping, dict):
        return default
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    return next((value for name, value in mapping.items() if str(name).lower() == lowered), default)


def _fail(message: str) -> ValidationError:
    return ValidationError(f"inlineRecipe: {message}")


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"{what} must be an object")
    return value


def dependencies(recipe: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``ComponentDependencies`` as ``{name: {"VersionRequirement": ..., "DependencyType": ...}}``."""
    found = {}
    for name, spec in _mapping(field(recipe, "ComponentDependencies"), "ComponentDependencies").items():
        spec = _mapping(spec, f"ComponentDependencies.{name}")
        requirement = field(spec, "VersionRequirement", "*")
        kind = str(field(spec, "DependencyType", "HARD")).upper()
        if not isinstance(requirement, str):
            raise _fail(f"ComponentDependencies.{name}.VersionRequirement must be a string")
        try:
            Requirement.parse(requirement)
        except SemverError as error:
            raise _fail(f"ComponentDependencies.{name}.VersionRequirement: {error}") from None
        if kind not in DEPENDENCY_TYPES:
            raise _fail(f"ComponentDependencies.{name}.DependencyType must be HARD or SOFT, not {kind!r}")
        found[str(name)] = {"VersionRequirement": requirement, "DependencyType": kind}
    return found


def _artifacts(manifest: dict[str, Any], where: str) -> list[dict[str, Any]]:
    artifacts = field(manifest, "Artifacts") or []
    if not isinstance(artifacts, list):
        raise _fail(f"{where}.Artifacts must be a list")
    found = []
    for index, artifact in enumerate(artifacts):
        at = f"{where}.Artifacts[{index}]"
        artifact = _mapping(artifact, at)
        uri = field(artifact, "Uri")
        if not isinstance(uri, str) or not uri.startswith(ARTIFACT_SCHEMES):
            raise _fail(f"{at}.Uri must be an s3:// (or docker:) URI")
        if uri.startswith("s3://") and parse_s3_uri(uri) is None:
            raise _fail(f"{at}.Uri {uri!r} must be s3://bucket/key")
        entry: dict[str, Any] = {"Uri": uri}
        digest, algorithm = field(artifact, "Digest"), field(artifact, "Algorithm")
        if digest is not None:
            algorithm = str(algorithm or "SHA-256").upper()
            if algorithm not in DIGEST_ALGORITHMS:
                raise _fail(f"{at}.Algorithm must be one of {', '.join(DIGEST_ALGORITHMS)}")
            entry.update({"Digest": str(digest), "Algorithm": algorithm})
        unarchive = str(field(artifact, "Unarchive", "NONE")).upper()
        if unarchive not in UNARCHIVE:
            raise _fail(f"{at}.Unarchive must be NONE or ZIP")
        entry["Unarchive"] = unarchive
        permission = field(artifact, "Permission")
        if permission is not None:
            entry["Permission"] = _mapping(permission, f"{at}.Permission")
        found.append(entry)
    return found


def _filter_platform(source: Any, keywords: set[str], selectors: list[str]) -> Any:
    """The nucleus's PlatformResolver.filterPlatform: at each level of a map holding selector keys, keep the
    first selector present (else ``all``) and drop the others; None when none applies."""
    if not isinstance(source, dict):
        return source
    if any(key in keywords for key in source):
        chosen = next((source[s] for s in selectors if source.get(s) is not None), source.get(ALL_SELECTOR))
        return None if chosen is None else _filter_platform(chosen, keywords, selectors)
    filtered = {}
    for key, value in source.items():
        value = _filter_platform(value, keywords, selectors)
        if value is not None:
            filtered[key] = value
    return filtered


def _manifests(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = field(recipe, "Manifests") or []
    if not isinstance(manifests, list):
        raise _fail("Manifests must be a list")
    top_lifecycle = _mapping(field(recipe, "Lifecycle"), "Lifecycle")
    keywords = {ALL_SELECTOR}
    for manifest in manifests:
        selections = field(manifest, "Selections") or []
        if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
            raise _fail("Manifests[].Selections must be a list of strings")
        keywords.update(selections)
    robot_manifests = []
    for index, manifest in enumerate(manifests):
        where = f"Manifests[{index}]"
        manifest = _mapping(manifest, where)
        platform = _mapping(field(manifest, "Platform"), f"{where}.Platform")
        lifecycle = _mapping(field(manifest, "Lifecycle"), f"{where}.Lifecycle")
        if not lifecycle and top_lifecycle:
            selected = _filter_platform(top_lifecycle, keywords, list(field(manifest, "Selections") or []))
            lifecycle = selected if isinstance(selected, dict) else {}
        robot_manifests.append(
            {
                "Platform": {str(k): str(v) for k, v in platform.items()},
                "Lifecycle": lifecycle,
                "Artifacts": _artifacts(manifest, where),
            }
        )
    return robot_manifests


def robot_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe as a robot reads it (module docstring). ValidationError when it cannot be read."""
    configuration = _mapping(field(recipe, "ComponentConfiguration"), "ComponentConfiguration")
    default = field(configuration, "DefaultConfiguration")
    robot: dict[str, Any] = {
        "ComponentName": field(recipe, "ComponentName"),
        "ComponentVersion": field(recipe, "ComponentVersion"),
        "ComponentDependencies": dependencies(recipe),
        "Manifests": _manifests(recipe),
    }
    component_type = field(recipe, "ComponentType")
    if component_type is not None:
        robot["ComponentType"] = str(component_type)
    if isinstance(default, dict):
        robot["ComponentConfiguration"] = {"DefaultConfiguration": default}
    return robot


def check_recipe(recipe: dict[str, Any]) -> None:
    """CreateComponentVersion: the parts a robot relies on must be readable (ValidationException)."""
    robot_recipe(recipe)


def artifact_uris(recipe: dict[str, Any]) -> list[str]:
    """Every S3 artifact URI of every manifest, once each, in order."""
    uris: dict[str, None] = {}
    for manifest in robot_recipe(recipe)["Manifests"]:
        for artifact in manifest["Artifacts"]:
            if artifact["Uri"].startswith("s3://"):
                uris[artifact["Uri"]] = None
    return list(uris)


def parse_s3_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of ``s3://bucket/key``; None when it is not one."""
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket and key else None
