"""Deployment jobs: create, sync, describe, list and cancel (seeds 000 and 001).

Creating a job writes the job, its client request token and the fleet's job lock in one DynamoDB
transaction (robomaker/store.py create_with_lock), then starts the rollout. See docs/decisions.md for why this
is not Powertools' idempotent_function. The extension operations that create jobs (RetryDeploymentJob,
RollbackFleet: robomaker/control.py) go through the same ``request_hash`` / ``replay`` / ``new_job`` /
``create_and_start``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids, listing
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import (
    ConcurrentDeploymentError,
    IdempotentParameterMismatchError,
    InternalServerError,
    InvalidParameterError,
    LimitExceededError,
    ResourceNotFoundError,
)
from fleetwave_service.core.settings import get_settings
from fleetwave_service.core.wire import ACTIVE_JOB_STATUSES, DeploymentStatus
from fleetwave_service.engine import starter
from fleetwave_service.engine.cancel import notify_rollout_canceled
from fleetwave_service.engine.ports import get_ports
from fleetwave_service.engine.rules import DEFAULT_APPROVAL_ON_TIMEOUT, DEFAULT_APPROVAL_TIMEOUT_SECONDS
from fleetwave_service.fleet import lookup as fleet_lookup
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.robomaker import lookup, models, store
from fleetwave_service.robomaker.store import CreateOutcome

logger = Logger(service="fleetwave", child=True)

DEFAULT_PAGE_SIZE = 200
_STATUSES = DeploymentStatus.__args__  # type: ignore[attr-defined]
CREATE = "CreateDeploymentJob"
SYNC = "SyncDeploymentJob"
# Who a job's verbs apply to (CancelDeploymentJob, and the extension operations).
ONLY_ACTIVE = "only Pending, Preparing or InProgress jobs"


# --- create and sync ------------------------------------------------------------------------------


def create_deployment_job(request: models.CreateDeploymentJobRequest) -> models.CreateDeploymentJobResponse:
    hashed = request_hash(CREATE, request.model_dump(mode="json"))
    replayed = replay(request.clientRequestToken, hashed)
    if replayed is None:
        fleet = fleet_lookup.fleet(request.fleet)
        config = request.deploymentApplicationConfigs[0]
        lookup.application_version(
            config.application, config.applicationVersion, field="deploymentApplicationConfigs[0].application"
        )
        job = new_job(
            fleet,
            [config.model_dump(mode="json")],
            stored_deployment_config(request.deploymentConfig),
            tags=request.tags or {},
        )
        replayed = create_and_start(job, request.clientRequestToken, CREATE, hashed)
    return models.CreateDeploymentJobResponse.model_validate(replayed)


def stored_deployment_config(config: models.DeploymentConfig | None) -> dict[str, Any]:
    """The deploymentConfig a job stores and returns: as requested, with the defaults it runs with filled
    in (robotDeploymentTimeoutInSeconds; an approval gate's timeout and what happens then)."""
    stored = config.model_dump(mode="json") if config else {}
    stored.setdefault("robotDeploymentTimeoutInSeconds", models.DEFAULT_ROBOT_DEPLOYMENT_TIMEOUT_SECONDS)
    if "approval" in stored:
        stored["approval"].setdefault("timeoutInSeconds", DEFAULT_APPROVAL_TIMEOUT_SECONDS)
        stored["approval"].setdefault("onTimeout", DEFAULT_APPROVAL_ON_TIMEOUT)
    return stored


def sync_deployment_job(request: models.SyncDeploymentJobRequest) -> models.DeploymentJob:
    """A new job with the fleet's latest job's configuration, for the robots not InSync with it."""
    hashed = request_hash(SYNC, request.model_dump(mode="json"))
    replayed = replay(request.clientRequestToken, hashed)
    if replayed is None:
        fleet = fleet_lookup.fleet(request.fleet)
        previous = store.latest_for_fleet(fleet["name"])
        if previous is None:
            raise InvalidParameterError(f"fleet: {fleet['name']} has no deployment to sync")
        config = previous["deploymentApplicationConfigs"][0]
        lookup.application_version(config["application"], config["applicationVersion"])
        job = new_job(
            fleet,
            previous["deploymentApplicationConfigs"],
            previous.get("deploymentConfig") or {},
            tags={},
            syncOf=previous["id"],
        )
        replayed = create_and_start(job, request.clientRequestToken, SYNC, hashed)
    return models.DeploymentJob.model_validate(replayed)


def request_hash(operation: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"operation": operation, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(token: str, hashed: str) -> Row | None:
    """The job an earlier identical request created with this token, or None if the token is unused."""
    token_row = store.get_token(token)
    if token_row is None:
        return None
    if token_row["requestHash"] != hashed:
        raise IdempotentParameterMismatchError(
            "clientRequestToken: the token was already used for a different request"
        )
    job = store.get_job(token_row["jobId"])
    if job is None:  # pragma: no cover - the token row expires with its job
        return None
    if job["status"] == "Pending":
        # The first request may have died between storing the job and starting it; starting again is safe.
        _start(job)
        job = store.get_job(job["id"]) or job
    return job


def new_job(
    fleet: Row,
    application_configs: list[dict[str, Any]],
    deployment_config: dict[str, Any],
    tags: dict[str, str],
    **links: str,
) -> Row:
    """A Pending job row; ``links`` name the job it comes from (``syncOf``: an id; the extensions'
    ``retryOf``, ``rollbackFrom``, ``rollbackTo``: ARNs)."""
    created_at = ids.now()
    job_id = ids.new_job_id()
    return {
        "id": job_id,
        "arn": ids.deployment_job_arn(job_id),
        "fleet": fleet["arn"],
        "fleetName": fleet["name"],
        "status": "Pending",
        "createdAt": created_at,
        "expiresAt": ids.expires_at(created_at),
        "deploymentApplicationConfigs": application_configs,
        "deploymentConfig": deployment_config,
        "tags": tags,
        **links,
    }


def create_and_start(
    job: Row, token: str, operation: str, hashed: str, also: list[dict[str, Any]] | None = None
) -> Row:
    """Store the job with its token and the fleet's lock (and ``also``: updates of other rows, in the same
    transaction), then start its rollout; an identical earlier request's job instead, if there is one."""
    limit = get_settings().max_concurrent_jobs
    if fleet_store.count_active_jobs() >= limit:
        raise LimitExceededError(f"this deployment allows at most {limit} concurrent deployment jobs")
    job["clientRequestToken"] = token
    token_row = {
        "clientRequestToken": token,
        "operation": operation,
        "requestHash": hashed,
        "jobId": job["id"],
        "createdAt": job["createdAt"],
        "expiresAt": job["expiresAt"],
    }
    outcome = store.create_with_lock(job, token_row, also)
    if outcome is CreateOutcome.TOKEN_TAKEN:
        # An identical request got in first (both callers get its job), or a different one did (mismatch).
        winner = replay(token, hashed)
        if winner is None:  # pragma: no cover - the token row that blocked us is readable (consistent read)
            raise InternalServerError("the request could not be completed; try again")
        return winner
    if outcome is CreateOutcome.FLEET_BUSY:
        fleet = fleet_store.get_fleet(job["fleetName"])
        if fleet is None or fleet["arn"] != job["fleet"]:
            raise ResourceNotFoundError(f"fleet {job['fleet']} does not exist")
        raise ConcurrentDeploymentError(
            f"fleet {job['fleetName']} already has an active deployment job ({fleet.get('activeJobId')})"
        )
    logger.info("deployment job created", extra={"job_id": job["id"], "fleet": job["fleetName"]})
    _start(job)
    return job


def _start(job: Row) -> None:
    """Start the rollout; if that fails the job is Failed at once, never left Pending."""
    try:
        starter.start_rollout(job["id"])
    except Exception as error:
        logger.exception("rollout start failed", extra={"job_id": job["id"]})
        reason = f"The rollout could not be started ({type(error).__name__})."
        if get_ports().store.update_status(
            job["id"], "Failed", ("Pending",), {"failureCode": "InternalServerError", "failureReason": reason}
        ):
            fleet_store.release_job_lock(job["fleetName"], job["id"], _last_deployment(job, "Failed"))
        raise InternalServerError("the deployment job could not be started and is marked Failed") from error


def _last_deployment(job: Row, status: str) -> dict[str, Any]:
    return {
        "lastDeploymentStatus": status,
        "lastDeploymentJob": job["arn"],
        "lastDeploymentTime": job["createdAt"],
    }


# --- read -----------------------------------------------------------------------------------------


def describe_deployment_job(request: models.JobRequest) -> models.DescribeDeploymentJobResponse:
    job = lookup.job(request.job)
    return models.DescribeDeploymentJobResponse.model_validate(
        dict(job, robotDeploymentSummary=store.robot_deployments(job["id"]))
    )


def list_deployment_jobs(request: models.ListDeploymentJobsRequest) -> models.ListDeploymentJobsResponse:
    rows, token = listing.status_or_fleet_page(
        request,
        "ListDeploymentJobs",
        _STATUSES,
        "deployment job status",
        store.list_jobs_page,
        DEFAULT_PAGE_SIZE,
    )
    return models.ListDeploymentJobsResponse(
        deploymentJobs=[models.DeploymentJob.model_validate(row) for row in rows], nextToken=token
    )


# --- cancel ---------------------------------------------------------------------------------------


def cancel_deployment_job(request: models.JobRequest) -> None:
    """Pending/Preparing/InProgress -> Canceled; Canceled again is fine; Succeeded/Failed is a 400."""
    _cancel(lookup.job(request.job))


def cancel_for_fleet_deletion(fleet: Row) -> None:
    """A fleet is being deleted (fleet.events.fleet_deleting): cancel the job that holds its lock; a lock
    left by a job that already ended is just released."""
    job_id = fleet.get("activeJobId")
    if not job_id:
        return
    job = store.get_job(job_id)
    if job is None or job["status"] not in ACTIVE_JOB_STATUSES:
        fleet_store.release_job_lock(fleet["name"], job_id)
        return
    _cancel(job)


def require_active(job: Row, verb: str) -> None:
    """InvalidParameterException (400) for a job that has finished: only an active one can be ``verb``."""
    if job["status"] not in ACTIVE_JOB_STATUSES:
        raise InvalidParameterError(
            f"job: deployment job {job['id']} is {job['status']}; {ONLY_ACTIVE} can be {verb}"
        )


def _cancel(job: Row) -> None:
    while True:
        if job["status"] == "Canceled":
            return
        require_active(job, "canceled")
        if get_ports().store.update_status(
            job["id"], "Canceled", ACTIVE_JOB_STATUSES, {"finishedAt": ids.now()}
        ):
            fleet_store.release_job_lock(job["fleetName"], job["id"], _last_deployment(job, "Canceled"))
            notify_rollout_canceled(dict(job, status="Canceled"))
            logger.info("deployment job canceled", extra={"job_id": job["id"]})
            return
        # The engine moved the job meanwhile: decide again on its current status.
        current = store.get_job(job["id"])
        if current is None:  # pragma: no cover - expired between two reads
            raise ResourceNotFoundError(f"deployment job {job['arn']} does not exist")
        job = current
