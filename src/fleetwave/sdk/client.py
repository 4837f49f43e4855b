"""A small SigV4-signing client for the Fleetwave API (scope ``execute-api``), local or in AWS."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

import botocore.session
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import NoCredentialsError

SIGNING_NAME = "execute-api"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
DEFAULT_REGION = "us-east-1"
LOCAL_ENDPOINT = "http://127.0.0.1:8787/"
# API Gateway gives up on an integration after 29 s; a little more lets its own 504 arrive.
DEFAULT_TIMEOUT_SECONDS = 35.0

CredentialsLike = Credentials | tuple[str, str] | tuple[str, str, str]


class FleetwaveApiError(Exception):
    """An error answer from the API: HTTP status, the wire error name (x-amzn-ErrorType) and its message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{error_type} ({status}): {message}")
        self.status = status
        self.error_type = error_type
        self.message = message


class ApiResponse(NamedTuple):
    """One HTTP answer. ``headers`` is case-insensitive; ``json`` is the parsed body (None when empty,
    the text itself when the body is not JSON)."""

    status: int
    headers: Mapping[str, str]
    json: Any

    @property
    def error_type(self) -> str | None:
        return error_type_of(self.headers, self.json)


def error_type_of(headers: Mapping[str, str], body: Any) -> str | None:
    """The wire error name, read the way botocore's rest-json parser reads it."""
    value = headers.get("x-amzn-ErrorType")
    if value:
        return value.split(":")[0]
    if isinstance(body, dict):
        code = body.get("__type") or body.get("code")
        if isinstance(code, str):
            return code.split("#")[-1]
    return None


def local_credentials(environ: Mapping[str, str] | None = None) -> Credentials:
    """The key pair `fleetwave serve` accepts.

    FLEETWAVE_LOCAL_ACCESS_KEY_ID / FLEETWAVE_LOCAL_SECRET_ACCESS_KEY, each defaulting to ``testing``.
    """
    env = os.environ if environ is None else environ
    return Credentials(
        env.get("FLEETWAVE_LOCAL_ACCESS_KEY_ID") or "testing",
        env.get("FLEETWAVE_LOCAL_SECRET_ACCESS_KEY") or "testing",
    )


def resolve_credentials(
    credentials: CredentialsLike | None = None, profile: str | None = None
) -> Credentials:
    """Explicit credentials, else botocore's chain (environment, profile, SSO, instance role...)."""
    if isinstance(credentials, Credentials):
        return credentials
    if credentials is not None:
        return Credentials(*credentials)
    found = botocore.session.Session(profile=profile).get_credentials()
    if found is None:
        raise NoCredentialsError()
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def sign_request(
    method: str,
    url: str,
    body: bytes | None,
    credentials: Credentials,
    region: str = DEFAULT_REGION,
    headers: Mapping[str, str] | None = None,
    signed_at: dt.datetime | None = None,
) -> AWSRequest:
    """A SigV4-signed request (scope execute-api). ``url`` must already be percent-encoded.

    ``signed_at`` (default: now) makes signatures reproducible, e.g. to check clock-skew handling.
    """
    request = AWSRequest(method=method.upper(), url=url, data=body or b"", headers=dict(headers or {}))
    moment = signed_at or dt.datetime.now(dt.UTC)
    timestamp = moment.astimezone(dt.UTC).strftime(SIGV4_TIMESTAMP)
    request.headers["X-Amz-Date"] = timestamp
    if credentials.token:
        request.headers["X-Amz-Security-Token"] = credentials.token
    request.context["timestamp"] = timestamp
    signer = SigV4Auth(credentials, SIGNING_NAME, region)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signed_headers = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed_headers}, "
        f"Signature={signature}"
    )
    return request


def operation_path(operation_or_path: str) -> str:
    """``createFleet`` or ``CreateFleet`` -> ``/createFleet``; a path starting with ``/`` stays as it is."""
    if operation_or_path.startswith("/"):
        return operation_or_path
    return "/" + operation_or_path[:1].lower() + operation_or_path[1:]


def encode_query(query: Mapping[str, Any] | None) -> str:
    """The query string, with list values repeated (``tagKeys=a&tagKeys=b``) and SigV4-style escaping."""
    if not query:
        return ""
    parts = []
    for key, value in query.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            parts.append(f"{quote(str(key), safe='-_.~')}={quote(str(item), safe='-_.~')}")
    return "&".join(parts)


class FleetwaveClient:
    """Calls the Fleetwave API with SigV4 (service execute-api).

    ``call("createFleet", {...})`` returns the parsed JSON or raises ``FleetwaveApiError``;
    ``request(...)`` returns every answer, errors included, as an ``ApiResponse``.
    """

    def __init__(
        self,
        endpoint: str,
        region: str = DEFAULT_REGION,
        credentials: CredentialsLike | None = None,
        profile: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.credentials = resolve_credentials(credentials, profile)
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=False)

    @classmethod
    def local(cls, endpoint: str = LOCAL_ENDPOINT, **kwargs: Any) -> FleetwaveClient:
        """A client for `fleetwave serve`, signing with the local key pair."""
        return cls(endpoint, credentials=local_credentials(), **kwargs)

    def request(
        self,
        operation_or_path: str,
        body: Any = None,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        path = quote(operation_path(operation_or_path), safe="/-_.~%")
        query_string = encode_query(query)
        url = f"{self.endpoint}{path}" + (f"?{query_string}" if query_string else "")
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        all_headers = (
            {"Content-Type": "application/json", **(headers or {})} if payload else dict(headers or {})
        )
        signed = sign_request(method, url, payload, self.credentials, self.region, all_headers)
        return self.send(signed)

    def call(
        self,
        operation_or_path: str,
        body: Any = None,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        response = self.request(operation_or_path, body, method=method, query=query)
        if response.status >= 400:
            body = response.json
            message = body.get("message", "") if isinstance(body, dict) else str(body or "")
            raise FleetwaveApiError(response.status, response.error_type or "UnknownError", message)
        return {} if response.json is None else response.json

    def send(self, request: AWSRequest) -> ApiResponse:
        """Send an already-signed request as it is (tests tamper with signed requests before sending)."""
        prepared = request.prepare()
        answer = self._http.request(
            prepared.method,
            prepared.url,
            body=prepared.body or None,
            headers=dict(prepared.headers.items()),
            redirect=False,
        )
        return ApiResponse(answer.status, answer.headers, _parse_body(answer.data))


def _parse_body(data: bytes) -> Any:
    if not data:
        return None
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
