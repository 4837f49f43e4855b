"""`fleetwave serve` mode: moto as a real HTTP server in this process, the engine wired by its runtime hook.

Differs from the other machine tests in what matters to serve: Step Functions reaches Lambda over HTTP
(moto's interpreter uses http://localhost:$MOTO_PORT), handlers reach AWS through AWS_ENDPOINT_URL, and the
state machine ARN reaches the API through FLEETWAVE_STATE_MACHINE_ARN set by the hook.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from fakes.channel import FakeRobotChannel
from fleetwave_service.core.keys import job_key
from fleetwave_service.core.settings import reset_settings
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports
from support.rollout_harness import RolloutDriver, SimulatedRobots

from fleetwave.local.aws import MotoAws
from fleetwave.local.stepfunctions import create_component

TABLE = "fleetwave-server-mode"
ACCOUNT = "123456789012"


class _Runtime:
    """What the engine hook uses of fleetwave.local.runtime.LocalRuntime."""

    def __init__(self, aws: MotoAws, monkeypatch: pytest.MonkeyPatch) -> None:
        self.aws = aws
        self.aws_url = aws.url
        self._monkeypatch = monkeypatch

    def set_environment(self, updates):
        for key, value in updates.items():
            self._monkeypatch.setenv(key, value)
        reset_settings()


@pytest.fixture
def served(monkeypatch):
    aws = MotoAws("127.0.0.1", 0, "us-east-1", TABLE, TABLE + "-idempotency", "fleetwave-bundles")
    aws.start()
    env = {
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FLEETWAVE_TABLE_NAME": TABLE,
        "FLEETWAVE_ACCOUNT_ID": ACCOUNT,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    reset_settings()
    engine = create_component(_Runtime(aws, monkeypatch))
    engine.start()
    channel = FakeRobotChannel()
    robots = SimulatedRobots(channel)
    use_ports(channel=channel)
    try:
        yield aws, engine, robots
    finally:
        engine.stop()
        reset_ports()
        aws.stop()
        reset_settings()


def _given_rows(job_id: str, robots: list[str]) -> None:
    """Rows as the API writes them (docs/storage.md)."""
    now = time.time()
    store = get_ports().store
    fleet_arn = f"arn:aws:robomaker:us-east-1:{ACCOUNT}:deployment-fleet/warehouse/1"
    app_arn = f"arn:aws:robomaker:us-east-1:{ACCOUNT}:robot-application/nav/1"
    rows = [
        (
            {"pk": "FLEET#warehouse", "sk": "FLEET"},
            {"name": "warehouse", "arn": fleet_arn, "activeJobId": job_id},
        ),
        (
            {"pk": "APP#nav", "sk": "VERSION#0000000001"},
            {
                "name": "nav",
                "arn": app_arn,
                "version": "1",
                "sources": [{"s3Bucket": "fleetwave-bundles", "s3Key": "nav.tgz", "architecture": "X86_64"}],
            },
        ),
        (
            job_key(job_id),
            {
                "id": job_id,
                "arn": f"arn:aws:robomaker:us-east-1:{ACCOUNT}:deployment-job/{job_id}",
                "fleet": fleet_arn,
                "fleetName": "warehouse",
                "status": "Pending",
                "createdAt": now,
                "expiresAt": int(now) + 86400,
                "deploymentConfig": {"concurrentDeploymentPercentage": 50},
                "deploymentApplicationConfigs": [
                    {
                        "application": app_arn,
                        "applicationVersion": "1",
                        "launchConfig": {"packageName": "nav", "launchFile": "nav.launch"},
                    }
                ],
            },
        ),
    ]
    for name in robots:
        rows.append(
            (
                {"pk": f"ROBOT#{name}", "sk": "ROBOT"},
                {
                    "name": name,
                    "arn": f"arn:aws:robomaker:us-east-1:{ACCOUNT}:robot/{name}/1",
                    "architecture": "X86_64",
                    "status": "Registered",
                    "fleetName": "warehouse",
                    "fleetArn": fleet_arn,
                    "gsi2pk": "FLEETROBOTS#warehouse",
                    "gsi2sk": name,
                },
            )
        )
    store.put_rows(rows)


def test_rollout_server_mode_runs_the_machine_through_the_http_endpoint(served):
    aws, engine, robots = served
    # Given the engine hook deployed the machine and published its ARN to the environment
    assert os.environ["FLEETWAVE_STATE_MACHINE_ARN"] == engine.state_machine_arn
    assert os.environ["MOTO_PORT"] == str(aws.port)
    job_id = "deployment-servermode001"
    _given_rows(job_id, ["r1", "r2"])

    # When an execution starts as the API starts it (name = job id) and robots answer
    sfn = aws.client("stepfunctions")
    sfn.start_execution(
        stateMachineArn=engine.state_machine_arn, name=job_id, input=json.dumps({"jobId": job_id})
    )
    driver = RolloutDriver(
        api=None, given=None, robots=robots, stepfunctions=sfn, machine_arn=engine.state_machine_arn
    )
    job = {"arn": f"arn:aws:robomaker:us-east-1:{ACCOUNT}:deployment-job/{job_id}"}
    driver.pump_until(lambda: driver.status(job) != "RUNNING", "rollout to end")

    # Then the job succeeded in two waves, and the bundle URL points at the embedded endpoint
    assert driver.status(job) == "SUCCEEDED"
    row = get_ports().store.get_job(job_id)
    assert row["status"] == "Succeeded"
    assert row["waveCount"] == 2
    assert robots.commanded() == ["r1", "r2"]
    assert robots.channel.deployments_for("r1")[-1].bundle.url.startswith(aws.url)
