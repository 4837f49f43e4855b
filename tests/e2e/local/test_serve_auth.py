"""`fleetwave serve` over HTTP: SigV4 like API Gateway (403s with its error names), signed calls, S3."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from support.curl import curl_sigv4

from fleetwave.sdk import sign_request

TESTING = Credentials("testing", "testing")


def signed_post(api, operation: str, body: bytes, credentials=TESTING, signed_at=None) -> AWSRequest:
    return sign_request(
        "POST",
        f"{api.server.api_url}{operation}",
        body,
        credentials,
        headers={"Content-Type": "application/json"},
        signed_at=signed_at,
    )


def test_serve_rejects_an_unsigned_request_with_missing_authentication_token(serve):
    # Given a plain HTTP POST with no signature
    answer = urllib3.request("POST", f"{serve.api_url}listFleets", body=b"{}", retries=False)

    # Then 403, x-amzn-ErrorType MissingAuthenticationTokenException, API Gateway's message
    assert answer.status == 403
    assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert answer.json() == {"message": "Missing Authentication Token"}


def test_serve_rejects_a_tampered_body_with_invalid_signature(api):
    # Given a signed request whose body is replaced after signing
    request = signed_post(api, "createFleet", b'{"name": "alpha"}')
    request.data = b'{"name": "mallory"}'

    # When it is sent
    answer = api.client.send(request)

    # Then 403 InvalidSignatureException
    assert answer.status == 403
    assert answer.error_type == "InvalidSignatureException"
    assert answer.json["message"].startswith(
        "The request signature we calculated does not match the signature you provided."
    )


def test_serve_rejects_a_tampered_path_with_invalid_signature(api):
    # Given a request signed for /describeFleet and sent to /deleteFleet
    request = signed_post(api, "describeFleet", b'{"fleet": "arn:aws:robomaker:x"}')
    request.url = f"{api.server.api_url}deleteFleet"

    # When / Then
    answer = api.client.send(request)
    assert (answer.status, answer.error_type) == (403, "InvalidSignatureException")


def test_serve_rejects_an_unknown_access_key_with_unrecognized_client(api):
    # Given a request signed with a key pair the server does not know
    request = signed_post(api, "listFleets", b"{}", credentials=Credentials("AKIDUNKNOWN", "secret"))

    # When / Then
    answer = api.client.send(request)
    assert (answer.status, answer.error_type) == (403, "UnrecognizedClientException")
    assert answer.json == {"message": "The security token included in the request is invalid."}


def test_serve_rejects_an_expired_signature(api):
    # Given a request signed ten minutes ago
    request = signed_post(
        api, "listFleets", b"{}", signed_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    )

    # When / Then API Gateway's clock-skew answer
    answer = api.client.send(request)
    assert (answer.status, answer.error_type) == (403, "InvalidSignatureException")
    assert answer.json["message"].startswith("Signature expired: ")
    assert answer.json["message"].endswith(" - 5 min.)")


def test_serve_rejects_a_signature_for_another_service(api):
    # Given a request signed with the right keys for service "greengrass" instead of execute-api
    request = AWSRequest(method="POST", url=f"{api.server.api_url}listFleets", data=b"{}")
    SigV4Auth(TESTING, "greengrass", "us-east-1").add_auth(request)

    # When / Then
    answer = api.client.send(request)
    assert (answer.status, answer.error_type) == (403, "InvalidSignatureException")
    assert answer.json == {"message": "Credential should be scoped to correct service: 'execute-api'. "}


def test_serve_rejected_requests_never_get_a_server_error(serve):
    # Given malformed requests: a bad Content-Length, garbage Authorization, a bad date
    pool = urllib3.PoolManager(retries=False)
    bad_length = pool.request(
        "POST", f"{serve.api_url}listFleets", body=b"{}", headers={"Content-Length": "-5"}
    )
    garbage = pool.request("POST", f"{serve.api_url}listFleets", body=b"{}", headers={"Authorization": "x"})
    bad_date = pool.request(
        "POST",
        f"{serve.api_url}listFleets",
        body=b"{}",
        headers={
            "Authorization": "AWS4-HMAC-SHA256 "
            "Credential=testing/20260101/us-east-1/execute-api/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=00",
            "X-Amz-Date": "yesterday",
        },
    )

    # Then each is a 4xx with an error type
    for answer in (bad_length, garbage, bad_date):
        assert 400 <= answer.status < 500, answer.data
        assert answer.headers.get("x-amzn-ErrorType")


def test_serve_answers_a_signed_call_through_the_api_handler(api):
    # Given a correctly signed ListFleets
    # When it is sent
    answer = api.call("listFleets", {})

    # Then the real API answers it
    assert answer.status == 200, answer
    assert "fleetDetails" in answer.json


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed on this machine")
def test_serve_accepts_curl_aws_sigv4(serve):
    # Given curl signing with the local key pair for execute-api
    # When it calls ListFleets
    body, status = curl_sigv4(f"{serve.api_url}listFleets", "{}")

    # Then the signature verified and the API answered
    assert status == "200", body
    assert "fleetDetails" in body


def test_serve_embedded_aws_endpoint_holds_the_bundle_bucket(serve):
    # Given the embedded AWS endpoint
    s3 = serve.aws_client("s3")

    # When a user uploads a robot-application bundle to fleetwave-bundles
    s3.put_object(Bucket="fleetwave-bundles", Key="apps/hello/x86_64.tar.gz", Body=b"bundle-bytes")

    # Then it is stored there, with an ETag the API can check sources against
    stored = s3.get_object(Bucket="fleetwave-bundles", Key="apps/hello/x86_64.tar.gz")
    assert stored["Body"].read() == b"bundle-bytes"
    assert stored["ETag"]
