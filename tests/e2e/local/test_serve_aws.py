"""`fleetwave serve`'s embedded AWS endpoint: moto configured for the rollout engine, tables provisioned."""

from __future__ import annotations

import urllib3


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
