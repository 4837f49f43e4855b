"""The local API Gateway's proxy event and response handling, called in process (no sockets)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from botocore.credentials import Credentials

from fleetwave.local.gateway import MAX_BODY_BYTES, ApiGateway, GatewayIdentity
from fleetwave.local.sigv4 import SignedRequest
from fleetwave.sdk import sign_request

HOST = "127.0.0.1:8787"


class RecordingHandler:
    """A fake Lambda handler: records the events it gets and answers with a fixed proxy response."""

    def __init__(self, response: Any = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.response = response or {"statusCode": 200, "headers": {}, "body": "{}"}

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


def signed_wire(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> SignedRequest:
    request = sign_request(
        method,
        f"http://{HOST}{path}",
        body,
        Credentials("testing", "testing"),
        headers=headers,
        signed_at=dt.datetime.now(dt.UTC),
    )
    parts = urlsplit(request.url)
    wire_headers = [("Host", HOST), *((str(k), str(v)) for k, v in request.headers.items())]
    return SignedRequest(method, parts.path, parts.query, wire_headers, body)


def gateway(handler: Any) -> ApiGateway:
    return ApiGateway(handler, {"testing": "testing"}, port=0, identity=GatewayIdentity())


def test_gateway_builds_a_rest_proxy_event_without_stage_segment():
    # Given a signed POST with a JSON body
    handler = RecordingHandler()
    request = signed_wire(
        "POST", "/createFleet", b'{"name": "alpha"}', headers={"Content-Type": "application/json"}
    )

    # When the gateway handles it
    answer = gateway(handler).handle(request)

    # Then the handler got a REST proxy event (v1.0) for /{proxy+} with the caller's identity
    assert answer.status == 200
    event = handler.events[0]
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/createFleet"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"proxy": "createFleet"}
    assert event["body"] == '{"name": "alpha"}'
    assert event["isBase64Encoded"] is False
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert event["queryStringParameters"] is None
    context = event["requestContext"]
    assert context["stage"] == "$default"
    assert context["path"] == "/createFleet"
    assert context["accountId"] == "123456789012"
    assert context["identity"]["accessKey"] == "testing"
    assert context["identity"]["userArn"] == "arn:aws:iam::123456789012:user/fleetwave-local"
    assert handler.contexts[0].get_remaining_time_in_millis() > 0


def test_gateway_keeps_the_path_encoded_and_decodes_parameters_like_api_gateway():
    # Given a request for a tag resource whose ARN is percent-encoded in the path, and a repeated query key
    handler = RecordingHandler()
    arn = "arn%3Aaws%3Arobomaker%3Aus-east-1%3A123456789012%3Adeployment-fleet%2Falpha%2F1"
    request = signed_wire("DELETE", f"/tags/{arn}?tagKeys=a%20b&tagKeys=c")

    # When the gateway handles it
    gateway(handler).handle(request)

    # Then `path` is as sent, while pathParameters and query parameters are decoded
    event = handler.events[0]
    assert event["path"] == f"/tags/{arn}"
    assert event["pathParameters"] == {
        "proxy": "tags/arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/alpha/1"
    }
    assert event["queryStringParameters"] == {"tagKeys": "c"}
    assert event["multiValueQueryStringParameters"] == {"tagKeys": ["a b", "c"]}


def test_gateway_events_route_in_a_powertools_rest_resolver():
    # Given a Powertools REST resolver like the API handler's, behind the gateway
    app = APIGatewayRestResolver()

    @app.post("/createFleet")
    def create_fleet() -> dict[str, Any]:
        return {"name": app.current_event.json_body["name"]}

    @app.get("/tags/<arn>")
    def list_tags(arn: str) -> Response:
        return Response(status_code=200, content_type="application/json", body=json.dumps({"arn": arn}))

    api = gateway(lambda event, context: app.resolve(event, context))

    # When a fleet is created and tags are listed for an encoded ARN
    created = api.handle(
        signed_wire("POST", "/createFleet", b'{"name": "alpha"}', {"Content-Type": "application/json"})
    )
    tags = api.handle(signed_wire("GET", "/tags/arn%3Aaws%3Arobomaker%3Ax%2Fy"))

    # Then both routes match with no stage prefix to strip
    assert (created.status, json.loads(created.body)) == (200, {"name": "alpha"})
    assert tags.status == 200
    assert json.loads(tags.body) == {"arn": "arn%3Aaws%3Arobomaker%3Ax%2Fy"}


def test_gateway_returns_the_handlers_status_headers_and_body():
    # Given a handler answering an API error the way the error map does
    handler = RecordingHandler(
        {
            "statusCode": 400,
            "headers": {"x-amzn-ErrorType": "ResourceNotFoundException", "Content-Type": "application/json"},
            "body": json.dumps({"message": "fleet not found"}),
        }
    )

    # When
    answer = gateway(handler).handle(signed_wire("POST", "/describeFleet", b"{}"))

    # Then the caller sees exactly that
    assert answer.status == 400
    assert ("x-amzn-ErrorType", "ResourceNotFoundException") in answer.headers
    assert json.loads(answer.body) == {"message": "fleet not found"}


def test_gateway_decodes_a_base64_response_body():
    # Given a handler answering a binary body
    payload = bytes(range(256))
    handler = RecordingHandler(
        {"statusCode": 200, "body": base64.b64encode(payload).decode(), "isBase64Encoded": True}
    )

    # When / Then
    assert gateway(handler).handle(signed_wire("GET", "/bundle")).body == payload


def test_gateway_passes_a_non_utf8_body_base64_encoded():
    # Given a signed request whose body is not UTF-8
    handler = RecordingHandler()
    body = b"\xff\xfe\x00binary"

    # When
    gateway(handler).handle(signed_wire("POST", "/upload", body))

    # Then the event carries it base64-encoded, as API Gateway does for binary payloads
    event = handler.events[0]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_gateway_answers_502_when_the_handler_raises():
    # Given a handler that crashes
    handler = RecordingHandler(RuntimeError("boom"))

    # When
    answer = gateway(handler).handle(signed_wire("POST", "/createFleet", b"{}"))

    # Then API Gateway's integration failure, not a 500
    assert answer.status == 502
    assert ("x-amzn-ErrorType", "InternalServerErrorException") in answer.headers
    assert json.loads(answer.body) == {"message": "Internal server error"}


def test_gateway_answers_502_when_the_handler_returns_a_malformed_proxy_response():
    # Given a handler that returns something that is not a proxy response
    handler = RecordingHandler({"status": "ok"})

    # When / Then
    assert gateway(handler).handle(signed_wire("POST", "/createFleet", b"{}")).status == 502


def test_gateway_rejects_a_body_over_ten_megabytes_with_413():
    # Given a body one byte over API Gateway's payload limit
    handler = RecordingHandler()
    body = b"x" * (MAX_BODY_BYTES + 1)

    # When
    answer = gateway(handler).handle(signed_wire("POST", "/createFleet", body))

    # Then 413 before the handler is called
    assert answer.status == 413
    assert json.loads(answer.body) == {"message": "Request Too Long"}
    assert handler.events == []


def test_gateway_does_not_call_the_handler_for_a_rejected_signature():
    # Given an unsigned request
    handler = RecordingHandler()
    request = SignedRequest("POST", "/deleteFleet", "", [("Host", HOST)], b"{}")

    # When
    answer = gateway(handler).handle(request)

    # Then 403 with the error type header, and the handler never ran
    assert answer.status == 403
    assert ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in answer.headers
    assert handler.events == []
