"""Holds (approval gates, pause) without the state machine: the hold step, approve / pause / resume and cancel
racing each other on the job row; exactly one of them ends each wait."""

from __future__ import annotations

import time

import pytest
from fakes.rollout import FakeEvents, FakeTaskTokens
from fleetwave_service.core.keys import job_key
from fleetwave_service.engine import control, steps
from fleetwave_service.engine.cancel import notify_rollout_canceled
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports

JOB = "deployment-holdholdhold1"


@pytest.fixture
def ports(aws):
    use_ports(tokens=FakeTaskTokens(), events=FakeEvents(), channel=object())
    yield get_ports()
    reset_ports()


def _job(ports, **extra):
    now = time.time()
    row = {
        "id": JOB,
        "arn": f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}",
        "fleet": "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/warehouse/1",
        "status": "InProgress",
        "fleetName": "warehouse",
        "createdAt": now,
        "expiresAt": int(now) + 3600,
        "currentWave": 1,
        "waveCount": 3,
        "deploymentConfig": {
            "approval": {"after": "EveryWave", "timeoutInSeconds": 60, "onTimeout": "Cancel"}
        },
        **extra,
    }
    ports.store.put_rows([(job_key(JOB), row)])
    return row


def _calls(ports):
    return [(call.token, call.outcome, call.error) for call in ports.tokens.calls]


def _events(ports):
    return [detail_type for detail_type, _, _ in ports.events.published]


def test_approval_wakes_the_hold_waiting_for_that_wave_once(ports):
    # Given a rollout held before wave 2
    job = _job(ports)
    steps.hold(JOB, 2, "approval", "token-2", ports)
    assert ports.store.get_job(JOB)["holdToken"] == "token-2"

    # When wave 3 is approved, then wave 2 twice
    assert control.approve_wave(job, 3, ports) is control.Outcome.CHANGED
    assert _calls(ports) == []
    assert control.approve_wave(job, 2, ports) is control.Outcome.CHANGED
    assert control.approve_wave(dict(job, approvedWaves=[2, 3]), 2, ports) is control.Outcome.UNCHANGED

    # Then the hold was woken once, and both approvals were announced once each
    assert _calls(ports) == [("token-2", "success", None)]
    assert ports.store.get_job(JOB)["approvedWaves"] == [2, 3]
    assert "holdToken" not in ports.store.get_job(JOB)
    assert _events(ports) == ["Deployment Job Wave Approved", "Deployment Job Wave Approved"]


def test_approval_before_the_hold_stores_its_token_lets_the_hold_end_its_own_wait(ports):
    # Given wave 2 approved while evaluate decided to hold before it
    job = _job(ports)
    control.approve_wave(job, 2, ports)

    # When the hold step runs
    result = steps.hold(JOB, 2, "approval", "token-2", ports)

    # Then it does not park its token: it ends its own wait at once
    assert result["held"] is False
    assert _calls(ports) == [("token-2", "success", None)]
    assert "holdToken" not in ports.store.get_job(JOB)


def test_resume_wakes_only_a_pause_hold(ports):
    # Given a rollout paused and held by its gate before wave 2 (gates come first)
    job = _job(ports)
    assert control.pause(job, ports) is control.Outcome.CHANGED
    assert control.pause(job, ports) is control.Outcome.UNCHANGED
    steps.hold(JOB, 2, "approval", "gate-token", ports)

    # When resumed: the gate still holds
    assert control.resume(job, ports) is control.Outcome.CHANGED
    assert _calls(ports) == []
    assert ports.store.get_job(JOB)["holdToken"] == "gate-token"

    # When paused again, approved (the rollout then holds for the pause) and resumed
    control.pause(job, ports)
    control.approve_wave(job, 2, ports)
    steps.hold(JOB, 2, "pause", "pause-token", ports)
    control.resume(job, ports)
    assert control.resume(job, ports) is control.Outcome.UNCHANGED

    # Then each hold was woken by its own operation, once
    assert _calls(ports) == [("gate-token", "success", None), ("pause-token", "success", None)]
    assert _events(ports) == [
        "Deployment Job Paused",
        "Deployment Job Resumed",
        "Deployment Job Paused",
        "Deployment Job Wave Approved",
        "Deployment Job Resumed",
    ]


def test_a_pause_hold_after_a_resume_ends_at_once(ports):
    # Given a pause resumed before the hold step stored its token
    job = _job(ports, paused=True, pausedAt=time.time())
    control.resume(job, ports)

    # When the hold step runs, then it ends its own wait
    assert steps.hold(JOB, 2, "pause", "token", ports)["held"] is False
    assert _calls(ports) == [("token", "success", None)]


def test_cancel_fails_a_held_rollout_once_and_nobody_else_can_wake_it(ports):
    # Given a rollout held by a pause, then canceled by the API
    job = _job(ports, paused=True, pausedAt=time.time())
    steps.hold(JOB, 2, "pause", "token", ports)
    ports.store.update_status(JOB, "Canceled", ("InProgress",))

    # When the cancel hook runs (twice), and a resume comes late
    assert notify_rollout_canceled(dict(job, status="Canceled")) is True
    assert notify_rollout_canceled(dict(job, status="Canceled")) is False
    assert control.resume(job, ports) is control.Outcome.FINISHED

    # Then the hold was failed with DeploymentCanceled, once
    assert _calls(ports) == [("token", "failure", "DeploymentCanceled")]


def test_a_hold_of_a_canceled_job_fails_its_own_token(ports):
    _job(ports, status="Canceled")

    assert steps.hold(JOB, 2, "approval", "token", ports)["held"] is False

    assert _calls(ports) == [("token", "failure", "DeploymentCanceled")]


def test_a_failed_wake_up_puts_the_token_back_for_the_retried_request(ports):
    # Given a held gate and Step Functions failing transiently
    job = _job(ports)
    steps.hold(JOB, 2, "approval", "token", ports)
    ports.tokens.failing = ConnectionError("down")

    # When the approval cannot wake the rollout, the caller sees the error
    with pytest.raises(ConnectionError):
        control.approve_wave(job, 2, ports)

    # Then the token is back, and the same request again wakes it
    assert ports.store.get_job(JOB)["holdToken"] == "token"
    ports.tokens.failing = None
    control.approve_wave(dict(job, approvedWaves=[2]), 2, ports)
    assert _calls(ports) == [("token", "success", None)]
