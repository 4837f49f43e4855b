"""Greengrass's rollout policy for the engine (docs/greengrass.md "Engine policies").

Targets: the robot a ``thing/NAME`` names, or the robots of the fleet a ``thinggroup/NAME`` names. One
batch per minute at a rate that grows by incrementFactor when rateIncreaseCriteria are met (``next_batch``,
decided by evaluate from the counters), capped by maximumPerMinute; abort criteria per failure type with a
minimum of executed robots; inProgressTimeoutInMinutes per robot; a component map and failure handling in
the command.
"""

from __future__ import annotations

import math
from typing import Any

from fleetwave_service.core.dynamo import Row
from fleetwave_service.engine.messages import ComponentSpec, DeploymentCommand
from fleetwave_service.engine.policy import Abort, Gate, Links, Plan, Release, Sweep, Targets, WaveEnd
from fleetwave_service.engine.ports import Ports
from fleetwave_service.engine.rules import DEFAULT_ROBOT_TIMEOUT_SECONDS, scaled_seconds
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.greengrass import store
from fleetwave_service.greengrass.store import FRONT_DOOR

# IoT jobs' default when no rollout config is given: up to 1,000 things notified per minute.
DEFAULT_MAXIMUM_PER_MINUTE = 1000
MINUTE_SECONDS = 60
COUNTERS = ("succeededCount", "failedCount", "noResponseCount")


def next_batch(job: Row, batch: int, notified: int, succeeded: int, remaining: int) -> dict[str, Any]:
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
    front_door = FRONT_DOOR

    def targets(self, job: Row, ports: Ports) -> Targets | Abort:
        """The robots the target names now: the thing's robot, or the thing group's fleet's robots."""
        if job.get("targetKind") == "thing":
            robot = fleet_store.find_by_thing_name(job["targetName"])
            robots = [robot] if robot is not None else []
        else:
            fleet = fleet_store.find_by_thing_group_name(job["targetName"])
            registered = fleet_store.registered_robots(fleet["name"]) if fleet is not None else []
            robots = sorted(registered, key=lambda r: r["name"])
        return Targets(robots=robots, releasable=robots)

    def plan(self, job: Row, robot_names: list[str], target_count: int) -> Plan:
        """One queue in release order: each batch's size is decided when it is due (``next_batch``)."""
        return Plan(queue=list(robot_names))

    def next_batch(
        self, job: Row, batch: int, notified: int, succeeded: int, remaining: int
    ) -> dict[str, Any]:
        return next_batch(job, batch, notified, succeeded, remaining)

    def robot_timeout_seconds(self, job: Row) -> int:
        timeout = ((job.get("iotJobConfiguration") or {}).get("timeoutConfig") or {}).get(
            "inProgressTimeoutInMinutes"
        )
        return int(timeout) * 60 if timeout else DEFAULT_ROBOT_TIMEOUT_SECONDS

    def wave_timeout_seconds(self, job: Row, wave: int, time_scale: float) -> int:
        # A batch is one minute of the rate; robots still running at its end keep running. The last batch
        # waits for every robot in flight, up to the in-progress timeout.
        if wave < int(job.get("waveCount", 0)):
            return scaled_seconds(MINUTE_SECONDS, time_scale)
        return scaled_seconds(self.robot_timeout_seconds(job), time_scale)

    def robot_seconds(self, job: Row, wave_timeout_seconds: int, time_scale: float) -> int:
        # A batch lasts a minute; each robot has the whole in-progress timeout.
        return greengrass_timeout(job, time_scale)

    def breach(self, job: Row, totals: dict[str, int]) -> str | None:
        criteria = ((job.get("iotJobConfiguration") or {}).get("abortConfig") or {}).get("criteriaList") or []
        return abort_reason(criteria, totals)

    def commands(self, release: Release, ports: Ports) -> list[tuple[str, DeploymentCommand]]:
        command = greengrass_command(
            release.job, release.attempt, release.issued_at, release.deadline, release.timeout_seconds
        )
        return [(member["robotName"], command) for member in release.members]

    def sweep(self, job: Row, wave: int, now: float, ports: Ports) -> Sweep:
        """A batch's minute ended: robots past their own deadline are TIMED_OUT (NoResponse); the others keep
        running and are counted when they report. After the last batch everyone still running is past the
        in-progress timeout. Counters stay live (no recount): late reports must still count."""
        last = wave >= int(job.get("waveCount", 0))
        overdue = [
            row
            for row in ports.store.job_robot_deployments(job["id"], ("Deploying",))
            if not row.get("continuous") and (last or float(row.get("deadline") or now) <= now)
        ]
        return Sweep(
            rows=overdue,
            from_statuses=("Deploying",),
            reason="The robot did not finish within the in-progress timeout.",
            recount=False,
            wave_status="TimedOut" if last else "MinuteEnded",
        )

    def wave_end(self, job: Row, wave: int, ports: Ports) -> WaveEnd | None:
        """A batch's wait ends early only when the abort criteria are met, or when it is the last batch and
        every robot released so far has finished (earlier batches last their whole minute)."""
        current = int(job.get("currentWave", 0))
        totals = dict.fromkeys(COUNTERS, 0)
        released = 0
        for row in ports.store.waves(job["id"]):
            number = int(row.get("wave", 0))
            if number < 1:
                continue
            for name in totals:
                totals[name] += int(row.get(name, 0))
            if number <= current:
                released += int(row.get("size", 0))
        finished = sum(totals.values()) >= released
        complete = current >= int(job.get("waveCount", 0)) and finished
        return WaveEnd(current, complete, self.breach(job, totals) is not None)

    def gate(self, job: Row, wave: int) -> Gate | None:
        """Greengrass deployments have no approval gates: their batches follow the rollout rate."""
        return None

    def finished(self, job: Row, status: str, ports: Ports) -> None:
        """A deployment's outcome lives on its own row (deploymentStatus): nothing else to record."""

    def target_arn(self, job: Row) -> str:
        return job["targetArn"]

    def links(self, job: Row, architecture: str | None, ports: Ports) -> Links:
        # A Greengrass command carries no presigned links (components' artifacts are not served yet).
        return Links(refused="fresh links are served for robot application bundles only")


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


# --- commands -------------------------------------------------------------------------------------


def greengrass_timeout(job: Row, time_scale: float) -> int:
    """A robot's in-progress timeout as the engine waits it (scaled)."""
    return scaled_seconds(GreengrassPolicy().robot_timeout_seconds(job), time_scale)


def _default_configuration(name: str, version: str) -> dict[str, Any] | None:
    """The registered recipe's default configuration (public aws.greengrass.* components have none here)."""
    row = store.get_component_version(name, version)
    if row is None:
        return None
    configuration = (row.get("recipe") or {}).get("ComponentConfiguration") or {}
    default = configuration.get("DefaultConfiguration")
    return default if isinstance(default, dict) else None


def greengrass_command(
    job: Row, attempt: int, now: float, deadline: float, timeout_seconds: int
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
