"""The status handler: SQS batches of robot reports, partial batch failures, redelivery.

Rows are written through the engine's store under moto; Step Functions is the FakeTaskTokens port.
"""

from __future__ import annotations

import json
import time

import pytest
from fakes.rollout import FakeTaskTokens
from fleetwave_service.core.keys import job_key, robot_deployment_key, wave_key
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports
from fleetwave_service.handlers import status_handler as lambda_handler

from fleetwave.local.lambda_adapter import LocalLambdaContext

JOB = "deployment-abcdefabcdef"
CONTEXT = LocalLambdaContext(
    function_name="status", invoked_function_arn="arn:aws:lambda:us-east-1:1:function:s"
)


@pytest.fixture
def wave(aws):
    """One job InProgress whose wave 1 (robot r1) is deploying and waiting on token "token-1"."""
    tokens = FakeTaskTokens()
    use_ports(tokens=tokens, channel=object())
    now = time.time()
    expires = int(now) + 86400
    get_ports().store.put_rows(
        [
            (
                job_key(JOB),
                {
                    "id": JOB,
                    "arn": f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}",
                    "fleet": "arn:fleet",
                    "fleetName": "warehouse",
                    "status": "InProgress",
                    "createdAt": now,
                    "expiresAt": expires,
                    "targetCount": 1,
                    "currentWave": 1,
                    "waveToken": "token-1",
                    "deploymentConfig": {},
                    "failedCount": 0,
                    "noResponseCount": 0,
                },
            ),
            (
                wave_key(JOB, 1),
                {
                    "wave": 1,
                    "size": 1,
                    "succeededCount": 0,
                    "failedCount": 0,
                    "noResponseCount": 0,
                    "expiresAt": expires,
                },
            ),
            (
                robot_deployment_key(JOB, "r1"),
                {
                    "robotName": "r1",
                    "arn": "arn:robot/r1/1",
                    "wave": 1,
                    "status": "Deploying",
                    "attempt": 1,
                    "seq": -1,
                    "deadline": now + 600,
                    "expiresAt": expires,
                },
            ),
        ]
    )
    yield tokens
    reset_ports()


def _record(body, message_id="m-1"):
    return {
        "messageId": message_id,
        "receiptHandle": "h",
        "body": body,
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:status",
        "awsRegion": "us-east-1",
    }


def _final(robot="r1", **overrides):
    body = {
        "jobId": JOB,
        "attempt": 1,
        "seq": 6,
        "step": "Finished",
        "status": "InSync",
        "percentDone": 100,
        "sentAt": time.time(),
        "robotName": robot,
        **overrides,
    }
    return json.dumps(body)


def test_status_handler_drops_records_that_can_never_apply(wave):
    # Given records that are not JSON, have no robot name, or are not status reports
    event = {
        "Records": [
            _record("not json", "a"),
            _record(json.dumps({"jobId": JOB}), "b"),
            _record(json.dumps({"robotName": "r1", "jobId": JOB}), "c"),
            _record(json.dumps({"robotName": "../etc", "jobId": JOB}), "d"),
        ]
    }

    # When the batch is handled
    response = lambda_handler(event, CONTEXT)

    # Then no record is retried and nothing changed
    assert response == {"batchItemFailures": []}
    assert get_ports().store.get_robot_deployment(JOB, "r1")["status"] == "Deploying"
    assert wave.calls == []


def test_status_handler_final_report_ends_the_wave_wait_once(wave):
    # When the robot's final report arrives, then again
    assert lambda_handler({"Records": [_record(_final())]}, CONTEXT) == {"batchItemFailures": []}
    assert lambda_handler({"Records": [_record(_final(), "m-2")]}, CONTEXT) == {"batchItemFailures": []}

    # Then the robot is InSync and SendTaskSuccess was sent exactly once, for wave 1
    assert get_ports().store.get_robot_deployment(JOB, "r1")["status"] == "InSync"
    assert [(c.token, c.outcome, c.output["wave"]) for c in wave.calls] == [("token-1", "success", 1)]


def test_status_handler_transient_error_is_a_partial_failure_and_redelivery_completes_the_wave(wave):
    # Given Step Functions is unreachable
    wave.failing = ConnectionError("stepfunctions unreachable")

    # When the final report arrives with another, unrelated record in the batch
    event = {"Records": [_record(_final(), "final"), _record("not json", "junk")]}
    response = lambda_handler(event, CONTEXT)

    # Then only the final report is handed back to SQS for redelivery
    assert response == {"batchItemFailures": [{"itemIdentifier": "final"}]}
    assert wave.calls == []

    # When SQS redelivers it and Step Functions is back
    wave.failing = None
    assert lambda_handler({"Records": [_record(_final(), "final")]}, CONTEXT) == {"batchItemFailures": []}

    # Then the wave's wait ended, once
    assert [(c.token, c.outcome) for c in wave.calls] == [("token-1", "success")]
    assert get_ports().store.get_robot_deployment(JOB, "r1")["status"] == "InSync"
