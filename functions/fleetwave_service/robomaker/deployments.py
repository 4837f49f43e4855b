"""What a deployment job deploys, and whether a robot is on it: the one comparison RetryDeploymentJob,
RollbackFleet and their targets use (docs/extensions.md).

A job's *deployment* is its application, version and launch config (deploymentApplicationConfigs[0]); two
jobs with the same deployment put the same software on a robot, whatever their wave plan. A robot is *on*
a deployment when it is InSync and its last deployment job deployed it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from fleetwave_service.core import arns
from fleetwave_service.core.dynamo import Row


def deployment_of(job: Row) -> str:
    """The job's deployment as a comparable key (canonical JSON)."""
    config = job["deploymentApplicationConfigs"][0]
    return json.dumps(
        {k: config.get(k) for k in ("application", "applicationVersion", "launchConfig")},
        sort_keys=True,
        separators=(",", ":"),
    )


def job_id(job_arn: str) -> str | None:
    """The job id in a deployment job ARN, or None."""
    parsed = arns.parse(job_arn)
    return parsed.name if parsed is not None and parsed.kind == arns.DEPLOYMENT_JOB else None


class OnDeployment:
    """``on(robot)``: is this robot InSync on ``deployment``? Each robot's last job is read once per
    distinct job (``get_job``: id -> row or None)."""

    def __init__(self, deployment: str, get_job: Callable[[str], Row | None]) -> None:
        self._deployment = deployment
        self._get_job = get_job
        self._known: dict[str, bool] = {}

    def on(self, robot: Row) -> bool:
        last = robot.get("lastDeploymentJob")
        if robot.get("status") != "InSync" or not last:
            return False
        if last not in self._known:
            last_id = job_id(last)
            job = self._get_job(last_id) if last_id else None
            self._known[last] = job is not None and deployment_of(job) == self._deployment
        return self._known[last]
