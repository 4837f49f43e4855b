"""The agent's identity configuration: agent.json (`fleetwave robot provision`), thing names, the unit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleetwave_service.core.ids import iot_name

from fleetwave.agent.config import (
    AgentConfig,
    ConfigFileError,
    read_config_file,
    thing_name_of,
    write_identity,
)


@pytest.mark.parametrize("length", [1, 127, 128, 129, 200, 255])
def test_the_agent_derives_the_same_thing_name_as_the_service(length: int) -> None:
    name = ("robot-" * 60)[:length]
    assert thing_name_of(name) == iot_name(name)


def test_an_identity_directory_is_written_with_a_private_key_and_read_back_with_absolute_paths(
    tmp_path: Path,
) -> None:
    config = {"robot": "r1", "thingName": "r1", "mqttUrl": "mqtts://h:8883", "caFile": "ca.pem",
              "certFile": "certificate.pem", "keyFile": "private.key", "region": "us-east-1"}  # fmt: skip
    directory = write_identity(tmp_path / "r1", config, "CERT", "KEY", "CA")
    assert (directory / "private.key").stat().st_mode & 0o777 == 0o600
    assert directory.stat().st_mode & 0o777 == 0o700
    values = read_config_file(directory / "agent.json")
    assert values == {
        "robot": "r1",
        "thing_name": "r1",
        "mqtt_url": "mqtts://h:8883",
        "ca_file": str(directory / "ca.pem"),
        "cert_file": str(directory / "certificate.pem"),
        "key_file": str(directory / "private.key"),
    }
    # Written again (rotation): replaced whole, no leftovers beside it
    write_identity(tmp_path / "r1", config, "CERT2", "KEY2", "CA")
    assert (directory / "certificate.pem").read_text() == "CERT2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "not JSON"), ("[]", "must be a JSON object"), ('{"robot": 7}', "robot must be")],
)
def test_an_unusable_config_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "agent.json"
    path.write_text(content)
    with pytest.raises(ConfigFileError, match=message):
        read_config_file(path)
    with pytest.raises(ConfigFileError, match="No such file"):
        read_config_file(tmp_path / "missing.json")


def test_the_unit_of_a_provisioned_robot_runs_it_with_its_config_file() -> None:
    config = AgentConfig(
        robot="r1", thing_name="r1", mqtt_url="mqtts://h:8883", config_file="/etc/r1/agent.json"
    )
    argv = config.to_argv()
    assert argv[:2] == ["--config", "/etc/r1/agent.json"]
    assert "--robot" not in argv and "--mqtt-url" not in argv


def test_a_thing_name_that_cannot_be_one_is_refused() -> None:
    assert AgentConfig(robot="r1", thing_name="x" * 129).problems()
    assert not AgentConfig(robot="r" * 255).problems()
    assert AgentConfig(robot="r" * 255).thing == iot_name("r" * 255)
    assert json.dumps(AgentConfig(robot="r1").to_argv()) == '["--robot", "r1"]'
