"""A local HTTP server that plays S3 for the agent's downloads: ``Files.files`` (path -> bytes) served with
S3-style quoted MD5 ETags (unless ``Files.send_etag`` is False), 404 for anything else, and 403 for a URL
that contains ``expired`` (what S3 answers for a presigned link past its expiry)."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    send_etag = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if "expired" in self.path:
            self.send_error(403, "Forbidden")
            return
        body = self.files.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        if self.send_etag:
            self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return None


@contextlib.contextmanager
def serve_files() -> Iterator[str]:
    """Start the server with no files; its base URL."""
    Files.files, Files.send_etag = {}, True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
