"""Fleetwave's extension operations on RoboMaker deployment jobs (docs/extensions.md): approve the wave an
approval gate holds, pause and resume a rollout, retry a job's failed robots, roll a fleet back.

Same conventions as the RoboMaker operations: ``POST /<lowerCamelOperation>``, job and fleet named by ARN,
RoboMaker's error names. A request on a job that has finished is an InvalidParameterException, as
CancelDeploymentJob's is. Retry and rollback create a normal deployment job, idempotent per
``clientRequestToken`` like CreateDeploymentJob (robomaker/jobs.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools import Logger

from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import InvalidParameterError
from fleetwave_service.core.wire import ACTIVE_JOB_STATUSES
from fleetwave_service.engine import control, job_events
from fleetwave_service.engine.ports import get_ports
from fleetwave_service.fleet import lookup as fleet_lookup
from fleetwave_service.robomaker import jobs, lookup, models, store
from fleetwave_service.robomaker.deployments import deployment_of, job_id

logger = Logger(service="fleetwave", child=True)

RETRY = "RetryDeploymentJob"
ROLLBACK = "RollbackFleet"


# --- approval gates, pause, resume -----------------------------------------------------------------


def approve_deployment_wave(
    request: models.ApproveDeploymentWaveRequest,
) -> models.ApproveDeploymentWaveResponse:
    """Release the wave an approval gate holds back (or approve a later one ahead of time)."""
    job = lookup.job(request.job)
    approval = (job.get("deploymentConfig") or {}).get("approval")
    if not approval:
        raise InvalidParameterError(
            f"job: deployment job {job['id']} has no approval gates (deploymentConfig.approval)"
        )
    jobs.require_active(job, "approved")
    wave = request.wave
    if wave is None:
        waiting = job.get("waitingForApproval")
        if not waiting:
            raise InvalidParameterError(
                f"job: deployment job {job['id']} is not waiting for an approval; name the wave to approve "
                "it ahead of time"
            )
        wave = int(waiting["wave"])
    elif approval["after"] == "FirstWave" and wave != 2:
        raise InvalidParameterError(
            f"wave: only wave 2 has an approval gate (approval after FirstWave), not {wave}"
        )
    elif job.get("waveCount") is not None and wave > int(job["waveCount"]):
        raise InvalidParameterError(
            f"wave: deployment job {job['id']} has {job['waveCount']} waves, not {wave}"
        )
    if control.approve_wave(job, wave) is control.Outcome.FINISHED:
        _finished_meanwhile(job, "approved")
    return models.ApproveDeploymentWaveResponse(job=job["arn"], wave=wave)


def pause_deployment_job(request: models.JobRequest) -> None:
    """No further wave is released until ResumeDeploymentJob; robots in flight finish. Pausing a paused
    job changes nothing."""
    job = lookup.job(request.job)
    jobs.require_active(job, "paused")
    if control.pause(job) is control.Outcome.FINISHED:
        _finished_meanwhile(job, "paused")


def resume_deployment_job(request: models.JobRequest) -> None:
    """Release waves again; resuming a job that is not paused changes nothing."""
    job = lookup.job(request.job)
    jobs.require_active(job, "resumed")
    if control.resume(job) is control.Outcome.FINISHED:
        _finished_meanwhile(job, "resumed")


def _finished_meanwhile(job: Row, verb: str) -> None:
    """The job finished between the lookup and the write: the same answer as if it had been before."""
    current = store.get_job(job["id"]) or dict(job, status="Canceled")
    jobs.require_active(current, verb)


# --- retry the failed ---------------------------------------------------------------------------


def retry_deployment_job(request: models.RetryDeploymentJobRequest) -> models.DeploymentJob:
    """A new job, linked to the one it retries (``retryOf`` / ``retriedBy``), with its deployment and its
    deploymentConfig (waves, threshold, timeouts, gates), for its Failed and NoResponse robots only."""
    hashed = jobs.request_hash(RETRY, request.model_dump(mode="json"))
    replayed = jobs.replay(request.clientRequestToken, hashed)
    if replayed is None:
        original = lookup.job(request.job)
        if original["status"] in ACTIVE_JOB_STATUSES:
            raise InvalidParameterError(
                f"job: deployment job {original['id']} is {original['status']}; a job can be retried once it "
                "has finished"
            )
        # Finalize records how many robots ended Failed, NoResponse or not released; until it has, go on.
        if "notReleasedCount" in original and not _robots_to_retry(original):
            raise InvalidParameterError(
                f"job: deployment job {original['id']} has no Failed or NoResponse robots"
            )
        fleet = fleet_lookup.fleet(original["fleet"], field="job")
        latest = store.latest_for_fleet(fleet["name"])
        if latest is not None and latest["id"] != original["id"]:
            raise InvalidParameterError(
                f"job: only the latest deployment job of fleet {fleet['name']} can be retried, which is "
                f"{latest['arn']}"
            )
        config = original["deploymentApplicationConfigs"][0]
        lookup.application_version(config["application"], config["applicationVersion"], field="job")
        job = jobs.new_job(
            fleet,
            original["deploymentApplicationConfigs"],
            original.get("deploymentConfig") or {},
            tags={},
            retryOf=original["arn"],
        )
        link = store.retry_link(original["id"], job["arn"])
        replayed = jobs.create_and_start(job, request.clientRequestToken, RETRY, hashed, also=[link])
    return models.DeploymentJob.model_validate(replayed)


def _robots_to_retry(job: Row) -> int:
    return sum(int(job.get(name, 0)) for name in ("failedCount", "noResponseCount", "notReleasedCount"))


# --- roll the fleet back -----------------------------------------------------------------------


def rollback_fleet(request: models.RollbackFleetRequest) -> models.DeploymentJob:
    """A normal job that deploys the fleet's previous successful deployment (application version and
    launch config) to every robot of the fleet not on it."""
    hashed = jobs.request_hash(ROLLBACK, request.model_dump(mode="json"))
    replayed = jobs.replay(request.clientRequestToken, hashed)
    if replayed is None:
        fleet = fleet_lookup.fleet(request.fleet)
        history = store.fleet_jobs(fleet["name"])
        latest = next(history, None)
        target = _previous_success(latest, history) if latest is not None else None
        if latest is None or target is None:
            raise InvalidParameterError(
                f"fleet: {fleet['name']} has no earlier successful deployment to roll back to"
            )
        config = target["deploymentApplicationConfigs"][0]
        lookup.application_version(config["application"], config["applicationVersion"], field="fleet")
        deployment_config = (
            jobs.stored_deployment_config(request.deploymentConfig)
            if request.deploymentConfig is not None
            else target.get("deploymentConfig") or {}
        )
        job = jobs.new_job(
            fleet,
            target["deploymentApplicationConfigs"],
            deployment_config,
            tags={},
            rollbackFrom=latest["arn"],
            rollbackTo=target["arn"],
        )
        replayed = jobs.create_and_start(job, request.clientRequestToken, ROLLBACK, hashed)
        if replayed["id"] == job["id"]:
            job_events.publish(
                job,
                job_events.ROLLBACK_STARTED,
                {
                    "rollbackFrom": latest["arn"],
                    "rollbackTo": target["arn"],
                    "application": config["application"],
                    "applicationVersion": config["applicationVersion"],
                },
                get_ports(),
            )
            logger.info(
                "fleet rollback started",
                extra={"job_id": job["id"], "fleet": fleet["name"], "rollbackTo": target["arn"]},
            )
    return models.DeploymentJob.model_validate(replayed)


def _previous_success(latest: Row, older: Iterable[Row]) -> Row | None:
    """The newest Succeeded job (after ``latest``, newest first) whose deployment is neither the fleet's
    current one nor one a rollback already went back from: RollbackFleet again goes one step further back,
    never forth."""
    skipped = {deployment_of(latest)}
    for job in (latest, *older):
        if job.get("rollbackFrom"):
            left_id = job_id(job["rollbackFrom"])
            left = store.get_job(left_id) if left_id else None
            if left is not None:
                skipped.add(deployment_of(left))
        if job is latest or deployment_of(job) in skipped:
            continue
        current = store.get_job(job["id"])  # the index lags the table
        if current is not None and current["status"] == "Succeeded":
            return current
    return None
