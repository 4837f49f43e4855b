"""A local stand-in for the API Gateway REST API: SigV4 (AWS_IAM) in front of one Lambda proxy integration.

Every method of every path goes to one handler, like the deployed ``ANY /{proxy+}`` resource. The handler
is called in process with a REST proxy event (payload version 1.0) and a small Lambda context. The event
follows what API Gateway REST sends: ``path`` exactly as the caller sent it (still percent-encoded,
no stage segment), ``pathParameters.proxy`` and the query string parameters decoded, ``requestContext.stage``
``$default`` so that Powertools' resolver strips no prefix.

Errors produced here (before the handler) use API Gateway's names and words: 403 for SigV4 failures,
413 for a body over 10 MB, 502 ``Internal server error`` when the handler raises or returns something that
is not a proxy response. A malformed request never produces a 500.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import functools
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from fleetwave_service.core.settings import partition_of

from fleetwave.local.log import logger
from fleetwave.local.sigv4 import Caller, SignatureError, SignedRequest, SigV4Verifier, query_pairs

LambdaHandler = Callable[[dict[str, Any], Any], Any]
# An unsigned app served beside the API under a path prefix (the web console at /console):
# (method, path with query, headers, body) -> its response.
Mount = Callable[[str, str, Mapping[str, str], bytes], "GatewayResponse"]

# API Gateway's payload limit and integration timeout.
MAX_BODY_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_MS = 29_000
STAGE = "$default"


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that Powertools and handlers read."""

    function_name: str = "fleetwave-api"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fleetwave-api"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/fleetwave-api"
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    deadline_monotonic: float = field(
        default_factory=lambda: time.monotonic() + INTEGRATION_TIMEOUT_MS / 1000
    )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


@dataclass(frozen=True)
class GatewayIdentity:
    """Who the gateway reports as the caller in ``requestContext`` (the one local account)."""

    account_id: str = "123456789012"
    region: str = "us-east-1"
    user_name: str = "fleetwave-local"

    @property
    def user_arn(self) -> str:
        return f"arn:{partition_of(self.region)}:iam::{self.account_id}:user/{self.user_name}"


def build_proxy_event(
    request: SignedRequest,
    caller: Caller,
    identity: GatewayIdentity,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The REST proxy event (version 1.0) API Gateway would hand the integration for this request."""
    moment = time.time() if now is None else now
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    pairs = query_pairs(request.query)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        query[key] = value
        multi_query.setdefault(key, []).append(value)
    body, is_base64 = _event_body(request.body)
    proxy = unquote(request.path).lstrip("/")
    request_id = request_id or str(uuid.uuid4())
    user_agent = next((v for k, v in request.headers if k.lower() == "user-agent"), None)
    host = next((v for k, v in request.headers if k.lower() == "host"), "")
    return {
        "resource": "/{proxy+}",
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": proxy} if proxy else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": identity.account_id,
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0].split(":")[0],
            "extendedRequestId": request_id,
            "httpMethod": request.method,
            "identity": {
                "accessKey": caller.access_key,
                "accountId": identity.account_id,
                "caller": caller.access_key,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": caller.access_key,
                "userAgent": user_agent,
                "userArn": identity.user_arn,
            },
            "path": request.path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(moment * 1000),
            "resourceId": "proxy",
            "resourcePath": "/{proxy+}",
            "stage": STAGE,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _event_body(raw: bytes) -> tuple[str | None, bool]:
    if not raw:
        return None, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True


@dataclass
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def error_response(status: int, error_type: str, message: str, request_id: str) -> GatewayResponse:
    return GatewayResponse(
        status=status,
        headers=[
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", error_type),
            ("x-amzn-RequestId", request_id),
        ],
        body=json.dumps({"message": message}).encode("utf-8"),
    )


def proxy_response(result: Any, request_id: str) -> GatewayResponse:
    """Translate the handler's proxy response; anything malformed is API Gateway's 502."""
    if not isinstance(result, Mapping) or not isinstance(result.get("statusCode"), int):
        raise ValueError("Malformed Lambda proxy response")
    headers: dict[str, list[str]] = {}
    for name, value in (result.get("headers") or {}).items():
        headers[str(name)] = [str(value)]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = [str(value) for value in values]
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise ValueError("Malformed Lambda proxy response")
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    pairs = [(name, value) for name, values in headers.items() for value in values]
    if not any(name.lower() == "x-amzn-requestid" for name, _ in pairs):
        pairs.append(("x-amzn-RequestId", request_id))
    return GatewayResponse(status=result["statusCode"], headers=pairs, body=raw)


class Listener:
    """A server of the local runtime that may bind port 0 (any free port): ``port`` is the one it bound
    once started, the one asked for before."""

    _host: str
    _port: int
    _server: Any
    _thread: threading.Thread | None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://{url_host(self._host)}:{self.port}"

    def _shut_down(self) -> None:
        """Stop serving and join the serving thread."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None


class ApiGateway(Listener):
    """A threaded HTTP server that verifies SigV4 and calls ``handler(event, context)`` in process.

    ``handler`` is any Lambda-style callable; ``fleetwave serve`` passes
    ``fleetwave_service.api.lambda_handler``, tests pass fakes.
    """

    name = "api"

    def __init__(
        self,
        handler: LambdaHandler,
        credentials: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 8787,
        identity: GatewayIdentity | None = None,
        clock: Callable[[], float] = time.time,
        mounts: Mapping[str, Mount] | None = None,
    ) -> None:
        self._handler = handler
        self.mounts = dict(mounts or {})
        self._identity = identity or GatewayIdentity()
        self._verifier = SigV4Verifier(credentials, region=self._identity.region, clock=clock)
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._invoke_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    def start(self) -> None:
        """Bind and serve in a daemon thread. Raises OSError when the port cannot be bound."""
        server_class = _Server6 if ":" in self._host else _Server
        self._server = server_class((self._host, self._port), _make_request_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fleetwave-gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._shut_down()

    def handle(self, request: SignedRequest, source_ip: str = "127.0.0.1") -> GatewayResponse:
        """Verify, build the event, call the handler: the whole gateway minus the socket."""
        request_id = str(uuid.uuid4())
        if len(request.body) > MAX_BODY_BYTES:
            return error_response(413, "RequestEntityTooLargeException", "Request Too Long", request_id)
        try:
            caller = self._verifier.verify(request)
        except SignatureError as error:
            logger.info(
                "request rejected",
                extra={"error_type": error.error_type, "method": request.method, "path": request.path},
            )
            return error_response(error.status, error.error_type, error.message, request_id)
        event = build_proxy_event(request, caller, self._identity, source_ip=source_ip, request_id=request_id)
        context = LocalLambdaContext(
            invoked_function_arn=(
                f"arn:{partition_of(self._identity.region)}:lambda:{self._identity.region}:"
                f"{self._identity.account_id}:function:fleetwave-api"
            ),
        )
        try:
            # One invocation at a time, like one warm Lambda instance: Powertools' resolvers keep the
            # current request on the module-level app, so overlapping calls would read each other's bodies.
            with self._invoke_lock:
                result = self._handler(event, context)
            return proxy_response(result, request_id)
        except Exception:
            # API Gateway answers 502 when the integration fails; the traceback is for the developer.
            logger.exception("api handler failed", extra={"method": request.method, "path": request.path})
            return error_response(502, "InternalServerErrorException", "Internal server error", request_id)


class _Server(ThreadingHTTPServer):
    # serve_forever(poll_interval) bounds how long stop() waits; keep it short so shutdown is prompt.
    daemon_threads = True
    # Rebinding right after a restart must work; a port held by a live process still fails.
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def url_host(host: str) -> str:
    """How a client on this machine writes the address a server bound to ``host`` in a URL."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _make_request_handler(gateway: ApiGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fleetwave-gateway"
        sys_version = ""
        # An answer larger than the write buffer goes out in more than one write; with Nagle's algorithm the
        # rest waits for the client's delayed ACK of the first (tens of ms on a kept-alive connection).
        disable_nagle_algorithm = True
        # Status line, headers and body are buffered and go out in one write when the answer is complete
        # (http.server flushes after each request): one system call, not two, per answer under 64 KiB.
        wbufsize = 64 * 1024

        def handle_expect_100(self) -> bool:
            # The interim answer must reach the client now: it waits for it before sending the body.
            ready = super().handle_expect_100()
            self.wfile.flush()
            return ready

        def log_message(self, format: str, *args: Any) -> None:
            # Formatted only when it is written: http.server logs every request.
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("http", extra={"line": format % args})

        def date_time_string(self, timestamp: float | None = None) -> str:
            # The Date header of every answer: formatted once a second, not once a request.
            if timestamp is not None:
                return super().date_time_string(timestamp)
            return _http_date(int(time.time()))

        def _serve(self) -> None:
            request_id = str(uuid.uuid4())
            try:
                body = self._read_body()
            except _BadRequest as bad:
                self._send(error_response(bad.status, bad.error_type, bad.message, request_id), close=True)
                return
            path, _, query = self.path.partition("?")
            mount = next((app for prefix, app in gateway.mounts.items() if _under(path, prefix)), None)
            if mount is not None:
                self._send(mount(self.command, self.path, dict(self.headers.items()), body))
                return
            request = SignedRequest(
                method=self.command,
                path=path or "/",
                query=query,
                headers=list(self.headers.items()),
                body=body,
            )
            self._send(gateway.handle(request, source_ip=self.client_address[0]))

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            length_header = self.headers.get("Content-Length")
            if length_header is None:
                return b""
            try:
                length = int(length_header)
            except ValueError:
                raise _BadRequest(400, "BadRequestException", "Invalid Content-Length header") from None
            if length < 0:
                raise _BadRequest(400, "BadRequestException", "Invalid Content-Length header")
            if length > MAX_BODY_BYTES:
                raise _BadRequest(413, "RequestEntityTooLargeException", "Request Too Long")
            return self.rfile.read(length)

        def _read_chunked(self) -> bytes:
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(1024).strip()
                try:
                    size = int(line.split(b";")[0], 16)
                except ValueError:
                    raise _BadRequest(400, "BadRequestException", "Invalid chunked encoding") from None
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _BadRequest(413, "RequestEntityTooLargeException", "Request Too Long")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)

        def _send(self, response: GatewayResponse, close: bool = False) -> None:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    return Handler


@functools.lru_cache(maxsize=2)
def _http_date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


class _BadRequest(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
