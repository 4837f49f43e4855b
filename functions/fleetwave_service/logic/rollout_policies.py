"""How a rollout is released and when it aborts, per front door (docs/rollout.md, docs/greengrass.md).

The engine's steps (logic/rollout.py) are the same for both front doors; what differs lives here:

- RoboMaker: percentage waves (concurrentDeploymentPercentage), one failure threshold over all targets,
  robotDeploymentTimeoutInSeconds, an application bundle per architecture.
- Greengrass: one batch per minute at a rate that grows by incrementFactor when rateIncreaseCriteria are
  met (next_batch, decided by evaluate from the counters), capped by maximumPerMinute; abort criteria per
  failure type with a minimum of executed robots, inProgressTimeoutInMinutes per robot, a component map and
  failure handling in the command.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from fleetwave_service.engine.messages import ComponentSpec, DeploymentCommand
from fleetwave_service.engine.rules import (
    DEFAULT_ROBOT_TIMEOUT_SECONDS,
    plan_waves,
    scaled_seconds,
    threshold_breached,
    threshold_reason,
    wave_size,
)
from fleetwave_service.storage import greengrass as greengrass_storage

GREENGRASS = "greengrass"
# IoT jobs' default when no rollout config is given: up to 1,000 things notified per minute.
DEFAULT_MAXIMUM_PER_MINUTE = 1000
MINUTE_SECONDS = 60


class RolloutPolicy(Protocol):
    def plan(self, job: dict[str, Any], robot_names: list[str], target_count: int) -> list[list[str]]:
        """The robots of each wave (batch), in release order."""
        ...

    def robot_timeout_seconds(self, job: dict[str, Any]) -> int:
        """The production per-robot timeout (before the local time scale)."""
        ...

    def breach(self, job: dict[str, Any], totals: dict[str, int]) -> str | None:
        """Why the rollout must abort now (None: it goes on). ``totals``: succeeded/failed/noResponse."""
        ...

    def wave_timeout_seconds(self, job: dict[str, Any], wave: int, time_scale: float) -> int:
        """How long the machine waits on ``wave`` before its sweep (scaled)."""
        ...


class RoboMakerPolicy:
    def plan(self, job: dict[str, Any], robot_names: list[str], target_count: int) -> list[list[str]]:
        config = job.get("deploymentConfig") or {}
        return plan_waves(robot_names, wave_size(target_count, config.get("concurrentDeploymentPercentage")))

    def robot_timeout_seconds(self, job: dict[str, Any]) -> int:
        config = job.get("deploymentConfig") or {}
        return int(config.get("robotDeploymentTimeoutInSeconds") or DEFAULT_ROBOT_TIMEOUT_SECONDS)

    def breach(self, job: dict[str, Any], totals: dict[str, int]) -> str | None:
        failed = totals["failedCount"] + totals["noResponseCount"]
        targeted = int(job.get("targetCount", 0))
        threshold = (job.get("deploymentConfig") or {}).get("failureThresholdPercentage")
        if threshold_breached(failed, targeted, threshold):
            return threshold_reason(failed, targeted, threshold)
        return None

    def wave_timeout_seconds(self, job: dict[str, Any], wave: int, time_scale: float) -> int:
        # A wave lasts until its robots finished, at most the robot timeout.
        return scaled_seconds(self.robot_timeout_seconds(job), time_scale)


def next_batch(
    job: dict[str, Any], batch: int, notified: int, succeeded: int, remaining: int
) -> dict[str, Any]:
    """Size of Greengrass batch ``batch`` (1-based) and the rate state to store with it on the job.

    IoT Jobs semantics: the rollout starts at baseRatePerMinute; the rate is multiplied by incrementFactor
    each time rateIncreaseCriteria are met since the last increase (numberOfNotifiedThings robots notified,
    or numberOfSucceededThings robots succeeded), and every batch is capped by maximumPerMinute. Without an
    exponential rate the rate is maximumPerMinute (default 1,000). An exponential rate without criteria
    grows on every batch. ``notified``: robots released so far; ``succeeded``: robots succeeded so far.
    """
    rollout = (job.get("iotJobConfiguration") or {}).get("jobExecutionsRolloutConfig") or {}
    exponential = rollout.get("exponentialRate") or {}
    cap = int(rollout.get("maximumPerMinute") or DEFAULT_MAXIMUM_PER_MINUTE)
    base = exponential.get("baseRatePerMinute")
    factor = float(exponential.get("incrementFactor") or 1)
    rate = float(job.get("currentRate") or base or cap)
    notified_at = int(job.get("notifiedAtIncrease", 0))
    succeeded_at = int(job.get("succeededAtIncrease", 0))
    if batch > 1 and base and factor != 1:
        criteria = exponential.get("rateIncreaseCriteria") or {}
        if criteria.get("numberOfNotifiedThings"):
            met = notified - notified_at >= int(criteria["numberOfNotifiedThings"])
        elif criteria.get("numberOfSucceededThings"):
            met = succeeded - succeeded_at >= int(criteria["numberOfSucceededThings"])
        else:
            met = True
        if met:
            # The stored rate never exceeds the cap: it cannot grow without bound over many batches.
            rate = min(float(cap), rate * factor)
            notified_at, succeeded_at = notified, succeeded
    size = max(1, min(cap, math.floor(rate + 1e-9), remaining))
    return {
        "size": size,
        "currentRate": rate,
        "notifiedAtIncrease": notified_at,
        "succeededAtIncrease": succeeded_at,
    }


class GreengrassPolicy:
    def plan(self, job: dict[str, Any], robot_names: list[str], target_count: int) -> list[list[str]]:
        """One queue in release order: each batch's size is decided when it is due (``next_batch``)."""
        return [list(robot_names)] if robot_names else []

    def robot_timeout_seconds(self, job: dict[str, Any]) -> int:
        timeout = ((job.get("iotJobConfiguration") or {}).get("timeoutConfig") or {}).get(
            "inProgressTimeoutInMinutes"
        )
        return int(timeout) * 60 if timeout else DEFAULT_ROBOT_TIMEOUT_SECONDS

    def breach(self, job: dict[str, Any], totals: dict[str, int]) -> str | None:
        criteria = ((job.get("iotJobConfiguration") or {}).get("abortConfig") or {}).get("criteriaList") or []
        return abort_reason(criteria, totals)

    def wave_timeout_seconds(self, job: dict[str, Any], wave: int, time_scale: float) -> int:
        # A batch is one minute of the rate; robots still running at its end keep running. The last batch
        # waits for every robot in flight, up to the in-progress timeout.
        if wave < int(job.get("waveCount", 0)):
            return scaled_seconds(MINUTE_SECONDS, time_scale)
        return scaled_seconds(self.robot_timeout_seconds(job), time_scale)


def abort_reason(criteria: list[dict[str, Any]], totals: dict[str, int]) -> str | None:
    """The first abort criterion met: at least minNumberOfExecutedThings robots finished and the share of
    them that failed that way reached thresholdPercentage. FAILED counts failures the robot reported,
    TIMED_OUT robots that never answered in time, ALL both; REJECTED never happens (robots do not reject).
    """
    failed, timed_out = totals["failedCount"], totals["noResponseCount"]
    executed = totals["succeededCount"] + failed + timed_out
    counted = {"FAILED": failed, "TIMED_OUT": timed_out, "ALL": failed + timed_out, "REJECTED": 0}
    for criterion in criteria:
        kind = criterion["failureType"]
        minimum = int(criterion["minNumberOfExecutedThings"])
        threshold = float(criterion["thresholdPercentage"])
        bad = counted.get(kind, 0)
        if executed >= minimum and executed > 0 and bad > 0 and bad * 100 >= threshold * executed:
            return (
                f"Abort criteria met: {bad} of {executed} executed robots {kind} "
                f"({bad * 100 / executed:.2f}%), threshold {threshold:g}% with at least {minimum} executed."
            )
    return None


def policy_for(job: dict[str, Any]) -> RolloutPolicy:
    return GreengrassPolicy() if job.get("frontDoor") == GREENGRASS else RoboMakerPolicy()


def is_greengrass(job: dict[str, Any]) -> bool:
    return job.get("frontDoor") == GREENGRASS


# --- Greengrass commands ----------------------------------------------------------------------------


def greengrass_timeout(job: dict[str, Any], time_scale: float) -> int:
    return scaled_seconds(GreengrassPolicy().robot_timeout_seconds(job), time_scale)


def _default_configuration(name: str, version: str) -> dict[str, Any] | None:
    """The registered recipe's default configuration (public aws.greengrass.* components have none here)."""
    row = greengrass_storage.get_component_version(name, version)
    if row is None:
        return None
    configuration = (row.get("recipe") or {}).get("ComponentConfiguration") or {}
    default = configuration.get("DefaultConfiguration")
    return default if isinstance(default, dict) else None


def greengrass_command(
    job: dict[str, Any], attempt: int, now: float, deadline: float, timeout_seconds: int
) -> DeploymentCommand:
    """What a robot runs for a Greengrass deployment: the component map and the deployment's policies."""
    policies = job.get("deploymentPolicies") or {}
    components = {}
    for name, spec in (job.get("components") or {}).items():
        default = _default_configuration(name, spec["componentVersion"])
        components[name] = ComponentSpec(
            componentVersion=spec["componentVersion"],
            configurationUpdate=spec.get("configurationUpdate"),
            runWith=spec.get("runWith"),
            recipe={"DefaultConfiguration": default} if default is not None else None,
        )
    return DeploymentCommand(
        jobId=job["id"],
        attempt=attempt,
        components=components,
        componentUpdatePolicy=policies.get("componentUpdatePolicy")
        or {"action": "NOTIFY_COMPONENTS", "timeoutInSeconds": 60},
        configurationValidationPolicy=policies.get("configurationValidationPolicy")
        or {"timeoutInSeconds": 30},
        failureHandlingPolicy=policies.get("failureHandlingPolicy") or "ROLLBACK",
        timeoutSeconds=timeout_seconds,
        deadline=deadline,
        issuedAt=now,
    )
