"""The local API Gateway's SigV4 verifier: what a caller sees for good and bad signatures (no network)."""

from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fleetwave.local.sigv4 import SignatureError, SignedRequest, SigV4Verifier
from fleetwave.sdk import sign_request

KEYS = {"testing": "testing"}
SIGNED_AT = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
HOST = "127.0.0.1:8787"


def verifier_at(moment: dt.datetime = SIGNED_AT) -> SigV4Verifier:
    return SigV4Verifier(KEYS, region="us-east-1", clock=lambda: moment.timestamp())


def signed(
    path: str = "/createFleet",
    body: bytes = b'{"name": "alpha"}',
    method: str = "POST",
    credentials: Credentials | None = None,
    region: str = "us-east-1",
    headers: dict[str, str] | None = None,
    at: dt.datetime = SIGNED_AT,
) -> AWSRequest:
    return sign_request(
        method,
        f"http://{HOST}{path}",
        body,
        credentials or Credentials("testing", "testing"),
        region=region,
        headers={"Content-Type": "application/json", **(headers or {})},
        signed_at=at,
    )


def wire(request: AWSRequest, **changes: object) -> SignedRequest:
    """What the gateway would read off the socket for this request (Host is added by the HTTP client)."""
    parts = urlsplit(request.url)
    headers = [("Host", HOST), *((str(k), str(v)) for k, v in request.headers.items())]
    fields: dict[str, object] = {
        "method": request.method,
        "path": parts.path,
        "query": parts.query,
        "headers": headers,
        "body": request.body or b"",
    }
    fields.update(changes)
    return SignedRequest(**fields)  # type: ignore[arg-type]


def rejection(request: SignedRequest, verifier: SigV4Verifier | None = None) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        (verifier or verifier_at()).verify(request)
    return caught.value


def test_verifier_accepts_a_botocore_signed_request():
    # Given a request signed with the local key pair for execute-api
    request = wire(signed())

    # When the gateway verifies it
    caller = verifier_at().verify(request)

    # Then the caller is the key that signed it
    assert caller.access_key == "testing"


def test_verifier_accepts_query_parameters_in_any_order_and_repeated_keys():
    # Given a request whose query the client sorted before signing but sends in another order
    request = signed(
        path="/tags/arn%3Aaws%3Arobomaker?tagKeys=b&tagKeys=a&other=x%20y", method="DELETE", body=b""
    )
    sent = wire(request, query="tagKeys=a&other=x%20y&tagKeys=b")

    # When / Then it verifies: the canonical query string is sorted by the gateway too
    assert verifier_at().verify(sent).access_key == "testing"


def test_verifier_accepts_a_signature_just_inside_the_five_minute_window():
    # Given a request signed 4 minutes 59 seconds ago
    request = wire(signed())

    # When the gateway's clock reads 4:59 later, Then the request is still accepted
    later = SIGNED_AT + dt.timedelta(minutes=4, seconds=59)
    assert verifier_at(later).verify(request).access_key == "testing"


def test_verifier_keeps_each_key_pairs_signing_key_for_its_own_day_only():
    # Given a gateway with two key pairs, and requests from each signed either side of midnight
    keys = {"testing": "testing", "other": "other-secret"}
    midnight = dt.datetime(2026, 3, 2, 0, 0, 0, tzinfo=dt.UTC)
    verifier = SigV4Verifier(keys, region="us-east-1", clock=lambda: midnight.timestamp())
    moments = (midnight - dt.timedelta(seconds=30), midnight + dt.timedelta(seconds=30))

    # When / Then each verifies, in any order, with its own key and its own day
    for _ in range(2):
        for key_id, secret in keys.items():
            for moment in moments:
                request = wire(signed(credentials=Credentials(key_id, secret), at=moment))
                assert verifier.verify(request).access_key == key_id
    # and a key id signed with the other pair's secret, on a day already seen, still fails
    swapped = wire(signed(credentials=Credentials("other", "testing"), at=moments[1]))
    assert rejection(swapped, verifier).error_type == "InvalidSignatureException"


def test_verifier_ignores_headers_the_client_did_not_sign():
    # Given a signed request to which a proxy adds an unsigned header
    request = wire(signed())
    extended = wire(signed(), headers=[*request.headers, ("X-Forwarded-For", "10.0.0.1")])

    # When / Then it still verifies
    assert verifier_at().verify(extended).access_key == "testing"


def test_verifier_rejects_an_unsigned_request_with_missing_authentication_token():
    # Given a request with no Authorization header
    request = wire(signed())
    unsigned = wire(signed(), headers=[(k, v) for k, v in request.headers if k.lower() != "authorization"])

    # When verified
    error = rejection(unsigned)

    # Then API Gateway's answer: 403 MissingAuthenticationTokenException
    assert (error.status, error.error_type, error.message) == (
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


def test_verifier_rejects_a_tampered_body_with_invalid_signature():
    # Given a signed request whose body is changed after signing
    tampered = wire(signed(), body=b'{"name": "mallory"}')

    # When verified
    error = rejection(tampered)

    # Then 403 InvalidSignatureException with API Gateway's wording and the canonical string to compare
    assert error.error_type == "InvalidSignatureException"
    assert error.message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    assert "The Canonical String for this request should have been" in error.message
    assert hashlib.sha256(b'{"name": "mallory"}').hexdigest() in error.message


def test_verifier_rejects_a_body_swapped_under_a_signed_content_hash_header():
    # Given a client that signed x-amz-content-sha256 for body A, and body B sent with the same header
    body_a = b'{"name": "alpha"}'
    request = signed(body=body_a, headers={"X-Amz-Content-SHA256": hashlib.sha256(body_a).hexdigest()})
    swapped = wire(request, body=b'{"name": "mallory"}')

    # When verified, Then the header is not trusted for the payload: the signature does not match
    assert rejection(swapped).error_type == "InvalidSignatureException"


def test_verifier_rejects_a_tampered_path_with_invalid_signature():
    # Given a request signed for /describeFleet sent to /deleteFleet
    tampered = wire(signed(path="/describeFleet"), path="/deleteFleet")

    # When / Then
    assert rejection(tampered).error_type == "InvalidSignatureException"


def test_verifier_rejects_a_tampered_query_with_invalid_signature():
    # Given a request signed with ?maxResults=1 sent with ?maxResults=100
    request = signed(path="/greengrass/v2/deployments?maxResults=1", method="GET", body=b"")
    tampered = wire(request, query="maxResults=100")

    # When / Then
    assert rejection(tampered).error_type == "InvalidSignatureException"


def test_verifier_rejects_a_tampered_signed_header_with_invalid_signature():
    # Given a request whose signed Content-Type is changed after signing
    request = wire(signed())
    headers = [(k, "text/plain" if k.lower() == "content-type" else v) for k, v in request.headers]

    # When / Then
    assert rejection(wire(signed(), headers=headers)).error_type == "InvalidSignatureException"


def test_verifier_rejects_the_wrong_secret_with_invalid_signature():
    # Given a request signed with the right key id but the wrong secret
    request = wire(signed(credentials=Credentials("testing", "not-the-secret")))

    # When / Then
    assert rejection(request).error_type == "InvalidSignatureException"


def test_verifier_rejects_an_unknown_access_key_with_unrecognized_client():
    # Given a request signed with a key pair the gateway does not know
    request = wire(signed(credentials=Credentials("AKIDUNKNOWN", "whatever")))

    # When verified
    error = rejection(request)

    # Then API Gateway's answer for an unknown key
    assert (error.status, error.error_type, error.message) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_verifier_rejects_an_expired_signature_in_api_gateway_words():
    # Given a request signed at 12:00:00 and a gateway clock at 12:06:00
    request = wire(signed())
    error = rejection(request, verifier_at(SIGNED_AT + dt.timedelta(minutes=6)))

    # Then InvalidSignatureException "Signature expired: <date> is now earlier than <now-5m> (<now> - 5 min.)"
    assert error.error_type == "InvalidSignatureException"
    assert error.message == (
        "Signature expired: 20260301T120000Z is now earlier than 20260301T120100Z (20260301T120600Z - 5 min.)"
    )


def test_verifier_rejects_a_signature_from_the_future():
    # Given a request dated 6 minutes ahead of the gateway's clock
    request = wire(signed(at=SIGNED_AT + dt.timedelta(minutes=6)))

    # When / Then
    error = rejection(request)
    assert error.error_type == "InvalidSignatureException"
    assert error.message == (
        "Signature not yet current: 20260301T120600Z is still later than 20260301T120500Z "
        "(20260301T120000Z + 5 min.)"
    )


def test_verifier_rejects_a_signature_scoped_to_another_service():
    # Given a request signed for service "greengrass" (boto3's default for greengrassv2)
    request = AWSRequest(method="POST", url=f"http://{HOST}/createFleet", data=b"{}")
    request.headers["X-Amz-Date"] = SIGNED_AT.strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = request.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials("testing", "testing"), "greengrass", "us-east-1")
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders=host;x-amz-date, "
        f"Signature={signature}"
    )

    # When verified
    error = rejection(wire(request))

    # Then
    assert (error.error_type, error.message) == (
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'execute-api'. ",
    )


def test_verifier_rejects_a_signature_scoped_to_another_region():
    # Given a request signed for eu-west-1
    request = wire(signed(region="eu-west-1"))

    # When / Then
    error = rejection(request)
    assert (error.error_type, error.message) == (
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    )


def test_verifier_rejects_an_authorization_header_without_signature_as_incomplete():
    # Given an Authorization header missing its Signature part
    request = wire(signed())
    headers = [
        (k, v.split(", Signature=")[0] if k.lower() == "authorization" else v) for k, v in request.headers
    ]

    # When / Then
    error = rejection(wire(signed(), headers=headers))
    assert error.error_type == "IncompleteSignatureException"
    assert "Authorization header requires 'Signature' parameter." in error.message


def test_verifier_rejects_a_signed_request_without_a_date_as_incomplete():
    # Given a signed request whose X-Amz-Date header was dropped
    request = wire(signed())
    headers = [(k, v) for k, v in request.headers if k.lower() != "x-amz-date"]

    # When / Then
    error = rejection(wire(signed(), headers=headers))
    assert error.error_type == "IncompleteSignatureException"
    assert "requires existence of either a 'X-Amz-Date' or a 'Date' header" in error.message


def test_verifier_rejects_a_credential_scope_dated_another_day():
    # Given a signature whose credential scope date differs from X-Amz-Date
    request = wire(signed())
    headers = [
        (k, v.replace("/20260301/", "/20260228/") if k.lower() == "authorization" else v)
        for k, v in request.headers
    ]

    # When / Then
    error = rejection(wire(signed(), headers=headers))
    assert error.error_type == "InvalidSignatureException"
    assert error.message.startswith("Date in Credential scope does not match YYYYMMDD")


def test_verifier_rejects_a_non_sigv4_authorization_header():
    # Given a bearer token instead of a SigV4 signature
    request = wire(signed())
    headers = [(k, "Bearer abc" if k.lower() == "authorization" else v) for k, v in request.headers]

    # When / Then
    assert rejection(wire(signed(), headers=headers)).error_type == "IncompleteSignatureException"
