"""`fleetwave console`'s own HTTP server: the console app (fleetwave.console.app) under /console, / redirects
there."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fleetwave.console.app import PREFIX, ConsoleApp
from fleetwave.local.gateway import Listener
from fleetwave.local.log import logger

MAX_BODY_BYTES = 1024 * 1024


class ConsoleServer(Listener):
    name = "console"

    def __init__(self, app: ConsoleApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{self.origin}{PREFIX}/"

    def start(self) -> None:
        self._server = ThreadingHTTPServer((self._host, self._port), _handler(self.app))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fleetwave-console", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._shut_down()


def _handler(app: ConsoleApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fleetwave-console"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("http", extra={"line": format % args})

        def _serve(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self.send_error(400, "bad Content-Length")
                return
            body = self.rfile.read(length) if length else b""
            if self.path in ("", "/"):
                answer = app.handle(self.command, PREFIX + "/", dict(self.headers.items()), body)
            else:
                answer = app.handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(answer.status)
            for name, value in answer.headers:
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    return Handler
