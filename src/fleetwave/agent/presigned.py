"""When a presigned S3 URL stops working, read from its own query string.

Shared by the agent (it asks for a fresh link instead of trying one that has expired) and the local
runtime's S3 (which refuses an expired link as S3 does: `fleetwave.local.s3_expiry`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit


class PresignedExpiry(NamedTuple):
    expires_at: float  # epoch seconds
    x_amz_expires: str | None  # SigV4's X-Amz-Expires, as signed (None for SigV2)


def presigned_expiry(query_string: str) -> PresignedExpiry | None:
    """The expiry of a presigned query: SigV4 (X-Amz-Date + X-Amz-Expires) or SigV2 (Expires, epoch
    seconds); None when the query is not a presigned signature (or a malformed one)."""
    query = {key.lower(): values[-1] for key, values in parse_qs(query_string).items()}
    try:
        if "x-amz-date" in query and "x-amz-expires" in query and "x-amz-signature" in query:
            signed = datetime.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            return PresignedExpiry(signed.timestamp() + int(query["x-amz-expires"]), query["x-amz-expires"])
        if "expires" in query and "signature" in query and "awsaccesskeyid" in query:
            return PresignedExpiry(float(int(query["expires"])), None)
    except ValueError:
        return None
    return None


def link_expired(url: str, now: float) -> bool:
    expiry = presigned_expiry(urlsplit(url).query)
    return expiry is not None and now > expiry.expires_at
