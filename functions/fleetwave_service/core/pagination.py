"""Opaque ``nextToken`` values: base64url of DynamoDB's LastEvaluatedKey, signed with an HMAC.

The signature keeps callers from steering a query to keys of their choosing, and the scope (which list
operation, which filter) keeps a token of one listing from being replayed against another. Anything that
does not verify is a 400 InvalidParameterException, never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from fleetwave_service.core.errors import InvalidParameterError
from fleetwave_service.core.settings import get_settings

_SEPARATOR = "."


def _secret() -> bytes:
    # Derived from the table name: tokens only need to be unforgeable in practice, not secret.
    return hashlib.sha256(b"fleetwave-next-token:" + get_settings().table_name.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(scope: str, payload: str) -> str:
    return _b64(hmac.new(_secret(), f"{scope}\n{payload}".encode(), hashlib.sha256).digest())


def encode(last_key: dict[str, Any] | None, scope: str) -> str | None:
    """The token for ``last_key`` (None when the listing is complete)."""
    if not last_key:
        return None
    payload = _b64(json.dumps(last_key, sort_keys=True, separators=(",", ":")).encode())
    return f"{payload}{_SEPARATOR}{_signature(scope, payload)}"


def decode(token: str | None, scope: str) -> dict[str, Any] | None:
    """The key a token continues from; raises InvalidParameterError for anything not issued here."""
    if token is None:
        return None
    payload, _, signature = token.partition(_SEPARATOR)
    if not payload or not signature or not hmac.compare_digest(signature, _signature(scope, payload)):
        raise InvalidParameterError("nextToken: the token is not valid for this request")
    try:
        last_key = json.loads(_unb64(payload))
    except ValueError as error:  # pragma: no cover - a signed payload is always one we wrote
        raise InvalidParameterError("nextToken: the token is not valid for this request") from error
    if not isinstance(last_key, dict):  # pragma: no cover - same as above
        raise InvalidParameterError("nextToken: the token is not valid for this request")
    return last_key
