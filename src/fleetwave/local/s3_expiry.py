"""Presigned S3 URLs expire locally as they do in S3 (moto serves them forever).

A GET/HEAD whose query string carries a presigned signature past its expiry is answered the way S3 answers
it: ``403`` with an ``AccessDenied`` error document, message ``Request has expired``. Both query signing
forms are read: SigV4 (``X-Amz-Date`` + ``X-Amz-Expires``) and SigV2 (``Expires``, epoch seconds).
Everything else goes to moto untouched.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from fleetwave.agent.presigned import presigned_expiry

_ISO = "%Y-%m-%dT%H:%M:%SZ"


def _document(expiry: float, expires_param: str | None, now: float) -> bytes:
    request_id = uuid.uuid4().hex[:16].upper()
    seconds = f"<X-Amz-Expires>{escape(expires_param)}</X-Amz-Expires>" if expires_param else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
        f"{seconds}<Expires>{time.strftime(_ISO, time.gmtime(expiry))}</Expires>"
        f"<ServerTime>{time.strftime(_ISO, time.gmtime(now))}</ServerTime>"
        f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
    ).encode()


class PresignedExpiry:
    """WSGI middleware in front of moto's app."""

    def __init__(self, app: Callable[..., Iterable[bytes]], clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self._clock = clock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            now = self._clock()
            expiry = presigned_expiry(environ.get("QUERY_STRING", ""))
            if expiry is not None and now > expiry.expires_at:
                body = _document(expiry.expires_at, expiry.x_amz_expires, now)
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
                )
                return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
        return self.app(environ, start_response)
