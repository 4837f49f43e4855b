"""Reading a deployment job as the demo shows it: per robot its status, progress and wave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleetwave.demo.plan import plan_waves

FINAL_ROBOT_STATUSES = ("InSync", "Failed", "NoResponse")
FINAL_JOB_STATUSES = ("Succeeded", "Failed", "Canceled")


def robot_name_of(arn: str) -> str:
    """``arn:aws:robomaker:...:robot/<name>/<millis>`` -> ``<name>``."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) >= 2 else arn


@dataclass
class JobView:
    """What the live view and the summary show of one job (from DescribeDeploymentJob)."""

    label: str
    arn: str
    status: str
    failure_code: str | None
    failure_reason: str | None
    robots: list[dict[str, Any]]  # name, status, currentProgress, percentDone, failureCode, wave
    wave_count: int

    @property
    def finished(self) -> int:
        return sum(1 for robot in self.robots if robot["status"] in FINAL_ROBOT_STATUSES)

    @property
    def current_wave(self) -> int:
        released = [r["wave"] for r in self.robots if r["status"] != "PendingNewDeployment"]
        return max(released, default=0)

    def count(self, status: str) -> int:
        return sum(1 for robot in self.robots if robot["status"] == status)

    @property
    def done(self) -> bool:
        return self.status in FINAL_JOB_STATUSES


def read_job(client: Any, label: str, arn: str, percent: int | None) -> JobView:
    job = client.call("describeDeploymentJob", {"job": arn})
    summary = job.get("robotDeploymentSummary") or []
    waves = plan_waves([robot_name_of(item["arn"]) for item in summary], percent)
    robots = []
    for item in sorted(summary, key=lambda entry: robot_name_of(entry["arn"])):
        name = robot_name_of(item["arn"])
        progress = item.get("progressDetail") or {}
        robots.append(
            {
                "name": name,
                "status": item.get("status", "?"),
                "currentProgress": progress.get("currentProgress", ""),
                "percentDone": progress.get("percentDone"),
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
    )
