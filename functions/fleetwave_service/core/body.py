"""A request body read defensively: one JSON object, UTF-8, within documented limits, or why not.

Both front doors take bodies through this before their pydantic models see them, so no request can reach
a RecursionError, a UnicodeDecodeError, Python's int-string limit or a number DynamoDB cannot store: each
becomes a typed 400 (the front door picks the error name: api.py). The limits:

- the body is one JSON object (``{...}``): not an array, a string, a number, ``null``;
- UTF-8 (no byte-order mark): UTF-16 and invalid bytes are refused, not guessed;
- nested at most ``MAX_DEPTH`` objects/arrays deep (the deepest request shape is 5 levels);
- integers of at most ``MAX_INTEGER_DIGITS`` digits (a 64-bit integer has 19); numbers finite and within
  DynamoDB's range (``MAX_NUMBER_MAGNITUDE``); no ``NaN`` / ``Infinity``;
- at most ``MAX_BODY_BYTES`` (API Gateway's payload limit).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 32
MAX_INTEGER_DIGITS = 20
MAX_NUMBER_MAGNITUDE = 1e100
MIN_NUMBER_MAGNITUDE = 1e-100
JSON_CONTENT_TYPE = "application/json"

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class MalformedBodyError(ValueError):
    """The body is not a JSON object this service accepts; ``str(error)`` says why, for the caller."""


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise MalformedBodyError(f"request body: integers may have at most {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _number(text: str) -> float:
    if len(text) > 64:
        raise MalformedBodyError("request body: numbers may be at most 64 characters long")
    value = float(text)
    if not math.isfinite(value) or not (
        value == 0 or MIN_NUMBER_MAGNITUDE <= abs(value) <= MAX_NUMBER_MAGNITUDE
    ):
        raise MalformedBodyError(
            f"request body: numbers must be 0 or between {MIN_NUMBER_MAGNITUDE:g} and "
            f"{MAX_NUMBER_MAGNITUDE:g} in magnitude"
        )
    return value


def _constant(name: str) -> Any:
    raise MalformedBodyError(f"request body: {name} is not a JSON number")


def _depth(text: str) -> int:
    deepest = depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def decode_text(raw: bytes) -> str:
    """The body as text: strict UTF-8 without a byte-order mark."""
    if raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise MalformedBodyError("request body: must be UTF-8 without a byte-order mark")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBodyError("request body: is not valid UTF-8") from None


def parse_object(text: str) -> dict[str, Any]:
    """The body's JSON object, within the limits above; MalformedBodyError otherwise."""
    if len(text) > MAX_BODY_BYTES:
        raise MalformedBodyError(f"request body: must be at most {MAX_BODY_BYTES} bytes")
    if _depth(text) > MAX_DEPTH:
        raise MalformedBodyError(f"request body: JSON may be nested at most {MAX_DEPTH} levels deep")
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_number, parse_constant=_constant)
    except MalformedBodyError:
        raise
    except (ValueError, RecursionError):
        raise MalformedBodyError("request body: is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedBodyError("request body: must be a JSON object")
    return value


def is_json_content_type(content_type: str | None) -> bool:
    """Absent, or application/json (with parameters): what both front doors read."""
    if not content_type:
        return True
    return content_type.split(";", 1)[0].strip().lower() == JSON_CONTENT_TYPE
