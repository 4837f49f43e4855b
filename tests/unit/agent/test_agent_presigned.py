"""Presigned URL expiry, as the agent reads it and as the local S3 enforces it."""

from __future__ import annotations

import io

import boto3
from botocore.config import Config

from fleetwave.agent.presigned import link_expired, presigned_expiry
from fleetwave.local.s3_expiry import PresignedExpiry


def _presigned(signature_version: str) -> str:
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version=signature_version),
    )
    return s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)


def test_presigned_expiry_reads_sigv4_and_sigv2_urls():
    for version in ("s3v4", "s3"):
        url = _presigned(version)
        expiry = presigned_expiry(url.split("?", 1)[1])
        assert expiry is not None
        assert not link_expired(url, expiry.expires_at - 1)
        assert link_expired(url, expiry.expires_at + 1)
    assert presigned_expiry("versionId=3") is None
    assert not link_expired("https://example.com/bundle.tar.gz", 0)


def _call(app, url: str, method: str = "GET"):
    seen = {}
    environ = {"REQUEST_METHOD": method, "QUERY_STRING": url.split("?", 1)[1], "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, lambda status, headers: seen.update(status=status, headers=dict(headers))))
    return seen["status"], body


def test_local_s3_refuses_an_expired_presigned_url_as_s3_does_and_passes_the_rest_through():
    def moto(environ, start_response):
        start_response("200 OK", [])
        return [b"bundle"]

    url = _presigned("s3v4")
    expires_at = presigned_expiry(url.split("?", 1)[1]).expires_at
    status, body = _call(PresignedExpiry(moto, clock=lambda: expires_at + 5), url)
    assert status == "403 Forbidden"
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in body
    assert b"<X-Amz-Expires>60</X-Amz-Expires>" in body
    assert _call(PresignedExpiry(moto, clock=lambda: expires_at - 5), url) == ("200 OK", b"bundle")
    assert _call(PresignedExpiry(moto, clock=lambda: expires_at + 5), url, "PUT") == ("200 OK", b"bundle")
