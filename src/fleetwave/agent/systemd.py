"""The systemd unit that runs the agent on a robot (``fleetwave agent install-service``).

- ``Restart=always`` with no start limit: the agent comes back after any exit, crash or OOM kill.
- ``After=``/``Wants=network-online.target``: started once the network is configured (the agent still
  waits for the broker itself, forever).
- The work directory is ``/var/lib/fleetwave/<robot>`` (``StateDirectory=``: systemd creates it, owned by
  ``User=``, and keeps it across upgrades).
- ``KillMode=mixed``: ``systemctl stop`` sends SIGTERM to the agent only, which stops the application
  gracefully (SIGTERM to its process group, SIGKILL after 10 s) and exits; whatever is left after
  ``TimeoutStopSec`` is killed. If the agent itself dies, systemd kills the rest of the unit before the
  restart, and the new agent relaunches the application from disk.
- Logs go to the journal (``journalctl -u fleetwave-agent``); each application's output is in its
  deployment directory.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from fleetwave.agent.config import AgentConfig

DEFAULT_UNIT_NAME = "fleetwave-agent"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
STATE_ROOT = Path("/var/lib/fleetwave")

_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./{}-]+$")


def quote(argument: str) -> str:
    """One ExecStart argument, quoted for systemd (its own rules: %-specifiers and $-variables expand)."""
    escaped = argument.replace("%", "%%").replace("$", "$$")
    if _PLAIN.match(escaped) and "%%" not in escaped:
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def service_config(config: AgentConfig) -> AgentConfig:
    """The configuration the service runs with: the work directory under /var/lib unless one was given."""
    if config.work_dir is None:
        config.work_dir = STATE_ROOT / config.robot
    return config


def render_unit(
    config: AgentConfig,
    *,
    python: str = sys.executable,
    user: str | None = None,
    description: str | None = None,
) -> str:
    config = service_config(config)
    exec_start = " ".join(quote(part) for part in [python, "-m", "fleetwave.cli", "agent", *config.to_argv()])
    assert config.work_dir is not None
    lines = [
        "# Written by `fleetwave agent install-service` (docs/robot-agent.md in the Fleetwave repository).",
        "[Unit]",
        f"Description={description or f'Fleetwave robot agent ({config.robot})'}",
        "Wants=network-online.target",
        "After=network-online.target",
        # Never stop restarting: a robot without its agent is a robot nobody can deploy to.
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_start}",
        "Restart=always",
        "RestartSec=5",
        "KillMode=mixed",
        "TimeoutStopSec=30",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    try:
        relative = config.work_dir.relative_to(Path("/var/lib"))
    except ValueError:
        relative = None
    if relative is not None:
        lines.append(f"StateDirectory={relative}")
        lines.append("StateDirectoryMode=0750")
    if user:
        lines.append(f"User={user}")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def enable_instructions(unit_path: Path, unit_name: str) -> str:
    return (
        f"wrote {unit_path}\n"
        "enable and start it with:\n"
        "  sudo systemctl daemon-reload\n"
        f"  sudo systemctl enable --now {unit_name}\n"
        f"follow its log with: journalctl -u {unit_name} -f\n"
    )
