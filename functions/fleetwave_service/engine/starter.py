"""The port that starts a rollout: one Step Functions execution per deployment job, named after the job.

Naming the execution after the job id makes a retried start harmless: Step Functions refuses a second
execution of the same name, which is reported here as already started.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from fleetwave_service.core.settings import get_settings

logger = Logger(service="fleetwave", child=True)

_lock = threading.Lock()
_client: Any = None


def _stepfunctions() -> Any:
    global _client
    with _lock:
        if _client is None:
            _client = boto3.client("stepfunctions", region_name=get_settings().region)
        return _client


def reset() -> None:
    """Forget the client (tests and the local runtime call this after changing the environment)."""
    global _client
    with _lock:
        _client = None


def start_rollout(job_id: str) -> None:
    """Start the rollout of ``job_id``; raises when Step Functions cannot start it."""
    state_machine_arn = get_settings().state_machine_arn
    if not state_machine_arn:
        logger.info("no state machine configured; rollout not started", extra={"job_id": job_id})
        return
    try:
        _stepfunctions().start_execution(
            stateMachineArn=state_machine_arn, name=job_id, input=json.dumps({"jobId": job_id})
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        logger.info("rollout already started", extra={"job_id": job_id})
        return
    logger.info("rollout started", extra={"job_id": job_id})
