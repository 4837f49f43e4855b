"""`fleetwave serve`'s embedded AWS endpoint: moto configured for the rollout engine, tables provisioned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import urllib3
from fakes.robomaker import unique


def test_serve_provisions_the_tables_the_api_uses(serve):
    # Given the embedded AWS endpoint
    dynamodb = serve.aws_client("dynamodb")

    # When a user lists its tables
    tables = set(dynamodb.list_tables()["TableNames"])

    # Then the main table and the idempotency table exist, with TTL on the main one
    assert {"fleetwave", "fleetwave-idempotency"} <= tables
    ttl = dynamodb.describe_time_to_live(TableName="fleetwave")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")


def test_serve_runs_moto_lambda_without_docker(serve):
    # Given the embedded moto server
    # When its configuration is read back
    answer = urllib3.request("GET", f"{serve.aws_url}/moto-api/config", retries=False)

    # Then Lambda runs without docker (invokes are routed to the handlers in process)
    assert answer.status < 300
    assert answer.json()["lambda"] == {"use_docker": False}


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_serve_the_aws_cli_sees_what_the_api_wrote_and_the_api_sees_what_it_uploaded(api, serve, tmp_path):
    # Given a fleet created through the API (its handler writes DynamoDB in process, no HTTP)
    name = unique("cli-fleet")
    assert api.call("createFleet", {"name": name}).status == 200
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def aws(*words: str) -> str:
        done = subprocess.run(
            ["aws", "--endpoint-url", serve.aws_url, *words],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    # When the AWS CLI reads the fleet's row over HTTP, and uploads a bundle
    row = json.loads(
        aws(
            "dynamodb",
            "get-item",
            "--table-name",
            "fleetwave",
            "--key",
            json.dumps({"pk": {"S": f"FLEET#{name}"}, "sk": {"S": "FLEET"}}),
        )
    )
    bundle = tmp_path / "bundle.tar.gz"
    bundle.write_bytes(b"a bundle the CLI uploaded")
    aws("s3", "cp", str(bundle), f"s3://fleetwave-bundles/{name}/bundle.tar.gz")

    # Then the row is the fleet the API made, and the API (in process) read the CLI's bundle: the version it
    # makes records the bundle's ETag, which the CLI reads back from the version's row
    assert row["Item"]["name"] == {"S": name}
    application = api.call(
        "createRobotApplication",
        {
            "name": name,
            "sources": [
                {"s3Bucket": "fleetwave-bundles", "s3Key": f"{name}/bundle.tar.gz", "architecture": "X86_64"}
            ],
            "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"},
        },
    )
    assert application.status == 200, application.json
    version = api.call("createRobotApplicationVersion", {"application": application.json["arn"]})
    assert version.status == 200, version.json
    key = {"pk": {"S": f"APP#{name}"}, "sk": {"S": "VERSION#" + version.json["version"].zfill(10)}}
    stored = json.loads(aws("dynamodb", "get-item", "--table-name", "fleetwave", "--key", json.dumps(key)))
    uploaded = json.loads(
        aws("s3api", "head-object", "--bucket", "fleetwave-bundles", "--key", f"{name}/bundle.tar.gz")
    )
    etag = stored["Item"]["sources"]["L"][0]["M"]["etag"]["S"]
    assert etag == uploaded["ETag"].strip('"')
