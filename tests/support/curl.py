"""curl as a user signs with it (``--aws-sigv4`` for execute-api, the local key pair)."""

from __future__ import annotations

import subprocess


def curl_sigv4(url: str, data: str) -> tuple[str, str]:
    """POST ``data`` (JSON) to ``url`` signed by curl itself: (response body, HTTP status)."""
    command = [
        "curl",
        "--silent",
        "--show-error",
        "--aws-sigv4",
        "aws:amz:us-east-1:execute-api",
        "--user",
        "testing:testing",
        "--header",
        "Content-Type: application/json",
        "--data",
        data,
        "--write-out",
        "\n%{http_code}",
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    body, status = output.rsplit("\n", 1)
    return body, status
