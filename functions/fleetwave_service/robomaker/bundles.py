"""The bundle store port: the S3 objects robot application sources point at."""

from __future__ import annotations

from botocore.exceptions import ClientError

from fleetwave_service.core.clients import LazyClient

_s3 = LazyClient("s3")
reset = _s3.reset


# HEAD answers a bare status code; S3 says 403 rather than 404 for a missing object when the caller may
# not list the bucket, so a forbidden object is as good as a missing one here.
UNREADABLE_CODES = frozenset(
    {"404", "NoSuchKey", "NotFound", "NoSuchBucket", "403", "Forbidden", "AccessDenied"}
)


def object_etag(bucket: str, key: str) -> str | None:
    """The object's ETag without its quotes, or None when the object or its bucket is missing (or hidden)."""
    try:
        response = _s3().head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in UNREADABLE_CODES:
            return None
        raise
    return str(response["ETag"]).strip('"')
