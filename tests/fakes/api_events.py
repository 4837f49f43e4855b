"""REST proxy events as API Gateway builds them for a ``{proxy+}`` resource, and a client that drives
the Lambda handler with them in-process.

    api = HandlerApi(lambda_handler)
    response = api.call("createFleet", {"name": "warehouse"})   # POST /createFleet
    response.status, response.error_type, response.json
    api.request("DELETE", "/tags/" + quote(arn, safe=""), query={"tagKeys": ["a", "b"]})
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def rest_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: Mapping[str, Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event. ``body`` is JSON-encoded unless ``raw_body`` is given."""
    all_headers = {"Content-Type": "application/json", "Host": "api.example.test", **(headers or {})}
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    request_id = str(uuid.uuid4())
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": dict(all_headers),
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} if query else None,
        "multiValueQueryStringParameters": {name: list(values) for name, values in query.items()}
        if query
        else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": path,
            "stage": "$default",
            "requestId": request_id,
            "accountId": "123456789012",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "tests"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    json: Any

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-ErrorType")

    @property
    def message(self) -> str:
        return (self.json or {}).get("message", "") if isinstance(self.json, dict) else ""


class LambdaContextStub:
    function_name = "fleetwave-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fleetwave-api"
    memory_limit_in_mb = 512
    aws_request_id = "tests"
    log_group_name = "/aws/lambda/fleetwave-api"
    log_stream_name = "tests"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


class HandlerApi:
    """Calls a REST proxy Lambda handler the way API Gateway would."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> None:
        self._handler = handler

    def call(self, operation: str, body: Any = None) -> ApiResponse:
        """``POST /<operation>`` with a JSON body (``{}`` when None), as botocore sends RoboMaker calls."""
        return self.request("POST", f"/{operation}", {} if body is None else body)

    def request(self, method: str, path: str, body: Any = None, **event_options: Any) -> ApiResponse:
        return self.send(rest_event(method, path, body, **event_options))

    def send(self, event: dict[str, Any]) -> ApiResponse:
        raw = self._handler(event, LambdaContextStub())
        headers = {k: v for k, v in (raw.get("headers") or {}).items()}
        for name, values in (raw.get("multiValueHeaders") or {}).items():
            headers[name] = values[-1]
        body = raw.get("body")
        return ApiResponse(status=raw["statusCode"], headers=headers, json=json.loads(body) if body else None)
