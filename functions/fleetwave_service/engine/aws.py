"""The engine's AWS side effects other than DynamoDB: task tokens, events, presigned bundle URLs.

Each is a small adapter behind a protocol in engine/ports.py, with an in-memory fake in
tests/fakes/rollout.py.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import ClientError

logger = Logger(service="fleetwave-rollout", child=True)

# SendTask* errors that mean "this token is finished": the wave already timed out, was failed by cancel, or
# belongs to an execution that ended. Nothing to retry.
_STALE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class StepFunctionsTaskTokens:
    """SendTaskSuccess / SendTaskFailure for the wave tokens."""

    def __init__(self, region: str, client: Any | None = None) -> None:
        self._client = client or boto3.client(
            "stepfunctions", region_name=region, config=Config(retries={"mode": "standard"})
        )

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        try:
            self._client.send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as error:
            return self._stale(error, "success")
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        try:
            self._client.send_task_failure(taskToken=token, error=error, cause=cause[:32768])
        except ClientError as client_error:
            return self._stale(client_error, "failure")
        return True

    @staticmethod
    def _stale(error: ClientError, outcome: str) -> bool:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _STALE_TOKEN_ERRORS:
            logger.info("wave token already finished", extra={"outcome": outcome, "error": code})
            return False
        raise error


class EventBridgeEvents:
    """Job status changes for subscribers, on the configured bus."""

    SOURCE = "fleetwave"

    def __init__(self, region: str, bus_name: str, client: Any | None = None) -> None:
        self._client = client or boto3.client("events", region_name=region)
        self._bus_name = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
        response = self._client.put_events(
            Entries=[
                {
                    "Source": self.SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "Resources": resources,
                    "EventBusName": self._bus_name,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            # Subscribers are told best effort; the job row is the record. Never fail a rollout over it.
            logger.warning("event not delivered", extra={"detailType": detail_type, "response": response})


class S3BundleSigner:
    """Short-lived presigned GET URLs: robots download their bundle without AWS credentials."""

    def __init__(self, region: str, ttl_seconds: int, client: Any | None = None) -> None:
        self._client = client or boto3.client("s3", region_name=region)
        self._ttl = ttl_seconds

    def presign(self, bucket: str, key: str) -> str:
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self._ttl
        )
