"""`fleetwave serve` as a process: start it on free ports, wait for its ready line, stop it.

The one way the product and its tests run the local stack in a subprocess: ``fleetwave demo``, the e2e
fixtures (tests/e2e/conftest.py) and anything else that wants a stack of its own. (``fleetwave bench``
runs the stack in its own process, to count DynamoDB writes at moto, and takes its free ports from here.)

Output goes to files, not pipes: the handlers log every request, and an unread pipe would stall serve.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READY_PREFIX = "fleetwave serve: API "
# Generous caps, not expectations: start-up takes ~2 s on a quiet machine.
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
LOCAL_CREDENTIAL = "testing"
PORT_TAKEN = "already in use"


class ServeError(RuntimeError):
    """`fleetwave serve` did not start; the message ends with what it printed (``server.tail()``: the end)."""

    def __init__(self, message: str, server: ServeProcess) -> None:
        super().__init__(message)
        self.server = server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports() -> dict[str, int]:
    """A free port for each of serve's listeners: ``api``, ``aws``, ``mqtt`` and ``mqtts`` (mTLS)."""
    return {"api": free_port(), "aws": free_port(), "mqtt": free_port(), "mqtts": free_port()}


def serve_command(ports: dict[str, int], *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fleetwave.cli",
        "serve",
        "--port",
        str(ports["api"]),
        "--aws-port",
        str(ports["aws"]),
        "--mqtt-port",
        str(ports["mqtt"]),
        *(["--mqtts-port", str(ports["mqtts"])] if "mqtts" in ports else ["--no-mtls"]),
        *extra,
    ]


@dataclass
class ServeProcess:
    """A running (or finished) `fleetwave serve`; with merged output, ``stderr_path`` is ``stdout_path``."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    stdout_path: Path
    stderr_path: Path
    time_scale: str
    ready_line: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    killed: bool = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}/"

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['aws']}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.ports['mqtt']}"

    @property
    def mqtts_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.ports['mqtts']}"

    @property
    def log_path(self) -> Path:
        return self.stdout_path

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def output(self) -> str:
        if self.stderr_path == self.stdout_path:
            return self.stdout()
        return f"--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}"

    def tail(self, lines: int = 10) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def aws_client(self, service: str, **kwargs: Any) -> Any:
        """boto3 on the embedded AWS endpoint (where users upload bundles to S3)."""
        import boto3  # not needed to start or stop serve

        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name="us-east-1",
            aws_access_key_id=LOCAL_CREDENTIAL,
            aws_secret_access_key=LOCAL_CREDENTIAL,
            **kwargs,
        )

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> str:
        """The ready line, once serve printed it; ServeError when it exited or stayed silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stdout().splitlines():
                if line.startswith(READY_PREFIX):
                    self.ready_line = line
                    return line
            if self.process.poll() is not None:
                raise ServeError(
                    f"fleetwave serve exited with {self.process.returncode}\n{self.output()}", self
                )
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        raise ServeError(f"fleetwave serve printed no ready line in {timeout:g} s\n{self.output()}", self)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """Signal serve and return its exit code; kill it (``killed``) if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.killed = True
        return int(self.process.returncode)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def start_serve(
    *extra: str,
    ports: dict[str, int] | None = None,
    time_scale: str = "1",
    env: dict[str, str] | None = None,
    wait: bool = True,
    start_timeout: float = START_TIMEOUT_SECONDS,
    merge_output: bool = False,
    attempts: int = 1,
    workdir_prefix: str = "fleetwave-serve-",
) -> ServeProcess:
    """Start `fleetwave serve` (and by default wait for its ready line).

    Without ``ports`` it takes free ones, and tries again (up to ``attempts``) when one was taken between
    choosing and binding it. The local key pair defaults to ``testing`` / ``testing`` unless the environment
    (or ``env``) says otherwise. ServeError when it does not start.
    """
    workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix))
    # A stack of its own has a local CA of its own (not the user's ~/.fleetwave/serve/identity).
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "FLEETWAVE_IDENTITY_DIR": str(workdir / "identity")}
    child_env.setdefault("FLEETWAVE_LOCAL_ACCESS_KEY_ID", LOCAL_CREDENTIAL)
    child_env.setdefault("FLEETWAVE_LOCAL_SECRET_ACCESS_KEY", LOCAL_CREDENTIAL)
    child_env.update(env or {})
    for attempt in range(1, attempts + 1):
        suffix = "" if attempt == 1 else f"-{attempt}"
        stdout_path = workdir / (f"serve{suffix}.log" if merge_output else f"stdout{suffix}.log")
        stderr_path = stdout_path if merge_output else workdir / f"stderr{suffix}.log"
        chosen = ports or free_ports()
        command = serve_command(chosen, "--time-scale", time_scale, *extra)
        with stdout_path.open("wb") as out:
            if merge_output:
                process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=child_env)
            else:
                with stderr_path.open("wb") as err:
                    process = subprocess.Popen(command, stdout=out, stderr=err, env=child_env)
        server = ServeProcess(
            process, chosen, stdout_path, stderr_path, time_scale, extra_env=dict(env or {})
        )
        if not wait:
            return server
        try:
            server.wait_ready(start_timeout)
        except ServeError:
            if ports is not None or attempt == attempts or PORT_TAKEN not in server.output():
                raise
            continue
        return server
    raise AssertionError("unreachable")  # pragma: no cover
