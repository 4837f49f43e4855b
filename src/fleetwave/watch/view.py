"""Reading a rollout as the live views show it: per robot its status, step, progress and wave.

A RoboMaker job comes from DescribeDeploymentJob; its waves are the engine's own plan (robots in name order,
waves of ceil(N x concurrentDeploymentPercentage / 100): fleetwave_service.engine.rules). A Greengrass
deployment comes from GetDeployment and, per core device of its target, ListEffectiveDeployments; it rolls
out in batches at a growing rate, not in waves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fleetwave_service.engine.rules import plan_waves, wave_size

FINAL_ROBOT_STATUSES = (
    "InSync", "Failed", "NoResponse",  # RoboMaker
    "SUCCEEDED", "COMPLETED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED",  # Greengrass executions
)  # fmt: skip
FAILED_ROBOT_STATUSES = ("Failed", "NoResponse", "FAILED", "TIMED_OUT", "REJECTED")
SUCCEEDED_JOB_STATUSES = ("Succeeded", "COMPLETED")
FINAL_JOB_STATUSES = (*SUCCEEDED_JOB_STATUSES, "Failed", "Canceled", "FAILED", "CANCELED", "INACTIVE")
# Job members every view shows in its own columns; any other member is shown as it comes, in ``details``.
_SHOWN = {
    "arn", "fleet", "status", "failureCode", "failureReason", "createdAt", "deploymentApplicationConfigs",
    "deploymentConfig", "robotDeploymentSummary", "tags",
}  # fmt: skip
# The rollout control extensions' members (docs/extensions.md): read into ``control`` (what the console's
# buttons act on) and told in words in ``details``.
_CONTROL = ("waitingForApproval", "paused", "pausedAt", "retryOf", "retriedBy", "rollbackFrom", "rollbackTo")


def robot_name_of(arn: str) -> str:
    """``arn:aws:robomaker:...:robot/<name>/<millis>`` -> ``<name>``."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) >= 2 else arn


def _clock(epoch: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else "?"


def _job_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def control_facts(job: dict[str, Any]) -> dict[str, str]:
    """The rollout control extensions of a job (docs/extensions.md), in words: gates, a wave waiting for its
    approval, a pause, the jobs it retries or rolls back, and the retries of it."""
    facts: dict[str, str] = {}
    approval = (job.get("deploymentConfig") or {}).get("approval")
    if approval:
        where = (
            "before every wave after the first" if approval.get("after") == "EveryWave" else "before wave 2"
        )
        on_timeout = str(approval.get("onTimeout", "Cancel")).lower()
        facts["approval gates"] = f"{where}, {on_timeout} after {approval.get('timeoutInSeconds')} s"
    waiting = job.get("waitingForApproval")
    if waiting:
        facts["waiting for approval"] = f"wave {waiting.get('wave')}, until {_clock(waiting.get('deadline'))}"
    if job.get("paused"):
        facts["paused"] = f"since {_clock(job.get('pausedAt'))}"
    if job.get("retryOf"):
        facts["retry of"] = _job_id(job["retryOf"])
    if job.get("retriedBy"):
        facts["retried by"] = ", ".join(_job_id(arn) for arn in job["retriedBy"])
    if job.get("rollbackTo"):
        facts["rollback to"] = (
            f"{_job_id(job['rollbackTo'])} (from {_job_id(job.get('rollbackFrom') or '?')})"
        )
    return facts


def wave_numbers(robot_names: list[str], percent: int | None) -> dict[str, int]:
    """Wave number (from 1) of each targeted robot, by the engine's rule."""
    names = sorted(robot_names)
    waves = plan_waves(names, wave_size(len(names), percent))
    return {name: number for number, wave in enumerate(waves, 1) for name in wave}


@dataclass
class JobView:
    """What the live views show of one rollout."""

    label: str
    arn: str
    status: str
    failure_code: str | None
    failure_reason: str | None
    robots: list[dict[str, Any]]  # name, status, currentProgress, percentDone, failureCode, wave, ...
    wave_count: int
    kind: str = "robomaker"
    fleet: str | None = None
    threshold: int | None = None  # failureThresholdPercentage (absent: never stops early)
    concurrency: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # The rollout control extensions as the job shows them (approval, waitingForApproval, paused, ...).
    control: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return sum(1 for robot in self.robots if robot["status"] in FINAL_ROBOT_STATUSES)

    @property
    def failed(self) -> int:
        return sum(1 for robot in self.robots if robot["status"] in FAILED_ROBOT_STATUSES)

    @property
    def failed_percent(self) -> float:
        return 100.0 * self.failed / len(self.robots) if self.robots else 0.0

    @property
    def current_wave(self) -> int:
        released = [r["wave"] for r in self.robots if r["status"] not in ("PendingNewDeployment", "QUEUED")]
        return max(released, default=0)

    @property
    def eta_seconds(self) -> int | None:
        """The longest estimatedTimeRemainingSeconds of the robots still deploying (they run side by side)."""
        left = [r["eta"] for r in self.robots if r.get("eta") is not None and r["status"] == "Deploying"]
        return max(left) if left else None

    def count(self, status: str) -> int:
        return sum(1 for robot in self.robots if robot["status"] == status)

    def counts(self) -> dict[str, int]:
        """Robots per status, in the order the statuses first appear."""
        found: dict[str, int] = {}
        for robot in self.robots:
            found[robot["status"]] = found.get(robot["status"], 0) + 1
        return found

    @property
    def done(self) -> bool:
        return self.status in FINAL_JOB_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCEEDED_JOB_STATUSES

    def as_json(self) -> dict[str, Any]:
        """The view as the web console reads it."""
        return {
            "label": self.label,
            "arn": self.arn,
            "kind": self.kind,
            "status": self.status,
            "failureCode": self.failure_code,
            "failureReason": self.failure_reason,
            "fleet": self.fleet,
            "robots": self.robots,
            "waveCount": self.wave_count,
            "threshold": self.threshold,
            "concurrency": self.concurrency,
            "details": self.details,
            "control": self.control,
            "finished": self.finished,
            "failed": self.failed,
            "failedPercent": self.failed_percent,
            "currentWave": self.current_wave,
            "etaSeconds": self.eta_seconds,
            "done": self.done,
            "succeeded": self.succeeded,
        }


def read_job(client: Any, label: str, arn: str, percent: int | None = None) -> JobView:
    """A RoboMaker job; ``percent`` (the wave size) defaults to the job's concurrentDeploymentPercentage."""
    job = client.call("describeDeploymentJob", {"job": arn})
    config = job.get("deploymentConfig") or {}
    if percent is None:
        percent = config.get("concurrentDeploymentPercentage")
    summary = job.get("robotDeploymentSummary") or []
    waves = wave_numbers([robot_name_of(item["arn"]) for item in summary], percent)
    robots = []
    for item in sorted(summary, key=lambda entry: robot_name_of(entry["arn"])):
        name = robot_name_of(item["arn"])
        progress = item.get("progressDetail") or {}
        robots.append(
            {
                "name": name,
                "arn": item["arn"],
                "status": item.get("status", "?"),
                "currentProgress": progress.get("currentProgress", ""),
                "percentDone": progress.get("percentDone"),
                "eta": progress.get("estimatedTimeRemainingSeconds"),
                "failureCode": item.get("failureCode"),
                "failureReason": item.get("failureReason"),
                "wave": waves.get(name, 0),
                "deploymentStartTime": item.get("deploymentStartTime"),
                "deploymentFinishTime": item.get("deploymentFinishTime"),
            }
        )
    return JobView(
        label,
        arn,
        job.get("status", "?"),
        job.get("failureCode"),
        job.get("failureReason"),
        robots,
        max(waves.values(), default=0),
        fleet=job.get("fleet"),
        threshold=config.get("failureThresholdPercentage"),
        concurrency=percent,
        details={
            **{key: value for key, value in job.items() if key not in _SHOWN and key not in _CONTROL},
            **control_facts(job),
        },
        control={key: job[key] for key in _CONTROL if key in job}
        | ({"approval": config["approval"]} if config.get("approval") else {}),
    )


def _devices_of(client: Any, target_arn: str) -> list[str]:
    resource = target_arn.split(":", 5)[-1]
    kind, _, name = resource.partition("/")
    if kind == "thing":
        return [name]
    devices: list[str] = []
    token = None
    while True:
        query = {"thingGroupArn": target_arn, **({"nextToken": token} if token else {})}
        page = client.call("/greengrass/v2/coreDevices", method="GET", query=query)
        devices += [device["coreDeviceThingName"] for device in page.get("coreDevices", [])]
        token = page.get("nextToken")
        if not token:
            return devices


def _execution(client: Any, device: str, deployment_id: str) -> dict[str, Any] | None:
    token = None
    path = f"/greengrass/v2/coreDevices/{quote(device, safe='')}/effectiveDeployments"
    while True:
        page = client.call(path, method="GET", query={"nextToken": token} if token else None)
        for item in page.get("effectiveDeployments", []):
            if item.get("deploymentId") == deployment_id:
                return item
        token = page.get("nextToken")
        if not token:
            return None


def read_deployment(client: Any, label: str, deployment_id: str) -> JobView:
    """A Greengrass deployment: its status, and each core device's execution of it."""
    deployment = client.call(f"/greengrass/v2/deployments/{quote(deployment_id, safe='')}", method="GET")
    robots = []
    for device in sorted(_devices_of(client, deployment["targetArn"])):
        execution = _execution(client, device, deployment_id) or {}
        details = execution.get("statusDetails") or {}
        robots.append(
            {
                "name": device,
                "status": execution.get("coreDeviceExecutionStatus", "QUEUED"),
                "currentProgress": execution.get("reason") or "",
                "percentDone": None,
                "eta": None,
                "failureCode": ", ".join(details.get("errorTypes") or []) or None,
                "failureReason": execution.get("reason"),
                "wave": 0,
            }
        )
    return JobView(
        label,
        deployment_id,
        deployment.get("deploymentStatus", "?"),
        None,
        None,
        robots,
        0,
        kind="greengrass",
        fleet=deployment.get("targetArn"),
        details={key: deployment[key] for key in ("deploymentName", "revisionId") if key in deployment},
    )
