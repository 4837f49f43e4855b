"""What one robot agent runs with: `AgentConfig`, built from the command line (``fleetwave agent``).

One dataclass for every setting, so that the systemd unit (`systemd.render_unit`) writes back exactly the
command line that produces it, and so that a configuration file (robot identity: endpoint, certificate
paths) can fill the same fields later.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
# Robot names as the API accepts them: they become MQTT topic levels, so nothing else may pass.
ROBOT_NAME = re.compile(r"^[a-zA-Z0-9_\-]{1,255}$")


# IoT Core's limit on thing names and client ids; a longer robot name has a derived thing name.
THING_NAME_MAX = 128
_THING_KEPT, _THING_HASH = 111, 16


def default_work_dir(robot: str) -> Path:
    return Path.home() / ".fleetwave" / "agent" / robot


def thing_name_of(robot: str) -> str:
    """The robot's IoT thing name: the name itself up to 128 characters, else its first 111 characters,
    "-" and 16 hex characters of its SHA-256 (the service's ``core/ids.py:iot_name``, which a test keeps
    equal: the agent does not import the service)."""
    if len(robot) <= THING_NAME_MAX:
        return robot
    return f"{robot[:_THING_KEPT]}-{hashlib.sha256(robot.encode('utf-8')).hexdigest()[:_THING_HASH]}"


# agent.json (written by `fleetwave robot provision`) -> AgentConfig fields; paths are relative to the file.
CONFIG_FILE_KEYS = {
    "robot": "robot",
    "thingName": "thing_name",
    "mqttUrl": "mqtt_url",
    "caFile": "ca_file",
    "certFile": "cert_file",
    "keyFile": "key_file",
}
_PATH_FIELDS = ("ca_file", "cert_file", "key_file")


# A robot's identity directory (`fleetwave robot provision`, or the agent's --claim): these four files.
CONFIG_NAME, CERT_NAME, KEY_NAME, CA_NAME = "agent.json", "certificate.pem", "private.key", "ca.pem"


def write_identity(directory: Path, config: dict[str, Any], certificate: str, key: str, ca_pem: str) -> Path:
    """Write a robot's identity directory, all at once: a temporary directory beside it, renamed over it.
    The key is created 0600 (never readable by others, not even for an instant), the directory 0700."""
    directory = Path(directory).absolute()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        (staging / CERT_NAME).write_text(certificate)
        descriptor = os.open(staging / KEY_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key)
        (staging / CA_NAME).write_text(ca_pem)
        (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        os.chmod(staging, 0o700)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


class ConfigFileError(ValueError):
    """An agent configuration file that cannot be used; the message names the file and why."""


def read_config_file(path: Path) -> dict[str, Any]:
    """The AgentConfig fields an agent.json gives (unknown keys such as ``region`` or ``certificateId`` are
    kept by the file for people, not used); relative file paths resolved against the file's directory."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigFileError(f"--config {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ConfigFileError(f"--config {path}: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise ConfigFileError(f"--config {path}: must be a JSON object")
    values: dict[str, Any] = {}
    for key, name in CONFIG_FILE_KEYS.items():
        value = document.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise ConfigFileError(f"--config {path}: {key} must be a non-empty string")
        if name in _PATH_FIELDS:
            value = str((Path(path).parent / value).absolute())
        values[name] = value
    return values


@dataclass
class AgentConfig:
    robot: str
    mqtt_url: str = DEFAULT_MQTT_URL
    # The IoT thing name: client id and topic level (None: derived from the robot's name).
    thing_name: str | None = None
    # The agent.json the identity came from (its files are read again when they change: rotation).
    config_file: str | None = None
    work_dir: Path | None = None
    launch_command: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    health_window: float = 10.0
    restart_limit: int = 5
    restart_window: float = 600.0
    restart_delay: float = 1.0
    restart_max_delay: float = 60.0
    reconnect_max_delay: float = 30.0
    app_log_max_bytes: int = 10 * 1024 * 1024
    app_log_backups: int = 3
    time_scale: float = 1.0
    log_level: str = "INFO"
    simulate: str | None = None
    # Options that only the CLI knows how to spell (kept so the unit writes them back).
    extra_args: list[str] = field(default_factory=list)

    @property
    def thing(self) -> str:
        return self.thing_name or thing_name_of(self.robot)

    @property
    def home(self) -> Path:
        return self.work_dir or default_work_dir(self.robot)

    def problems(self) -> list[str]:
        """Why this configuration cannot run (empty when it can)."""
        found = []
        if not ROBOT_NAME.match(self.robot):
            found.append(f"--robot {self.robot!r}: 1-255 letters, digits, '-' or '_' (it names MQTT topics)")
        if self.thing_name is not None and not (
            ROBOT_NAME.match(self.thing_name) and len(self.thing_name) <= THING_NAME_MAX
        ):
            found.append(f"thing name {self.thing_name!r}: 1-128 letters, digits, '-' or '_'")
        if (self.cert_file is None) != (self.key_file is None):
            found.append("--cert-file and --key-file go together")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                found.append(f"--{name.replace('_', '-')} {path}: no such file")
        if self.health_window < 0:
            found.append("--health-window must be zero or more seconds")
        if self.restart_limit < 0:
            found.append("--restart-limit must be zero or more")
        for name in (
            "restart_window",
            "restart_delay",
            "restart_max_delay",
            "reconnect_max_delay",
            "time_scale",
        ):
            if not getattr(self, name) > 0:
                found.append(f"--{name.replace('_', '-')} must be greater than zero")
        return found

    def to_argv(self) -> list[str]:
        """The ``fleetwave agent`` options that give this configuration (defaults left out)."""
        argv: list[str] = []
        defaults = AgentConfig(robot=self.robot)
        for item in fields(self):
            if item.name in ("extra_args",):
                continue
            if self.config_file and item.name in (*CONFIG_FILE_KEYS.values(),):
                continue  # the file gives them
            value = getattr(self, item.name)
            if item.name != "robot" and value == getattr(defaults, item.name):
                continue
            argv += [
                "--config" if item.name == "config_file" else f"--{item.name.replace('_', '-')}",
                f"{value:g}" if isinstance(value, float) else str(value),
            ]
        return argv + list(self.extra_args)
