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
    "bool_type": "must be a boolean",
    "extra_forbidden": "is not a member of this structure",
}
# Errors whose reason names the limit pydantic reports in the error's context: type -> (text, ctx key).
_BOUNDED = {
    "greater_than_equal": ("must be at least {}", "ge"),
    "less_than_equal": ("must be at most {}", "le"),
    "string_pattern_mismatch": ("must match the pattern {}", "pattern"),
    "string_too_short": ("must be at least {} characters long", "min_length"),
    "string_too_long": ("must be at most {} characters long", "max_length"),
    "too_short": ("must have at least {} item(s)", "min_length"),
    "too_long": ("must have at most {} item(s)", "max_length"),
    "literal_error": ("must be one of {}", "expected"),
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
    if kind in _BOUNDED:
        text, limit = _BOUNDED[kind]
        reason = text.format(ctx.get(limit))
    elif kind == "value_error":
        reason = str(ctx.get("error") or error.get("msg", ""))
    else:
        reason = _FRIENDLY.get(kind) or str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{field or 'request body'}: {reason}"


def describe_errors(errors: Iterable[dict[str, Any]]) -> str:
    return "; ".join(dict.fromkeys(_describe(error) for error in errors))
