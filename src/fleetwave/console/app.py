"""The web console's server side: its static files, and the API calls it makes for the browser, signed here.

The browser never holds a credential: it calls ``/console/api/<API path>`` on this server, which forwards
the call to the Fleetwave API signed with the operator's credentials (the local key pair for `fleetwave
serve`, an AWS profile for a deployed stack) and hands back the API's answer as it came (status,
``x-amzn-ErrorType``, ``{"message": ...}``). ``/console/view/job?arn=`` and ``/console/view/deployment?id=``
answer the live view of one rollout (fleetwave.watch.view, the same reading `fleetwave jobs watch` shows).

Because the server signs for whoever reaches it, it answers only requests a page of its own could have made:
API calls must carry the ``X-Fleetwave-Console`` header (a page on another site cannot add it without a CORS
preflight, which this server never grants), an ``Origin`` when present must be this server's, and the
``Host`` must be a loopback name or the address it was bound to (no DNS rebinding).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fleetwave.local.gateway import GatewayResponse as Answer
from fleetwave.local.log import logger

PREFIX = "/console"
CALL_HEADER = "x-fleetwave-console"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
UPSTREAM_ERROR = "ConsoleUpstreamError"
FORBIDDEN = "ConsoleForbiddenException"


def _json(status: int, document: Any, error_type: str | None = None) -> Answer:
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return Answer(status, headers, json.dumps(document).encode("utf-8"))


def _error(status: int, error_type: str, message: str) -> Answer:
    return _json(status, {"message": message}, error_type)


class ConsoleApp:
    """``handle(method, target, headers, body)`` -> Answer, for any HTTP server to mount under /console.

    ``client_factory`` returns the signing API client (fleetwave.sdk.FleetwaveClient); it is called once,
    on the first API call, so `fleetwave serve` can mount the console before its own port is known.
    """

    def __init__(self, client_factory: Callable[[], Any], allowed_hosts: set[str] | None = None) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self.allowed_hosts = LOOPBACK_HOSTS | (allowed_hosts or set())

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        split = urlsplit(target)
        path, query = split.path, split.query
        lowered = {name.lower(): value for name, value in headers.items()}
        if not self._host_allowed(lowered.get("host", "")):
            return _error(403, FORBIDDEN, "the console answers on this machine's loopback address only")
        if path in (PREFIX, f"{PREFIX}/"):
            return self._static("index.html") if path.endswith("/") else _redirect(f"{PREFIX}/")
        if path.startswith(f"{PREFIX}/static/") and method in ("GET", "HEAD"):
            return self._static(path.removeprefix(f"{PREFIX}/static/"))
        if path.startswith((f"{PREFIX}/api/", f"{PREFIX}/view/")):
            refused = self._refused(lowered)
            if refused is not None:
                return refused
            try:
                if path.startswith(f"{PREFIX}/view/"):
                    return self._view(path.removeprefix(f"{PREFIX}/view/"), dict(parse_qsl(query)))
                return self._forward(method, path.removeprefix(f"{PREFIX}/api"), query, body)
            except Exception as error:
                return self._upstream_error(error)
        return _error(404, "NotFoundException", f"no console page at {path}")

    # --- guards ---
    def _host_allowed(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name in self.allowed_hosts

    def _refused(self, headers: Mapping[str, str]) -> Answer | None:
        if headers.get(CALL_HEADER) != "1":
            return _error(403, FORBIDDEN, f"console calls carry the {CALL_HEADER} header")
        origin = headers.get("origin")
        if origin and urlsplit(origin).netloc != headers.get("host", ""):
            return _error(403, FORBIDDEN, f"calls from {origin} are not the console's")
        return None

    # --- answers ---
    def _static(self, name: str) -> Answer:
        if "/" in name or name.startswith("."):
            return _error(404, "NotFoundException", f"no console file {name}")
        resource = resources.files("fleetwave.console") / "static" / name
        if not resource.is_file():
            return _error(404, "NotFoundException", f"no console file {name}")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers = [
            ("Content-Type", f"{kind}; charset=utf-8" if kind.startswith("text/") else kind),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
        ]
        return Answer(200, headers, resource.read_bytes())

    def _forward(self, method: str, path: str, query: str, body: bytes) -> Answer:
        parsed: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            parsed.setdefault(key, []).append(value)
        payload = json.loads(body) if body else None
        if method == "POST" and payload is None and not path.startswith("/greengrass/"):
            payload = {}
        response = self.client.request(path, payload, method=method, query=parsed or None)
        document = response.json if response.json is not None else {}
        if response.status >= 400 and not isinstance(document, dict):
            document = {"message": str(document)}
        return _json(response.status, document, response.error_type if response.status >= 400 else None)

    def _view(self, what: str, query: Mapping[str, str]) -> Answer:
        from fleetwave.watch.view import read_deployment, read_job

        if what == "job" and query.get("arn"):
            return _json(200, read_job(self.client, "job", query["arn"]).as_json())
        if what == "deployment" and query.get("id"):
            return _json(200, read_deployment(self.client, "deployment", query["id"]).as_json())
        return _error(400, "InvalidParameterException", "view/job?arn=... or view/deployment?id=...")

    def _upstream_error(self, error: Exception) -> Answer:
        from fleetwave.sdk import FleetwaveApiError

        if isinstance(error, FleetwaveApiError):
            return _error(error.status, error.error_type, error.message)
        if isinstance(error, json.JSONDecodeError):
            return _error(400, "InvalidParameterException", f"request body: not valid JSON ({error})")
        logger.warning("console call failed", extra={"error": repr(error)})
        endpoint = getattr(self._client, "endpoint", "the API")
        return _error(502, UPSTREAM_ERROR, f"cannot reach the Fleetwave API at {endpoint}: {error}")


def _redirect(location: str) -> Answer:
    return Answer(302, [("Location", location), ("Content-Length", "0")], b"")
