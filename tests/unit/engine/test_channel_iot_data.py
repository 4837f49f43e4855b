"""IotDataChannel (the AWS dispatch path) against moto's IoT data plane."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from fleetwave_service.core.settings import Settings
from fleetwave_service.engine.channels import ChannelError, get_channel, reset_channel
from fleetwave_service.engine.channels.iot_data import IotDataChannel
from fleetwave_service.engine.messages import DeploymentCommand, LaunchConfig, parse_command
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

REGION = "us-east-1"
ENDPOINT = f"https://data-ats.iot.{REGION}.amazonaws.com"


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def command(attempt: int = 1, **extra) -> DeploymentCommand:
    return DeploymentCommand(
        jobId="deployment-aaaaaaaaaaaa",
        attempt=attempt,
        timeoutSeconds=300,
        deadline=2e9,
        issuedAt=1e9,
        **extra,
    )


class WireRecorder:
    """Keeps the URL of every Publish request the client really sends (botocore's own event hook)."""

    def __init__(self, client) -> None:
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        client.meta.events.register("before-send.iot-data.Publish", self._record)

    def _record(self, request, **_):
        parts = urlsplit(request.url)
        self.requests.append((unquote(parts.path), parse_qs(parts.query)))


def published() -> list[tuple[str, bytes]]:
    return iotdata_backends[DEFAULT_ACCOUNT_ID][REGION].published_payloads


def test_iot_data_channel_publishes_retained_qos1_on_the_robot_command_topic(aws):
    client = boto3.client("iot-data", endpoint_url=ENDPOINT, region_name=REGION)
    wire = WireRecorder(client)
    channel = IotDataChannel(client=client)
    channel.publish_command("robot-1", command())
    path, query = wire.requests[0]
    assert path == "/topics/fleetwave/robots/robot-1/deployment"
    assert query["qos"] == ["1"] and query["retain"] == ["true"]
    topic, payload = published()[0]
    assert topic == "fleetwave/robots/robot-1/deployment"
    assert parse_command(payload) == command()


def test_iot_data_channel_publishes_a_wave_from_a_thread_pool(aws):
    channel = IotDataChannel(endpoint_url=ENDPOINT, region=REGION, workers=8)
    failures = channel.publish_commands([(f"robot-{i}", command()) for i in range(40)])
    assert failures == []
    assert sorted(topic for topic, _ in published()) == sorted(
        f"fleetwave/robots/robot-{i}/deployment" for i in range(40)
    )


def test_iot_data_channel_refuses_a_command_over_the_iot_message_limit(aws):
    channel = IotDataChannel(endpoint_url=ENDPOINT, region=REGION)
    huge = command(
        launchConfig=LaunchConfig(
            packageName="p", launchFile="l", environmentVariables={f"K{i}": "x" * 1024 for i in range(130)}
        )
    )
    with pytest.raises(ChannelError, match="128 KB"):
        channel.publish_command("robot-1", huge)
    failures = channel.publish_commands([("robot-1", huge), ("robot-2", command())])
    assert [f.robot_name for f in failures] == ["robot-1"]
    assert [topic for topic, _ in published()] == ["fleetwave/robots/robot-2/deployment"]


def test_iot_data_channel_clear_command_publishes_an_empty_retained_message(aws):
    client = boto3.client("iot-data", endpoint_url=ENDPOINT, region_name=REGION)
    wire = WireRecorder(client)
    IotDataChannel(client=client).clear_command("robot-1")
    assert wire.requests[0][1]["retain"] == ["true"]
    assert published() == [("fleetwave/robots/robot-1/deployment", b"")]


def test_iot_data_channel_without_endpoint_uses_the_account_ats_endpoint(aws):
    channel = IotDataChannel(region=REGION)
    endpoint = channel._client.meta.endpoint_url
    assert endpoint.startswith("https://") and "-ats.iot." in endpoint


def test_get_channel_chooses_the_adapter_from_settings(aws):
    reset_channel()
    try:
        assert isinstance(get_channel(Settings(channel="iot", iot_data_endpoint=ENDPOINT)), IotDataChannel)
        with pytest.raises(ValueError, match="unknown channel 'carrier-pigeon'"):
            get_channel(Settings(channel="carrier-pigeon"))
    finally:
        reset_channel()
