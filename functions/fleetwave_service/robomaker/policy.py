"""RoboMaker's rollout policy for the engine (docs/rollout.md).

Targets: the fleet's registered robots (for a sync job, those not InSync with the deployment it copies; for
a retry, the retried job's Failed and NoResponse robots; for a rollback, every robot not on the deployment
it brings back: docs/extensions.md), each needing a source for its architecture. Percentage waves
(concurrentDeploymentPercentage) in robot-name order; the approval gates of ``deploymentConfig.approval``;
one failure threshold over all targets; robotDeploymentTimeoutInSeconds per wave; one presigned bundle URL
per architecture per wave. Finalize records the job on the fleet and releases its lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetwave_service.core.dynamo import Row
from fleetwave_service.engine.policy import Abort, Gate, Links, Plan, Release, Sweep, Targets, WaveEnd
from fleetwave_service.engine.ports import BundleSigner, Ports
from fleetwave_service.engine.protocol import FailureCode
from fleetwave_service.engine.rules import (
    DEFAULT_APPROVAL_ON_TIMEOUT,
    DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    DEFAULT_ROBOT_TIMEOUT_SECONDS,
    plan_waves,
    scaled_seconds,
    threshold_breached,
    threshold_reason,
    wave_size,
)
from fleetwave_service.engine.steps import ABORT, CANCELED
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.robomaker import store
from fleetwave_service.robomaker.deployments import OnDeployment, deployment_of, job_id

if TYPE_CHECKING:
    # The message models (pydantic) are loaded by the release and the link replies that build them, not by
    # the steps that only plan, count and end a rollout (docs/performance.md, "Cold import per function").
    from fleetwave_service.engine.messages import Bundle, DeploymentCommand, DownloadCondition

# A sync job follows the chain of syncs back to the deployment it copies; a cap against a cycle.
MAX_SYNC_CHAIN = 1000
# deploymentConfig.approval.onTimeout -> how the engine ends the job: Canceled, or Failed.
_ON_TIMEOUT = {"Cancel": CANCELED, "Fail": ABORT}


def _config(job: Row) -> dict[str, Any]:
    return job.get("deploymentConfig") or {}


def _application_name(application_arn: str) -> str:
    # arn:...:robot-application/<name>/<epochMillis>
    resource = application_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) >= 2 else resource


def bundle_link(architecture: str, source: dict[str, Any], signer: BundleSigner) -> Bundle:
    """The presigned bundle of one architecture's source (``resolvedSources``): in a command, and again in
    the answer to a robot's link request."""
    from fleetwave_service.engine.messages import Bundle

    return Bundle(
        url=signer.presign(source["s3Bucket"], source["s3Key"]),
        etag=source.get("etag"),
        architecture=architecture,
        s3Bucket=source["s3Bucket"],
        s3Key=source["s3Key"],
    )


def download_condition_link(job: Row, signer: BundleSigner) -> DownloadCondition | None:
    condition_file = _config(job).get("downloadConditionFile")
    if not condition_file:
        return None
    from fleetwave_service.engine.messages import DownloadCondition

    return DownloadCondition(
        url=signer.presign(condition_file["bucket"], condition_file["key"]), etag=condition_file.get("etag")
    )


def _copied(job: Row) -> str | None:
    """The id of the job whose deployment this one deploys again: a sync's, a retry's, a rollback's."""
    if job.get("syncOf"):
        return job["syncOf"]
    link = job.get("retryOf") or job.get("rollbackTo")
    return job_id(link) if link else None


def _in_sync_arns(job: Row, ports: Ports) -> set[str]:
    """ARNs of the deployment a sync job copies, and of the jobs before it that deployed it again (syncs,
    retries, rollbacks to it), following the chain back."""
    arns: set[str] = set()
    previous_id = _copied(job)
    while previous_id and len(arns) < MAX_SYNC_CHAIN:
        previous = ports.store.get_job(previous_id)
        if previous is None:
            break
        arns.add(previous["arn"])
        previous_id = _copied(previous)
    return arns


def _retry_targets(job: Row, robots: list[Row], ports: Ports) -> list[Row]:
    """Of the fleet's robots, those the retried job left Failed or NoResponse (whether tried or never
    released), except those on its deployment by now (they came back, or a sync reached them)."""
    retried = job_id(job["retryOf"]) or ""
    failed = {
        row["robotName"] for row in ports.store.job_robot_deployments(retried, ("Failed", "NoResponse"))
    }
    on = OnDeployment(deployment_of(job), ports.store.get_job)
    return [r for r in robots if r["name"] in failed and not on.on(r)]


class RoboMakerPolicy:
    front_door = None  # RoboMaker's job rows have no frontDoor attribute
    holds_fleet_lock = True  # CreateDeploymentJob takes the fleet's activeJobId lock

    def targets(self, job: Row, ports: Ports) -> Targets | Abort:
        fleet = fleet_store.get_fleet(job["fleetName"])
        if fleet is None or fleet.get("arn") != job["fleet"]:
            return Abort(FailureCode.DEPLOYMENT_FLEET_DOES_NOT_EXIST, f"Fleet {job['fleet']} does not exist.")
        config = job["deploymentApplicationConfigs"][0]
        version = store.get_version(_application_name(config["application"]), config["applicationVersion"])
        if version is None:
            return Abort(
                FailureCode.ROBOT_APPLICATION_DOES_NOT_EXIST,
                f"Robot application {config['application']} version {config['applicationVersion']} "
                "does not exist.",
            )
        # A source without an ETag (its bundle was missing when versioned) is stored without one.
        sources = {
            s["architecture"]: {
                "s3Bucket": s["s3Bucket"],
                "s3Key": s["s3Key"],
                **({"etag": s["etag"]} if s.get("etag") is not None else {}),
            }
            for s in version.get("sources", [])
            if s.get("architecture")
        }
        robots = sorted(fleet_store.registered_robots(job["fleetName"]), key=lambda r: r["name"])
        if job.get("retryOf"):
            robots = _retry_targets(job, robots, ports)
        elif job.get("rollbackTo"):
            on = OnDeployment(deployment_of(job), ports.store.get_job)
            robots = [r for r in robots if not on.on(r)]
        elif job.get("syncOf"):
            in_sync = _in_sync_arns(job, ports)
            robots = [
                r
                for r in robots
                if not (r.get("status") == "InSync" and r.get("lastDeploymentJob") in in_sync)
            ]
        releasable: list[Row] = []
        failed: list[tuple[Row, FailureCode, str]] = []
        for robot in robots:
            architecture = robot.get("architecture")
            if not architecture:
                failed.append(
                    (
                        robot,
                        FailureCode.MISSING_ROBOT_ARCHITECTURE,
                        f"Robot {robot['name']} has no architecture.",
                    )
                )
            elif architecture not in sources:
                reason = (
                    f"Robot application version {config['applicationVersion']} has no source for "
                    f"architecture {architecture}."
                )
                failed.append((robot, FailureCode.MISSING_ROBOT_APPLICATION_ARCHITECTURE, reason))
            else:
                releasable.append(robot)
        return Targets(robots=robots, releasable=releasable, failed=failed, sources=sources)

    def plan(self, job: Row, robot_names: list[str], target_count: int) -> Plan:
        percentage = _config(job).get("concurrentDeploymentPercentage")
        return Plan(waves=plan_waves(robot_names, wave_size(target_count, percentage)))

    def next_batch(
        self, job: Row, batch: int, notified: int, succeeded: int, remaining: int
    ) -> dict[str, Any]:
        raise NotImplementedError("RoboMaker plans its waves when the job is prepared")

    def robot_timeout_seconds(self, job: Row) -> int:
        return int(_config(job).get("robotDeploymentTimeoutInSeconds") or DEFAULT_ROBOT_TIMEOUT_SECONDS)

    def wave_timeout_seconds(self, job: Row, wave: int, time_scale: float) -> int:
        # A wave lasts until its robots finished, at most the robot timeout.
        return scaled_seconds(self.robot_timeout_seconds(job), time_scale)

    def robot_seconds(self, job: Row, wave_timeout_seconds: int, time_scale: float) -> int:
        # The robots of a wave have as long as the wave waits (the job's 30 days may shorten both).
        return wave_timeout_seconds

    def breach(self, job: Row, totals: dict[str, int]) -> str | None:
        return self._breach(job, totals["failedCount"] + totals["noResponseCount"])

    @staticmethod
    def _breach(job: Row, failed: int) -> str | None:
        targeted = int(job.get("targetCount", 0))
        threshold = _config(job).get("failureThresholdPercentage")
        return (
            threshold_reason(failed, targeted, threshold)
            if threshold_breached(failed, targeted, threshold)
            else None
        )

    def commands(self, release: Release, ports: Ports) -> list[tuple[str, DeploymentCommand]]:
        from fleetwave_service.engine.messages import DeploymentCommand, LaunchConfig

        job = release.job
        config = job["deploymentApplicationConfigs"][0]
        # One presigned URL per architecture per wave, not per robot.
        bundles = {
            architecture: bundle_link(architecture, source, ports.signer)
            for architecture, source in (job.get("resolvedSources") or {}).items()
        }
        download_condition = download_condition_link(job, ports.signer)
        launch = LaunchConfig(**config["launchConfig"]) if config.get("launchConfig") else None
        return [
            (
                member["robotName"],
                DeploymentCommand(
                    jobId=job["id"],
                    attempt=release.attempt,
                    application=config["application"],
                    applicationVersion=config["applicationVersion"],
                    bundle=bundles[member["architecture"]],
                    launchConfig=launch,
                    downloadCondition=download_condition,
                    timeoutSeconds=release.timeout_seconds,
                    deadline=release.deadline,
                    issuedAt=release.issued_at,
                ),
            )
            for member in release.members
        ]

    def sweep(self, job: Row, wave: int, now: float, ports: Ports) -> Sweep:
        unfinished = ("Deploying", "PendingNewDeployment")
        return Sweep(
            rows=[
                r
                for r in ports.store.wave_robot_deployments(job["id"], wave)
                if r.get("status") in unfinished
            ],
            from_statuses=unfinished,
            reason="The robot did not finish within the robot deployment timeout.",
            recount=True,
            wave_status="TimedOut",
        )

    def wave_end(self, job: Row, wave: int, ports: Ports) -> WaveEnd | None:
        if int(job.get("currentWave", 0)) != wave:
            return None
        wave_row = ports.store.get_wave(job["id"], wave) or {}
        succeeded = int(wave_row.get("succeededCount", 0))
        failed = int(wave_row.get("failedCount", 0)) + int(wave_row.get("noResponseCount", 0))
        complete = succeeded + failed >= int(wave_row.get("size", 0))
        # The job's counters hold everything before this wave (evaluate wrote them before releasing it).
        failed_so_far = int(job.get("failedCount", 0)) + int(job.get("noResponseCount", 0)) + failed
        return WaveEnd(wave, complete, self._breach(job, failed_so_far) is not None)

    def gate(self, job: Row, wave: int) -> Gate | None:
        approval = _config(job).get("approval")
        if not approval or wave < 2 or (approval["after"] == "FirstWave" and wave != 2):
            return None
        return Gate(
            timeout_seconds=int(approval.get("timeoutInSeconds") or DEFAULT_APPROVAL_TIMEOUT_SECONDS),
            on_timeout=_ON_TIMEOUT[approval.get("onTimeout") or DEFAULT_APPROVAL_ON_TIMEOUT],
        )

    def finished(self, job: Row, status: str, ports: Ports) -> None:
        fleet_store.finish_deployment(
            job.get("fleetName"),
            job["id"],
            {
                "lastDeploymentStatus": status,
                "lastDeploymentJob": job["arn"],
                "lastDeploymentTime": job["createdAt"],
            },
        )

    def target_arn(self, job: Row) -> str:
        return job["fleet"]

    def links(self, job: Row, architecture: str | None, ports: Ports) -> Links:
        source = (job.get("resolvedSources") or {}).get(architecture)
        if source is None:
            return Links(refused=f"job {job['id']} has no bundle for architecture {architecture}")
        return Links(
            bundle=bundle_link(architecture, source, ports.signer),
            download_condition=download_condition_link(job, ports.signer),
        )
