"""The cancel hook: fails the waiting wave's token with DeploymentCanceled, once; never races completion."""

from __future__ import annotations

import time

import pytest
from fakes.rollout import FakeTaskTokens
from fleetwave_service.core.keys import job_key, wave_key
from fleetwave_service.engine.cancel import notify_rollout_canceled
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports
from fleetwave_service.engine.wave_end import complete_wave_if_done

JOB = "deployment-cancelcancel1"


@pytest.fixture
def tokens(aws):
    tokens = FakeTaskTokens()
    use_ports(tokens=tokens, channel=object())
    yield tokens
    reset_ports()


def _job(status="InProgress", token="token-7", done=0, size=2):
    now = time.time()
    row = {
        "id": JOB,
        "arn": f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}",
        "status": status,
        "fleetName": "warehouse",
        "createdAt": now,
        "expiresAt": int(now) + 3600,
        "currentWave": 1,
        "targetCount": size,
        "deploymentConfig": {},
    }
    if token:
        row["waveToken"] = token
    get_ports().store.put_rows(
        [
            (job_key(JOB), row),
            (wave_key(JOB, 1), {"size": size, "succeededCount": done, "expiresAt": int(now) + 3600}),
        ]
    )
    return row


def test_rollout_cancel_fails_the_waiting_wave_with_deployment_canceled_once(tokens):
    # Given a job (already marked Canceled by the API) whose wave 1 waits on a token
    job = _job(status="Canceled")

    # When the API calls the hook twice (a retried cancel)
    assert notify_rollout_canceled(job) is True
    assert notify_rollout_canceled(job) is False

    # Then the token was failed once with DeploymentCanceled
    assert [(c.token, c.outcome, c.error) for c in tokens.calls] == [
        ("token-7", "failure", "DeploymentCanceled")
    ]


def test_rollout_cancel_without_a_waiting_wave_does_nothing(tokens):
    # Given a job between waves (no token held)
    job = _job(status="Canceled", token=None)

    # When canceled, then nothing is sent: the next step reads the Canceled status itself
    assert notify_rollout_canceled(job) is False
    assert tokens.calls == []


def test_rollout_cancel_and_wave_completion_never_both_end_the_same_wait(tokens):
    # Given a wave whose robots have all finished, but whose completion has not claimed the token yet
    job = _job(done=2)

    # When cancel claims it first
    assert notify_rollout_canceled(job) is True

    # Then the completion finds nothing to send
    assert complete_wave_if_done(JOB, 1, get_ports()) is False
    assert [c.outcome for c in tokens.calls] == ["failure"]
