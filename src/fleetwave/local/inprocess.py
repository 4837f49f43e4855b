"""The embedded AWS endpoint without the HTTP round trip, for the clients of this process.

`fleetwave serve` keeps moto's backends in its own process (process-global, moto's design) behind an HTTP
endpoint that external tools use: the AWS CLI, boto3 from the user's shell, the robots' bundle downloads.
The in-process Lambda handlers, the state machine's interpreter and the local runtime's own clients talk to
the same endpoint (``AWS_ENDPOINT_URL``); over HTTP each of their calls paid for a socket, a request thread,
HTTP parsing on both sides and werkzeug's server loop, which was most of the local engine's time per robot.

`InProcessRoute` is a botocore ``before-send`` handler on this process's default boto3 session: a request
addressed to the embedded endpoint is handed to the same WSGI application the HTTP server runs (moto's
``DomainDispatcherApplication``), in the calling thread, and its answer goes back to botocore as if it had
come over the wire. DynamoDB requests, most of a rollout's, skip the WSGI layers: they go to moto's
DynamoDB handler as moto's own in-process mock (``mock_aws``) sends them, with the same request object.
Reads and writes (GetItem, Query, BatchGetItem, PutItem, UpdateItem, DeleteItem, BatchWriteItem,
TransactWriteItems: every API read, nearly all of the engine's work) go shorter still: a ``before-call``
handler gives their parameters to moto's handler as moto's request parser would and hands botocore the
parsed answer, so neither side signs, writes or parses the wire form; a request with a binary value, and a
read's error, take the route above (a write's error is parsed here from moto's error answer, as botocore
parses it off the wire).
Same backends, same data: what a client here writes, the AWS CLI reads over HTTP, and the other way round.
A request for any other address is left alone (botocore sends it). This is moto's own in-process technique
(``mock_aws`` registers a ``before-send`` stubber), scoped to one endpoint so that nothing else this
process sends (a real AWS account, the Fleetwave API) is captured.
"""

from __future__ import annotations

import io
import json
import math
import sys
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders

# Names a client on this machine may use for the endpoint (moto's interpreter says ``localhost``).
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
EVENT = "before-send"
UNIQUE_ID = "fleetwave-in-process-aws"
DIRECT_EVENT = "before-call.dynamodb"
DIRECT_UNIQUE_ID = "fleetwave-in-process-dynamodb-direct"
# The requests answered without the wire form, and moto's DynamoHandler method for each.
DIRECT_READS = {"GetItem": "get_item", "Query": "query", "BatchGetItem": "batch_get_item"}
DIRECT_WRITES = {
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "BatchWriteItem": "batch_write_item",
    "TransactWriteItems": "transact_write_items",
}
# moto.core.request.PRESERVED_HEADER_NAMES_ENVIRON_KEY
_PRESERVED_HEADER_NAMES = "moto.preserved_header_names"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Body(io.BytesIO):
    """A response body botocore can read whole or stream (``stream()``, as urllib3's responses do)."""

    def stream(self, **kwargs: Any) -> Any:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class InProcessRoute:
    """``before-send``: answer requests for ``port`` on this machine with ``app``, in process."""

    def __init__(self, app: WsgiApp, port: int) -> None:
        self._app = app
        self._port = port
        self._open = True
        self.requests = 0

    def close(self) -> None:
        """Stop answering: clients created while this was installed keep the handler (botocore copies the
        session's handlers into each client), and must go over the network once the endpoint is gone."""
        self._open = False

    def handles(self, url: str) -> bool:
        if not self._open:
            return False
        parts = urlsplit(url)
        return parts.port == self._port and (parts.hostname or "") in LOCAL_HOSTS

    def __call__(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
        if not self.handles(request.url):
            return None
        self.requests += 1
        target = request.headers.get("X-Amz-Target") or b""
        if (target.decode("latin-1") if isinstance(target, bytes) else target).startswith(_DYNAMODB_TARGET):
            status, headers, body = _dynamodb(request)
        else:
            status, headers, body = self.send(request.method, request.url, request.headers, request.body)
        return AWSResponse(request.url, status, headers, _Body(body))  # type: ignore[arg-type]

    def direct(self, model: Any, params: dict[str, Any], request_signer: Any, **kwargs: Any) -> Any:
        """``before-call`` for DynamoDB: a read (GetItem, Query, BatchGetItem) or a write (PutItem,
        UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems) answered by moto's own handler without
        the wire in between; None: go the usual way (a request this does not take, and a read's error: it
        meets moto's answer there). A write's error is answered here, parsed from moto's error answer as
        botocore parses it off the wire: sending the write again could meet what the first attempt left."""
        write = model.name in DIRECT_WRITES
        if not (write or model.name in DIRECT_READS) or not self.handles(params.get("url", "")):
            return None
        method = DIRECT_WRITES[model.name] if write else DIRECT_READS[model.name]
        answer = _direct_call(method, params, request_signer, model, write)
        if answer is None:
            return None
        self.requests += 1
        return answer

    def send(self, method: str, url: str, headers: Any, body: Any) -> tuple[int, HTTPHeaders, bytes]:
        """One request through the WSGI application: (status, headers, body)."""
        environ = wsgi_environ(method, url, headers, _bytes(body), self._port)
        answer: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = response_headers
            return lambda data: None

        iterable = self._app(environ, start_response)
        try:
            data = b"".join(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        response_headers = HTTPHeaders()
        for name, value in answer.get("headers", []):
            response_headers[name] = value
        return answer.get("status", 500), response_headers, data


_DYNAMODB_TARGET = "DynamoDB_20120810."


def _dynamodb(request: AWSPreparedRequest) -> tuple[int, HTTPHeaders, bytes]:
    """A DynamoDB request straight to moto's handler (what ``mock_aws``'s stubber does; the handler reads the
    account and region from the request's signature, as behind the HTTP server)."""
    from moto.core.exceptions import HTTPException
    from moto.core.request import normalize_request
    from moto.dynamodb.responses import DynamoHandler

    normalized = normalize_request(request)
    try:
        status, headers, body = DynamoHandler.dispatch(normalized, normalized.raw_url, normalized.headers)
    except HTTPException as error:
        status, headers, body = error.code, error.get_headers(), error.get_body()
    return _wire_answer(status, headers, body)


def _wire_answer(status: Any, headers: Any, body: Any) -> tuple[int, HTTPHeaders, bytes]:
    """moto's answer (status, headers, body: a dispatch's, or an error's) as it would come over the wire."""
    response_headers = HTTPHeaders()
    for name, value in dict(headers or {}).items():
        if name != "status":  # moto's own copy of the status code, not an HTTP header
            response_headers[name] = str(value)
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
    return int(status), response_headers, data


_SIGNED_BY = "AWS4-HMAC-SHA256 Credential="
_DIRECT_HEADERS = HTTPHeaders()
_DIRECT_HEADERS["content-type"] = "application/x-amz-json-1.0"


def _direct_call(
    method: str, params: dict[str, Any], request_signer: Any, model: Any, write: bool
) -> tuple[AWSResponse, dict[str, Any]] | None:
    """(the HTTP answer, the parsed answer) from moto's DynamoDB handler ``method``, called as ``_dynamodb``
    would after parsing the wire request (same backend, same guard, same validation), or None when the
    request is not one this takes, or a read raised. A write's error is answered here (``_error_answer``).
    ``model``: the operation's: the answer holds what it models, as botocore's parser keeps.

    Over the wire, a request costs botocore's signing, request and response parsing and moto's request
    building, parsing and serialising, several times what moto's read or write itself costs
    (docs/performance.md); an API read of one row such as DescribeRobot is one GetItem, a robot's report a
    conditional UpdateItem or two.
    """
    from moto import settings
    from moto.core.exceptions import HTTPException
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.models import mark_account_as_visited

    credentials = getattr(request_signer, "_credentials", None)
    body = params.get("body")
    if credentials is None or params.get("method") != "POST" or not isinstance(body, bytes):
        return None
    # moto's request parser decodes binary values (base64 in the JSON); everything else it gives the
    # handler as the JSON has it. With IAM checks on (moto's opt-in), moto counts and checks each request.
    if b'"B"' in body or b'"BS"' in body or not math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT):
        return None
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict):
        return None
    region = request_signer.region_name
    access_key = credentials.get_frozen_credentials().access_key
    handler = DynamoHandler()
    handler.body = request
    handler.querystring = {}
    handler.region = region
    # moto reads the account from these headers (after MOTO_ACCOUNT_ID): the access key as it is signed.
    handler.headers = {
        "Authorization": f"{_SIGNED_BY}{access_key}/-/{region}/dynamodb/aws4_request,",
        **{
            name.lower(): value
            for name, value in (params.get("headers") or {}).items()
            if name.lower() == "x-moto-account-id"
        },
    }
    handler.access_key = handler.get_access_key()
    handler.current_account = handler.get_current_account()
    mark_account_as_visited(handler.current_account, handler.access_key, "dynamodb", region)
    try:
        result = getattr(handler, method)().result
    except HTTPException as error:
        if not write:
            return None  # a read's error: moto's own path answers it
        return _error_answer(model, params["url"], error)
    except Exception:
        if not write:
            return None
        raise  # as over the wire (``_dynamodb`` lets it through too)
    request_id = str(uuid.uuid4())
    members = model.output_shape.members if model.output_shape is not None else {}
    parsed = {
        **{name: value for name, value in result.items() if name in members},
        "ResponseMetadata": {
            "RequestId": request_id,
            "HTTPStatusCode": 200,
            "HTTPHeaders": {**_DIRECT_HEADERS, "x-amzn-requestid": request_id},
            "RetryAttempts": 0,
        },
    }
    return AWSResponse(params["url"], 200, _DIRECT_HEADERS, _Body(b"")), parsed  # type: ignore[arg-type]


def _error_answer(model: Any, url: str, error: Any) -> tuple[AWSResponse, dict[str, Any]]:
    """moto's error answer for a write, parsed as botocore parses one off the wire (its ``Error``, and the
    members the service models for that error, such as ConditionalCheckFailed's ``Item``)."""
    from botocore.parsers import create_parser

    status, headers, body = _wire_answer(error.code, error.get_headers(), error.get_body())
    response = {"status_code": status, "headers": headers, "body": body}
    parser = create_parser(model.service_model.metadata["protocol"])
    parsed = parser.parse(response, model.output_shape)
    error_shape = model.service_model.shape_for_error_code(parsed.get("Error", {}).get("Code"))
    if error_shape is not None:
        parsed.update(parser.parse(response, error_shape))
    return AWSResponse(url, status, headers, _Body(body)), parsed  # type: ignore[arg-type]


def _bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytearray):
        return bytes(body)
    read = getattr(body, "read", None)
    if read is not None:  # a file-like body (S3 uploads, aws-chunked checksums): read once, as a socket would
        data = read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return bytes(body)


def _latin1(text: str) -> str:
    """WSGI's "native string" for non-ASCII text (PEP 3333): the UTF-8 bytes read as latin-1."""
    return text.encode("utf-8").decode("latin-1")


def wsgi_environ(method: str, url: str, headers: Any, body: bytes, port: int) -> dict[str, Any]:
    """The environ werkzeug's HTTP server (with moto's request handler) builds for this request."""
    parts = urlsplit(url)
    raw_path = parts.path or "/"
    raw_uri = raw_path + (f"?{parts.query}" if parts.query else "")
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REQUEST_METHOD": method.upper(),
        "SCRIPT_NAME": "",
        "PATH_INFO": _latin1(unquote(raw_path)),
        "QUERY_STRING": _latin1(parts.query),
        "REQUEST_URI": _latin1(raw_uri),
        "RAW_URI": _latin1(raw_uri),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": 0,
        "SERVER_NAME": parts.hostname or "127.0.0.1",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)),
    }
    preserved: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        value = value.replace("\r\n", "")
        key = name.upper().replace("-", "_")
        if "_" in name:
            # werkzeug drops underscored header names; moto keeps S3 user metadata ones (MotoRequestHandler).
            if not name.lower().startswith("x-amz-meta-"):
                continue
            preserved.setdefault(f"HTTP_{key}", name)
        if key == "CONTENT_LENGTH":
            continue  # the body's own length, as a server reading the socket would see it
        if key != "CONTENT_TYPE":
            key = f"HTTP_{key}"
            if key in environ:
                value = f"{environ[key]},{value}"
        environ[key] = value
    environ.setdefault("HTTP_HOST", parts.netloc)
    environ[_PRESERVED_HEADER_NAMES] = preserved
    return environ


def install(route: InProcessRoute) -> None:
    """Route this process's boto3 clients created from now on (the default session's) through ``route``."""
    session = boto3._get_default_session()._session  # noqa: SLF001
    session.register(EVENT, route, unique_id=UNIQUE_ID)
    session.register(DIRECT_EVENT, route.direct, unique_id=DIRECT_UNIQUE_ID)


def uninstall() -> None:
    session = boto3.DEFAULT_SESSION
    if session is not None:
        session._session.unregister(EVENT, unique_id=UNIQUE_ID)  # noqa: SLF001
        session._session.unregister(DIRECT_EVENT, unique_id=DIRECT_UNIQUE_ID)  # noqa: SLF001
