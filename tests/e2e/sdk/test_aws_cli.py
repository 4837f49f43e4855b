"""The real AWS CLI against `fleetwave serve` after `fleetwave sdk install-models` (issue 13, item 1).

AWS CLI v1 comes from PyPI into a venv of its own (it pins its own botocore, which knows neither RoboMaker
nor Fleetwave's signing), kept inside .venv so a second run reuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

AWSCLI_VERSION = "1.46.3"
REPO_ROOT = Path(__file__).resolve().parents[3]
AWSCLI_VENV = REPO_ROOT / ".venv" / f"awscli-{AWSCLI_VERSION}"
INSTALL_TIMEOUT_SECONDS = 600
COMMAND_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="session")
def aws_cli() -> Path:
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True, timeout=120)
        subprocess.run(
            [str(AWSCLI_VENV / "bin" / "pip"), "install", "--quiet", f"awscli=={AWSCLI_VERSION}"],
            check=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
            capture_output=True,
        )
    return aws


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "FLEETWAVE_")) and key != "HOME"
    }
    return {
        **env,
        "HOME": str(home),  # so ~/.aws/models is this test's
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        **extra,
    }


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT_SECONDS)


def _fleetwave(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "fleetwave.cli", *args], env)


def test_aws_cli_knows_neither_api_before_install(aws_cli: Path, serve: Any, tmp_path: Path) -> None:
    env = _env(tmp_path)
    # Given a stock AWS CLI: robomaker is unknown, greengrassv2 signs for greengrass (API Gateway says no)
    unknown = _run([str(aws_cli), "robomaker", "list-fleets", "--endpoint-url", serve.api_url], env)
    refused = _run([str(aws_cli), "greengrassv2", "list-deployments", "--endpoint-url", serve.api_url], env)
    assert unknown.returncode != 0 and "Invalid choice" in unknown.stderr
    assert refused.returncode != 0 and "InvalidSignatureException" in refused.stderr


def test_aws_cli_calls_both_apis_after_install_models(aws_cli: Path, serve: Any, tmp_path: Path) -> None:
    env = _env(tmp_path)
    # When the models are installed (into ~/.aws/models, where `aws configure add-model` writes)
    installed = _fleetwave("sdk", "install-models", env=env)
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / ".aws" / "models" / "robomaker" / "2018-06-29" / "service-2.json").is_file()
    name = f"cli-fleet-{uuid.uuid4().hex[:8]}"
    aws = [str(aws_cli), "--output", "json"]
    endpoint = ["--endpoint-url", serve.api_url]
    # Then `aws robomaker` creates, lists (paginating) and describes fleets on Fleetwave
    created = _run([*aws, "robomaker", "create-fleet", "--name", name, *endpoint], env)
    assert created.returncode == 0, created.stderr
    fleet = json.loads(created.stdout)
    listed = _run([*aws, "robomaker", "list-fleets", "--page-size", "1", *endpoint], env)
    assert listed.returncode == 0, listed.stderr
    assert name in [item["name"] for item in json.loads(listed.stdout)["fleetDetails"]]
    # And errors are the API's, by name
    missing = _run([*aws, "robomaker", "describe-fleet", "--fleet", fleet["arn"] + "0", *endpoint], env)
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr and "does not exist" in missing.stderr
    # And `aws greengrassv2` signs for execute-api now
    deployments = _run([*aws, "greengrassv2", "list-deployments", *endpoint], env)
    assert deployments.returncode == 0, deployments.stderr
    assert "deployments" in json.loads(deployments.stdout)
    # And remove-models gives the CLI back its own Greengrass model
    assert _fleetwave("sdk", "remove-models", env=env).returncode == 0
    after = _run([*aws, "greengrassv2", "list-deployments", *endpoint], env)
    assert "InvalidSignatureException" in after.stderr


def test_aws_cli_models_dir_follows_aws_data_path(aws_cli: Path, serve: Any, tmp_path: Path) -> None:
    # Given AWS_DATA_PATH pointing elsewhere
    models = tmp_path / "models"
    env = _env(tmp_path, AWS_DATA_PATH=str(models))
    # When install-models runs without --models-dir, Then it writes there and the CLI reads it from there
    assert _fleetwave("sdk", "install-models", "--service", "robomaker", env=env).returncode == 0
    assert (models / "robomaker" / "2018-06-29" / "paginators-1.json").is_file()
    assert not (tmp_path / ".aws").exists()
    listed = _run([str(aws_cli), "robomaker", "list-robots", "--endpoint-url", serve.api_url], env)
    assert listed.returncode == 0, listed.stderr
