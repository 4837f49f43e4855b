"""Rollout control a front door offers beyond create and cancel: approve the wave an approval gate holds,
pause the release of further waves, resume (docs/rollout.md "Holds").

Each operation is one conditional write on the job row, then, when the rollout is held for exactly that
reason, it claims the hold's task token (a conditional remove: an operation and a cancel never both end
one wait) and sends SendTaskSuccess; the machine goes back to evaluate, which decides again. When the hold
has not stored its token yet, the hold step finds its reason gone and ends its own wait. Robots in flight
are never touched: a pause only stops releases.

Front doors check who may call what (the job exists, has gates, is not finished); these functions report
what happened and publish the job's event once per change.
"""

from __future__ import annotations

import enum

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.wire import ACTIVE_JOB_STATUSES
from fleetwave_service.engine import job_events
from fleetwave_service.engine.ports import Ports, get_ports
from fleetwave_service.engine.store import HOLD_FOR_APPROVAL, HOLD_FOR_PAUSE

logger = Logger(service="fleetwave-rollout", child=True)


class Outcome(enum.Enum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"  # already so: the operation is idempotent
    FINISHED = "finished"  # the job is no longer active


def approve_wave(job: Row, wave: int, ports: Ports | None = None) -> Outcome:
    """Record the approval of ``wave`` (ahead of time too); release the gate holding the rollout before it."""
    ports = ports or get_ports()
    already = wave in (job.get("approvedWaves") or [])
    if not ports.store.approve_wave(job["id"], wave):
        return Outcome.FINISHED
    woken = _wake(job["id"], HOLD_FOR_APPROVAL, wave, ports)
    if already:
        return Outcome.UNCHANGED
    job_events.publish(job, job_events.WAVE_APPROVED, {"wave": wave}, ports)
    logger.info("wave approved", extra={"jobId": job["id"], "wave": wave, "woken": woken})
    return Outcome.CHANGED


def pause(job: Row, ports: Ports | None = None) -> Outcome:
    """Stop releasing waves; robots in flight finish. The rollout holds before its next wave."""
    ports = ports or get_ports()
    now = ids.now()
    if not ports.store.set_paused(job["id"], True, now):
        return _unchanged_or_finished(job, ports)
    job_events.publish(job, job_events.PAUSED, {"pausedAt": now}, ports)
    logger.info("rollout paused", extra={"jobId": job["id"]})
    return Outcome.CHANGED


def resume(job: Row, ports: Ports | None = None) -> Outcome:
    """Release waves again: a rollout held by the pause goes on at once."""
    ports = ports or get_ports()
    if not ports.store.set_paused(job["id"], False, ids.now()):
        return _unchanged_or_finished(job, ports)
    woken = _wake(job["id"], HOLD_FOR_PAUSE, None, ports)
    job_events.publish(job, job_events.RESUMED, {}, ports)
    logger.info("rollout resumed", extra={"jobId": job["id"], "woken": woken})
    return Outcome.CHANGED


def _unchanged_or_finished(job: Row, ports: Ports) -> Outcome:
    current = ports.store.get_job(job["id"]) or {}
    return Outcome.UNCHANGED if current.get("status") in ACTIVE_JOB_STATUSES else Outcome.FINISHED


def _wake(job_id: str, reason: str, wave: int | None, ports: Ports) -> bool:
    """End the hold waiting for ``reason`` (before ``wave``), if one is: True when it was woken."""
    hold = ports.store.claim_hold_token(job_id, reason, wave)
    if hold is None:
        return False
    token, held_before = hold
    try:
        return ports.tokens.succeed(token, {"wave": held_before, "reason": reason, "held": True})
    except Exception:
        # Put the token back: the caller's retry (the same request again) can claim it and wake the rollout.
        ports.store.restore_hold_token(job_id, token, reason, held_before)
        raise
