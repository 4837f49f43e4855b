"""The end of a wave's wait, wherever it is seen: a batch of reports (engine/reports.py) or a release whose
robots all answered already (engine/steps.py). Its own module so that the rollout steps do not load the
status path to call it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from fleetwave_service.engine.policy import policy_for

if TYPE_CHECKING:
    from fleetwave_service.engine.ports import Ports

logger = Logger(service="fleetwave-rollout", child=True)


def complete_wave_if_done(job_id: str, wave: int, ports: Ports) -> bool:
    """End the wave's wait when the job's policy reads it as over: all its robots finished, or the failure
    criteria already breached. True: SendTaskSuccess sent."""
    store = ports.store
    job = store.get_job(job_id)
    if job is None or job.get("status") != "InProgress" or not job.get("waveToken"):
        return False
    end = policy_for(job).wave_end(job, wave, ports)
    if end is None or not (end.complete or end.breached):
        return False
    token = store.claim_wave_token(job_id, end.wave)
    if token is None:
        return False  # someone else ended this wave's wait (another report, sweep, cancel)
    output = {"wave": end.wave, "complete": end.complete, "thresholdBreached": end.breached}
    try:
        sent = ports.tokens.succeed(token, output)
    except Exception:
        # Put the token back so the retried report (SQS redelivery) can claim it again.
        store.restore_wave_token(job_id, end.wave, token)
        raise
    logger.info("wave wait ended", extra={"jobId": job_id, **output, "sent": sent})
    return sent
