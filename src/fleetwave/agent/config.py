"""What one robot agent runs with: `AgentConfig`, built from the command line (``fleetwave agent``).

One dataclass for every setting, so that the systemd unit (`systemd.render_unit`) writes back exactly the
command line that produces it, and so that a configuration file (robot identity: endpoint, certificate
paths) can fill the same fields later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
# Robot names as the API accepts them: they become MQTT topic levels, so nothing else may pass.
ROBOT_NAME = re.compile(r"^[a-zA-Z0-9_\-]{1,255}$")


def default_work_dir(robot: str) -> Path:
    return Path.home() / ".fleetwave" / "agent" / robot


@dataclass
class AgentConfig:
    robot: str
    mqtt_url: str = DEFAULT_MQTT_URL
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
    def home(self) -> Path:
        return self.work_dir or default_work_dir(self.robot)

    def problems(self) -> list[str]:
        """Why this configuration cannot run (empty when it can)."""
        found = []
        if not ROBOT_NAME.match(self.robot):
            found.append(f"--robot {self.robot!r}: 1-255 letters, digits, '-' or '_' (it names MQTT topics)")
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
            value = getattr(self, item.name)
            if item.name != "robot" and value == getattr(defaults, item.name):
                continue
            argv += [
                f"--{item.name.replace('_', '-')}",
                f"{value:g}" if isinstance(value, float) else str(value),
            ]
        return argv + list(self.extra_args)
