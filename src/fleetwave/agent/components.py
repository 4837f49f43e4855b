"""Greengrass-style components on the robot: configuration updates and the installed set.

A component's configuration starts from its recipe's default configuration (sent in the command when the
component is registered) or from what the robot runs now. ``configurationUpdate`` is applied the way
Greengrass applies it: first ``reset`` (JSON pointers, RFC 6901, back to the default value, or removed when
the default has none; ``""`` resets everything), then ``merge`` (a JSON object, merged deeply).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from fleetwave_service.engine.messages import ComponentSpec, DeploymentCommand


class ConfigurationError(ValueError):
    """A configuration update the robot cannot apply (the deployment fails at Validating)."""


@dataclass(frozen=True)
class InstalledComponent:
    version: str
    configuration: dict[str, Any]
    run_with: dict[str, Any] | None = None


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ConfigurationError(f"reset path {pointer!r} is not a JSON pointer (it must start with '/')")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _lookup(document: Any, tokens: list[str]) -> tuple[bool, Any]:
    for token in tokens:
        if isinstance(document, dict) and token in document:
            document = document[token]
        elif isinstance(document, list) and token.isdigit() and int(token) < len(document):
            document = document[int(token)]
        else:
            return False, None
    return True, document


def lookup_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """(found, value) of a JSON pointer (RFC 6901) in ``document``; (False, None) when it is not one."""
    try:
        return _lookup(document, _tokens(pointer))
    except ConfigurationError:
        return False, None


def _reset(current: dict[str, Any], default: dict[str, Any], pointer: str) -> dict[str, Any]:
    tokens = _tokens(pointer)
    if not tokens:
        return copy.deepcopy(default)
    found, value = _lookup(default, tokens)
    parent_found, parent = _lookup(current, tokens[:-1])
    if not parent_found or not isinstance(parent, dict | list):
        if found:
            raise ConfigurationError(f"reset path {pointer!r} has no parent in the configuration")
        return current
    key = tokens[-1]
    if isinstance(parent, list):
        if not key.isdigit() or int(key) >= len(parent):
            return current
        if found:
            parent[int(key)] = copy.deepcopy(value)
        else:
            del parent[int(key)]
        return current
    if found:
        parent[key] = copy.deepcopy(value)
    else:
        parent.pop(key, None)
    return current


def _merge(target: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def apply_configuration_update(
    current: dict[str, Any] | None, default: dict[str, Any] | None, update: dict[str, Any] | None
) -> dict[str, Any]:
    """The configuration after ``update`` (reset, then merge) on ``current`` (or the default)."""
    default = default or {}
    configuration = copy.deepcopy(current if current is not None else default)
    if not update:
        return configuration
    for pointer in update.get("reset") or []:
        configuration = _reset(configuration, default, pointer)
    merge = update.get("merge")
    if merge is not None:
        try:
            document = json.loads(merge)
        except ValueError as error:
            raise ConfigurationError(f"configurationUpdate.merge is not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise ConfigurationError("configurationUpdate.merge must be a JSON object")
        configuration = _merge(configuration, document)
    return configuration


def _default_of(spec: ComponentSpec) -> dict[str, Any] | None:
    default = ((spec.recipe or {}).get("ComponentConfiguration") or {}).get("DefaultConfiguration")
    return default if isinstance(default, dict) else None


def plan_components(
    installed: dict[str, InstalledComponent], command: DeploymentCommand
) -> dict[str, InstalledComponent]:
    """The component set the robot runs once ``command`` succeeds; ConfigurationError names the component.

    A component whose version changes starts again from its default configuration; one that stays on its
    version keeps its current configuration and gets only the update.
    """
    planned: dict[str, InstalledComponent] = {}
    for name, spec in (command.components or {}).items():
        previous = installed.get(name)
        current = previous.configuration if previous and previous.version == spec.componentVersion else None
        try:
            configuration = apply_configuration_update(current, _default_of(spec), spec.configurationUpdate)
        except ConfigurationError as error:
            raise ConfigurationError(f"component {name}: {error}") from None
        planned[name] = InstalledComponent(spec.componentVersion, configuration, spec.runWith)
    return planned
