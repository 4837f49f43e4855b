"""`fleetwave agent install-service`: a systemd unit a robot can enable as it is."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from fleetwave.agent.config import AgentConfig
from fleetwave.agent.systemd import quote, render_unit


def _install(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", "agent", "install-service", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_install_service_writes_a_unit_that_restarts_always_after_the_network(tmp_path):
    result = _install(
        tmp_path,
        "--robot", "robot-7", "--mqtt-url", "mqtts://example-ats.iot.eu-west-1.amazonaws.com:8883",
        "--launch-command", "roslaunch {package} {launch_file}", "--health-window", "30",
        "--unit-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    unit = (tmp_path / "fleetwave-agent.service").read_text()
    assert "Restart=always" in unit
    assert "After=network-online.target" in unit and "Wants=network-online.target" in unit
    assert "StateDirectory=fleetwave/robot-7" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.startswith(f"ExecStart={sys.executable} -m fleetwave.cli agent --robot robot-7 ")
    assert "--work-dir /var/lib/fleetwave/robot-7" in exec_start
    assert '--launch-command "roslaunch {package} {launch_file}"' in exec_start
    assert "--health-window 30" in exec_start
    # And it says how to turn it on
    assert "systemctl enable --now fleetwave-agent" in result.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_install_service_unit_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / "fleetwave-agent.service"
    unit.write_text(
        render_unit(AgentConfig(robot="robot-7", launch_command="roslaunch {package} 50%"), user=None)
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fleetwave-agent.service" not in result.stderr, result.stderr  # no warning about the unit


def test_install_service_refuses_a_bad_robot_name_or_a_missing_certificate(tmp_path):
    result = _install(tmp_path, "--robot", "robot/7", "--unit-dir", str(tmp_path))
    assert result.returncode == 2 and "it names MQTT topics" in result.stderr
    result = _install(
        tmp_path,
        "--robot",
        "r",
        "--cert-file",
        str(tmp_path / "no.pem"),
        "--key-file",
        str(tmp_path / "no.key"),
    )
    assert result.returncode == 2 and "no such file" in result.stderr
    assert not list(tmp_path.glob("*.service"))


def test_systemd_quoting_keeps_specifiers_and_variables_literal():
    assert quote("--robot") == "--robot"
    assert quote("roslaunch {package} {launch_file}") == '"roslaunch {package} {launch_file}"'
    assert quote("100%") == '"100%%"'
    assert quote("$HOME") == '"$$HOME"'
    assert quote('say "hi"') == '"say \\"hi\\""'
