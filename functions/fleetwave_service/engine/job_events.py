"""The EventBridge events the engine publishes about a job (source ``fleetwave``; docs/rollout.md).

Subscribers are told best effort: the job row is the record, so a failed publish is logged and never fails
a rollout step or the request that caused it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.core.dynamo import Row
from fleetwave_service.engine.policy import policy_for
from fleetwave_service.engine.ports import Ports

logger = Logger(service="fleetwave-rollout", child=True)

STATUS_CHANGE = "Deployment Job Status Change"
WAITING_FOR_APPROVAL = "Deployment Job Waiting For Approval"
WAVE_APPROVED = "Deployment Job Wave Approved"
PAUSED = "Deployment Job Paused"
RESUMED = "Deployment Job Resumed"
ROLLBACK_STARTED = "Fleet Rollback Started"


def publish(job: Row, detail_type: str, detail: dict[str, Any], ports: Ports) -> None:
    """One event about ``job``: ``jobId``, ``arn`` and ``fleet`` (what it deploys to) plus ``detail``
    (None values left out); its resources are the job and its target."""
    target = policy_for(job).target_arn(job)
    body = {"jobId": job["id"], "arn": job["arn"], "fleet": target, **detail}
    try:
        ports.events.publish(
            detail_type, {k: v for k, v in body.items() if v is not None}, [job["arn"], target]
        )
    except Exception:
        logger.exception("job event not published", extra={"jobId": job["id"], "detailType": detail_type})
