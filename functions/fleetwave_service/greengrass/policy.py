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
from fleetwave_service.core.errors import ValidationError
from fleetwave_service.core.semver import Requirement, SemverError, Version
from fleetwave_service.engine.messages import ComponentSpec, DeploymentCommand, is_public_component
from fleetwave_service.engine.policy import Abort, Gate, Links, Plan, Release, Sweep, Targets, WaveEnd
from fleetwave_service.engine.ports import BundleSigner, Ports
from fleetwave_service.engine.rules import DEFAULT_ROBOT_TIMEOUT_SECONDS, scaled_seconds
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.greengrass import recipes, store
from fleetwave_service.greengrass.common import greengrass_architecture
from fleetwave_service.greengrass.store import FRONT_DOOR

# IoT jobs' default when no rollout config is given: up to 1,000 things notified per minute.
DEFAULT_MAXIMUM_PER_MINUTE = 1000
MINUTE_SECONDS = 60
COUNTERS = ("succeededCount", "failedCount", "noResponseCount")
MAX_RESOLUTION_PASSES = 20


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
    holds_fleet_lock = False  # thing-group deployments run beside each other

    def targets(self, job: Row, ports: Ports) -> Targets | Abort:
        """The robots the target names now: the thing's robot, or the thing group's fleet's robots."""
        if job.get("targetKind") == "thing":
            robot = fleet_store.find_by_thing_name(job["targetName"])
            robots = [robot] if robot is not None else []
        else:
            fleet = fleet_store.find_by_thing_group_name(job["targetName"])
            registered = fleet_store.registered_robots(fleet["name"]) if fleet is not None else []
            robots = sorted(registered, key=lambda r: r["name"])
        # The component set is resolved once: every robot of the deployment runs the same versions.
        return Targets(
            robots=robots,
            releasable=robots,
            sources={"components": resolve_components(job.get("components") or {})},
        )

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
        # One command per architecture (its platform; manifests are matched on the robot), not per robot.
        by_architecture: dict[str | None, DeploymentCommand] = {}
        commands = []
        for member in release.members:
            architecture = member.get("architecture")
            if architecture not in by_architecture:
                by_architecture[architecture] = greengrass_command(
                    release.job,
                    release.attempt,
                    release.issued_at,
                    release.deadline,
                    release.timeout_seconds,
                    signer=ports.signer,
                    architecture=architecture,
                )
            commands.append((member["robotName"], by_architecture[architecture]))
        return commands

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
        """Fresh links for the artifacts of the deployment's components: only those (a robot can never get a
        link to anything else), whatever manifest its platform picks."""
        return Links(artifacts=artifact_links(job, ports.signer))


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


def resolve_components(components: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The deployment's components plus the dependencies it does not name, resolved from the registry as
    the nucleus resolves them in the cloud: for each missing dependency, the newest registered version that
    every requirement on it allows (``root`` False). Public ``aws.greengrass.*`` dependencies run inside the
    nucleus and are not resolved. A dependency no registered version satisfies is left out: the robot fails
    the deployment at Validating, naming the requirements (docs/greengrass.md).
    """
    resolved = {
        name: {"componentVersion": spec["componentVersion"], "root": True}
        for name, spec in sorted(components.items())
    }
    recipes: dict[tuple[str, str], dict[str, Any] | None] = {}

    def recipe_of(name: str, version: str) -> dict[str, Any] | None:
        if (name, version) not in recipes:
            row = store.get_component_version(name, version)
            recipes[(name, version)] = (row or {}).get("recipe")
        return recipes[(name, version)]

    # Each pass recomputes every requirement from the current choice; a choice that a later dependency's
    # requirement rules out is made again. Bounded: a registry can make this oscillate.
    for _ in range(MAX_RESOLUTION_PASSES):
        wanted: dict[str, list[Requirement]] = {}
        for name, entry in resolved.items():
            for dependency, spec in _recipe_dependencies(recipe_of(name, entry["componentVersion"])).items():
                if not is_public_component(dependency):
                    wanted.setdefault(dependency, []).append(Requirement.parse(spec["VersionRequirement"]))
        changed = False
        for dependency, requirements in sorted(wanted.items()):
            current = resolved.get(dependency)
            if current is not None and (
                current["root"] or all(r.allows(current["componentVersion"]) for r in requirements)
            ):
                continue
            version = _newest_allowed(dependency, requirements)
            if version is None:
                if current is not None:
                    del resolved[dependency]
                    changed = True
                continue
            if current is None or current["componentVersion"] != version:
                resolved[dependency] = {"componentVersion": version, "root": False}
                changed = True
        # Dependencies nobody requires any more (their dependent's choice changed) go again.
        for name in [n for n, entry in resolved.items() if not entry["root"] and n not in wanted]:
            del resolved[name]
            changed = True
        if not changed:
            break
    return resolved


def _recipe_dependencies(recipe: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    if recipe is None:
        return {}
    try:
        return recipes.dependencies(recipe)
    except ValidationError:
        return {}  # stored before recipes were checked: the robot reports what it cannot read


def _newest_allowed(name: str, requirements: list[Requirement]) -> str | None:
    candidates = []
    for row in store.component_versions(name):
        try:
            version = Version.parse(row["componentVersion"])
        except SemverError:
            continue
        if all(requirement.allows(version) for requirement in requirements):
            candidates.append((version, row["componentVersion"]))
    return max(candidates)[1] if candidates else None


def _resolved(job: Row) -> dict[str, dict[str, Any]]:
    """The component set prepare resolved for the job (resolving now for a job prepared before it did)."""
    resolved = (job.get("resolvedSources") or {}).get("components")
    return resolved if isinstance(resolved, dict) else resolve_components(job.get("components") or {})


def _robot_recipe(name: str, version: str) -> dict[str, Any] | None:
    row = store.get_component_version(name, version)
    if row is None or not isinstance(row.get("recipe"), dict):
        return None
    try:
        return recipes.robot_recipe(row["recipe"])
    except ValidationError:
        return None


def _artifact_links(recipe: dict[str, Any] | None, signer: BundleSigner) -> dict[str, str]:
    links = {}
    for manifest in (recipe or {}).get("Manifests") or []:
        for artifact in manifest["Artifacts"]:
            location = recipes.parse_s3_uri(artifact["Uri"])
            if location is not None and artifact["Uri"] not in links:
                links[artifact["Uri"]] = signer.presign(*location)
    return links


def artifact_links(job: Row, signer: BundleSigner) -> dict[str, dict[str, str]]:
    """Fresh links for the artifacts of the job's components (and of nothing else)."""
    found = {}
    for name, entry in _resolved(job).items():
        links = _artifact_links(_robot_recipe(name, entry["componentVersion"]), signer)
        if links:
            found[name] = links
    return found


def robot_platform(architecture: str | None) -> dict[str, str]:
    """The Greengrass platform of a robot of a Fleetwave ``architecture``."""
    platform = {"os": "linux"}
    if architecture:
        platform["architecture"] = greengrass_architecture(architecture)
    return platform


def greengrass_command(
    job: Row,
    attempt: int,
    now: float,
    deadline: float,
    timeout_seconds: int,
    *,
    signer: BundleSigner,
    architecture: str | None,
) -> DeploymentCommand:
    """What a robot of ``architecture`` runs for a Greengrass deployment: every component of the resolved set
    with its recipe and fresh artifact links, the robot's platform, and the deployment's policies."""
    policies = job.get("deploymentPolicies") or {}
    requested = job.get("components") or {}
    components = {}
    for name, entry in _resolved(job).items():
        spec = requested.get(name) or {}
        recipe = _robot_recipe(name, entry["componentVersion"])
        components[name] = ComponentSpec(
            componentVersion=entry["componentVersion"],
            configurationUpdate=spec.get("configurationUpdate"),
            runWith=spec.get("runWith"),
            recipe=recipe,
            artifactLinks=_artifact_links(recipe, signer),
            root=bool(entry.get("root", True)),
        )
    return DeploymentCommand(
        jobId=job["id"],
        attempt=attempt,
        components=components,
        platform=robot_platform(architecture),
        componentUpdatePolicy=policies.get("componentUpdatePolicy")
        or {"action": "NOTIFY_COMPONENTS", "timeoutInSeconds": 60},
        configurationValidationPolicy=policies.get("configurationValidationPolicy")
        or {"timeoutInSeconds": 30},
        failureHandlingPolicy=policies.get("failureHandlingPolicy") or "ROLLBACK",
        timeoutSeconds=timeout_seconds,
        deadline=deadline,
        issuedAt=now,
    )
