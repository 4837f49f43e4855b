"""The hook the API calls after it marked a deployment job Canceled.

The API has already written the job's Canceled status and released the fleet's job lock. This ends the
rollout's current wait, a wave's or a hold's (approval gate, pause), by failing its task token with
``DeploymentCanceled``, which the state machine catches and routes to Finalize; Finalize tells robots still
deploying to abort and releases nobody further. StopExecution is not used: it would skip Finalize (and moto
does not interrupt a callback wait with it).

When no token is held (the job is Pending, Preparing, or between two steps) nothing needs to be woken: the
next step reads the Canceled status and goes to Finalize itself. The token is claimed with a conditional
write, so a wave that completes (or an approval that arrives) at the same moment and this hook never both
end the same wait.

This runs inside the API's request, so it stays short: one read, one conditional write, one SendTaskFailure.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.engine.ports import Ports, get_ports

logger = Logger(service="fleetwave", child=True)

CANCELED_ERROR = "DeploymentCanceled"


def notify_rollout_canceled(job: dict[str, Any], ports: Ports | None = None) -> bool:
    """``job`` is the job row as the API last read it, with ``status`` already ``Canceled``.

    Returns True when a waiting wave or hold was woken up.
    """
    ports = ports or get_ports()
    job_id = job["id"]
    token = ports.store.claim_wave_token(job_id)
    if token is None:
        hold = ports.store.claim_hold_token(job_id)
        token = hold[0] if hold else None
    if token is None:
        logger.info(
            "rollout canceled; no wave waiting", extra={"job_id": job_id, "fleet": job.get("fleetName")}
        )
        return False
    try:
        woken = ports.tokens.fail(token, CANCELED_ERROR, "The deployment job was canceled.")
    except Exception:
        # The job is Canceled already (and the fleet free); the worst case is that the wave or hold waits
        # out its timeout, after which evaluate sees Canceled and finalizes. Never fail the user's cancel.
        logger.exception("canceled wave could not be woken", extra={"job_id": job_id})
        return False
    logger.info("rollout canceled; wave woken", extra={"job_id": job_id, "woken": woken})
    return woken
