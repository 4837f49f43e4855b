"""Pydantic validation errors as one readable message that names each offending field.

``deploymentConfig.concurrentDeploymentPercentage: must be at most 100`` -- the field path as the caller
wrote it (``[0]`` for list items), then what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_FRIENDLY = {
    "missing": "is required",
    "json_invalid": "is not valid JSON",
    "model_attributes_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
}


def _describe(error: dict[str, Any]) -> str:
    location = [part for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    if error.get("type") == "json_invalid":
        location = []
    field = ""
    for part in location:
        if isinstance(part, int):
            field += f"[{part}]"
        elif part == "[key]":
            field += " (key)"
        else:
            field += f".{part}" if field else str(part)
    ctx = error.get("ctx") or {}
    kind = error.get("type", "")
    if kind == "greater_than_equal":
        reason = f"must be at least {ctx.get('ge')}"
    elif kind == "less_than_equal":
        reason = f"must be at most {ctx.get('le')}"
    elif kind == "string_pattern_mismatch":
        reason = f"must match the pattern {ctx.get('pattern')}"
    elif kind == "string_too_short":
        reason = f"must be at least {ctx.get('min_length')} characters long"
    elif kind == "string_too_long":
        reason = f"must be at most {ctx.get('max_length')} characters long"
    elif kind == "too_short":
        reason = f"must have at least {ctx.get('min_length')} item(s)"
    elif kind == "too_long":
        reason = f"must have at most {ctx.get('max_length')} item(s)"
    elif kind == "literal_error":
        reason = f"must be one of {ctx.get('expected')}"
    elif kind == "value_error":
        reason = str(ctx.get("error") or error.get("msg", ""))
    else:
        reason = _FRIENDLY.get(kind) or str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{field or 'request body'}: {reason}"


def describe_errors(errors: Iterable[dict[str, Any]]) -> str:
    return "; ".join(dict.fromkeys(_describe(error) for error in errors))
