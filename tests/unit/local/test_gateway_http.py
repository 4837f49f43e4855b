"""The local API Gateway over loopback HTTP: real clients (SDK, boto3, curl) against a fake handler."""

from __future__ import annotations

import email.utils
import http.client
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials
from support.curl import curl_sigv4

from fleetwave.local.gateway import ApiGateway
from fleetwave.sdk import FleetwaveApiError, FleetwaveClient, greengrassv2_client, sign_request


class EchoHandler:
    """A fake API handler: answers 200 with what it received, or the error it is told to give."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if event["path"] == "/describeFleet":
            return {
                "statusCode": 400,
                "headers": {"x-amzn-ErrorType": "ResourceNotFoundException"},
                "body": json.dumps({"message": "Fleet alpha does not exist."}),
            }
        if event["path"] == "/greengrass/v2/deployments":
            return {
                "statusCode": 200,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"deployments": [{"deploymentId": "d-1", "deploymentStatus": "ACTIVE"}]}),
            }
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"path": event["path"], "body": event["body"]}),
        }


@pytest.fixture
def echo() -> EchoHandler:
    return EchoHandler()


@pytest.fixture
def api(echo: EchoHandler) -> Iterator[ApiGateway]:
    server = ApiGateway(echo, {"testing": "testing"}, host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


def raw_request(
    api: ApiGateway, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        connection.putheader(name, value)
    connection.endheaders(body or None)
    response = connection.getresponse()
    answer = (response.status, dict(response.getheaders()), response.read())
    connection.close()
    return answer


def test_gateway_serves_the_sdk_client_and_returns_parsed_json(api: ApiGateway, echo: EchoHandler):
    # Given the SDK client signing with the local key pair
    client = FleetwaveClient(api.url, credentials=("testing", "testing"))

    # When it calls an operation
    result = client.call("CreateFleet", {"name": "alpha"})

    # Then the handler saw POST /createFleet with the body, and the caller got its JSON back
    assert result == {"path": "/createFleet", "body": '{"name": "alpha"}'}
    assert echo.events[0]["httpMethod"] == "POST"


def test_gateway_answers_carry_the_http_date_of_the_moment_they_are_sent(api: ApiGateway):
    # Given a client of the gateway
    client = FleetwaveClient(api.url, credentials=("testing", "testing"))

    # When it calls twice (the gateway formats the Date header once a second)
    before = int(time.time())
    dates = [client.request("createFleet", {"name": "alpha"}).headers["Date"] for _ in range(2)]
    after = time.time()

    # Then each answer's Date is an RFC 7231 date between the call and its answer
    for date in dates:
        sent = email.utils.parsedate_to_datetime(date)
        assert date.endswith(" GMT")
        assert before <= sent.timestamp() <= after


def test_gateway_errors_reach_the_sdk_as_typed_api_errors(api: ApiGateway):
    # Given a handler answering ResourceNotFoundException for describeFleet
    client = FleetwaveClient(api.url, credentials=("testing", "testing"))

    # When the SDK calls it
    with pytest.raises(FleetwaveApiError) as caught:
        client.call(
            "describeFleet", {"fleet": "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/a/1"}
        )

    # Then the error is typed with status, wire name and message
    assert (caught.value.status, caught.value.error_type, caught.value.message) == (
        400,
        "ResourceNotFoundException",
        "Fleet alpha does not exist.",
    )


def test_gateway_rejects_sdk_calls_signed_with_an_unknown_key(api: ApiGateway):
    # Given a client with a key pair the gateway does not know
    client = FleetwaveClient(api.url, credentials=("AKIDUNKNOWN", "secret"))

    # When / Then
    with pytest.raises(FleetwaveApiError) as caught:
        client.call("listFleets", {})
    assert (caught.value.status, caught.value.error_type) == (403, "UnrecognizedClientException")


def test_gateway_serves_boto3_greengrassv2_after_the_signing_name_switch(api: ApiGateway, echo: EchoHandler):
    # Given boto3's own Greengrass V2 client, pointed at the gateway with the SDK helper
    client = greengrassv2_client(api.url, aws_access_key_id="testing", aws_secret_access_key="testing")

    # When it lists deployments
    result = client.list_deployments(historyFilter="ALL")

    # Then the signature verified and boto3 parsed the answer
    assert result["deployments"] == [{"deploymentId": "d-1", "deploymentStatus": "ACTIVE"}]
    assert echo.events[0]["queryStringParameters"] == {"historyFilter": "ALL"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed on this machine")
def test_gateway_accepts_curl_aws_sigv4(api: ApiGateway, echo: EchoHandler):
    # Given curl signing with --aws-sigv4 for execute-api
    # When curl calls the API
    body, status = curl_sigv4(f"{api.url}createFleet", '{"name": "alpha"}')

    # Then the request verified and reached the handler with its body
    assert status == "200"
    assert json.loads(body) == {"path": "/createFleet", "body": '{"name": "alpha"}'}


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed on this machine")
def test_gateway_rejects_curl_with_the_wrong_secret(api: ApiGateway):
    # Given curl signing with the right key id and a wrong secret
    command = [
        "curl",
        "--silent",
        "--include",
        "--aws-sigv4",
        "aws:amz:us-east-1:execute-api",
        "--user",
        "testing:wrong",
        "--data",
        "{}",
        f"{api.url}listFleets",
    ]

    # When
    output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout

    # Then 403 InvalidSignatureException
    assert output.startswith("HTTP/1.1 403")
    assert "x-amzn-ErrorType: InvalidSignatureException" in output


def test_gateway_answers_a_malformed_content_length_with_400_not_500(api: ApiGateway, echo: EchoHandler):
    # Given a request whose Content-Length is not a number
    status, headers, body = raw_request(
        api, "POST", "/createFleet", [("Host", "127.0.0.1"), ("Content-Length", "ten")]
    )

    # Then a clear 400 and the handler never ran
    assert status == 400
    assert json.loads(body) == {"message": "Invalid Content-Length header"}
    assert echo.events == []


def test_gateway_reads_a_chunked_body_and_verifies_it(api: ApiGateway, echo: EchoHandler):
    # Given a signed request sent with chunked transfer encoding
    body = b'{"name": "alpha"}'
    signed = sign_request("POST", f"{api.url}createFleet", body, Credentials("testing", "testing"))
    headers = [(str(k), str(v)) for k, v in signed.headers.items()]
    headers += [("Host", f"127.0.0.1:{api.port}"), ("Transfer-Encoding", "chunked")]
    chunked = (
        b"5\r\n" + body[:5] + b"\r\n" + f"{len(body) - 5:x}".encode() + b"\r\n" + body[5:] + b"\r\n0\r\n\r\n"
    )

    # When
    status, _, answer = raw_request(api, "POST", "/createFleet", headers, chunked)

    # Then the body was reassembled before verification and reached the handler
    assert status == 200
    assert json.loads(answer)["body"] == body.decode()


def test_gateway_stop_frees_its_port(echo: EchoHandler):
    # Given a gateway that was serving
    server = ApiGateway(echo, {"testing": "testing"}, port=0)
    server.start()
    port = server.port

    # When it stops
    server.stop()

    # Then the same port can be bound again at once
    again = ApiGateway(echo, {"testing": "testing"}, port=port)
    again.start()
    assert again.port == port
    again.stop()


def test_gateway_answers_expect_100_continue_before_the_client_sends_the_body(
    api: ApiGateway, echo: EchoHandler
):
    # Given a signed request whose client announces its body and waits for the go-ahead (as curl does for
    # large bodies)
    body = b'{"name": "alpha"}'
    signed = sign_request("POST", f"{api.url}createFleet", body, Credentials("testing", "testing"))
    head = "".join(f"{name}: {value}\r\n" for name, value in signed.headers.items())
    head += f"Host: 127.0.0.1:{api.port}\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as connection:
        answers = connection.makefile("rb")
        connection.sendall(f"POST /createFleet HTTP/1.1\r\n{head}\r\n".encode())

        # When it reads the interim answer (with no body sent yet), then sends the body
        interim = answers.readline()
        assert answers.readline() == b"\r\n"
        connection.sendall(body)
        final = answers.readline()

    # Then it got 100 Continue first, and the request completed
    assert interim.startswith(b"HTTP/1.1 100")
    assert final.startswith(b"HTTP/1.1 200")
    assert [event["body"] for event in echo.events] == ['{"name": "alpha"}']
