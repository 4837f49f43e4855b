"""Robot status reports, applied exactly once in effect, and the wave completion that ends a wave's wait.

A report changes a robot's row only while that row is Deploying, for the robot's live attempt, with a newer
``seq`` than any applied before, a step that does not go backwards, and before the deadline the service gave
the robot. Everything else (duplicates, out-of-order or stale reports, reports after a timeout, for another
job, or from a robot the job does not target) changes nothing and is logged. The conditional write is the
authority; the checks before it only make the log say why.

Counters move only after a transition into a terminal state. When the job's policy reads the wave as
over (complete, or the failure criteria already breached) the report that noticed claims the wave's task
token with a conditional write, so exactly one SendTaskSuccess is sent per wave.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids
from fleetwave_service.engine.messages import (
    FAILURE_CODES,
    STEP_ORDER,
    FailureCode,
    ProgressStep,
    RobotReportStatus,
    StatusReport,
)
from fleetwave_service.engine.policy import policy_for
from fleetwave_service.engine.ports import Ports

logger = Logger(service="fleetwave-rollout", child=True)


class ReportOutcome(StrEnum):
    PROGRESS = "progress"
    FINISHED = "finished"
    UNKNOWN_ROBOT = "unknown robot or job"
    NOT_DEPLOYING = "robot not deploying"
    STALE_ATTEMPT = "stale attempt"
    DUPLICATE = "duplicate or out of order"
    STEP_BACKWARDS = "step out of order"
    LATE = "after the robot's deadline"
    CAME_BACK = "robot came back after its timeout"
    LOST_RACE = "superseded by a concurrent update"


def _failure_code(report: StatusReport) -> tuple[str, str | None]:
    """The robot's own code when it is one of the API's, else a generic one (its code kept in the text)."""
    code = report.failureCode
    if code in FAILURE_CODES and code not in (
        FailureCode.FAILURE_THRESHOLD_BREACHED,
        FailureCode.FLEET_DEPLOYMENT_TIMEOUT,
    ):
        return code, report.failureReason
    prefix = f"{code}: " if code else ""
    return FailureCode.GREENGRASS_DEPLOYMENT_FAILED.value, (prefix + (report.failureReason or ""))[
        :1024
    ] or None


def _progress(report: StatusReport) -> dict[str, Any]:
    progress: dict[str, Any] = {
        "currentProgress": report.step.value,
        "percentDone": float(report.percentDone),
    }
    if report.estimatedTimeRemainingSeconds is not None:
        progress["estimatedTimeRemainingSeconds"] = report.estimatedTimeRemainingSeconds
    return progress


def handle_report(robot_name: str, report: StatusReport, ports: Ports) -> ReportOutcome:
    """Apply one robot's report (robot name from the topic, never from the payload).

    The conditional write goes first (no read before it: one request for a progress report); only a report
    it rejects is read back, to log why.
    """
    store = ports.store
    now = ids.now()
    step_index = STEP_ORDER[report.step.value]
    exactly_once = {"attempt": report.attempt, "seq": report.seq, "stepIndex": step_index}

    if report.status is RobotReportStatus.DEPLOYING:
        if store.update_robot_progress(
            report.jobId,
            robot_name,
            attempt=report.attempt,
            seq=report.seq,
            step_index=step_index,
            progress=_progress(report),
            now=now,
        ):
            return ReportOutcome.PROGRESS
        return _ignored(robot_name, report, step_index, now, ports)

    fields: dict[str, Any] = {
        "deploymentFinishTime": now,
        "seq": report.seq,
        "stepIndex": step_index,
        "lastReportAt": now,
    }
    if report.status is RobotReportStatus.IN_SYNC:
        status = "InSync"
        fields["progressDetail"] = {
            "currentProgress": ProgressStep.FINISHED.value,
            "percentDone": 100.0,
            "estimatedTimeRemainingSeconds": 0,
        }
    else:
        status = "Failed"
        code, reason = _failure_code(report)
        fields.update({"failureCode": code, "failureReason": reason, "progressDetail": _progress(report)})
    if report.components:
        # Greengrass: per-component results, shown by ListEffectiveDeployments.
        fields["componentResults"] = {
            name: result.model_dump(exclude_none=True) for name, result in report.components.items()
        }
    row = store.finish_robot(
        report.jobId, robot_name, status=status, fields=fields, report=exactly_once, now=now
    )
    if row is None:
        outcome = _ignored(robot_name, report, step_index, now, ports)
        if outcome is ReportOutcome.NOT_DEPLOYING and _came_back(robot_name, report, status, fields, ports):
            return ReportOutcome.CAME_BACK
        return outcome
    wave = int(row.get("wave", 0))
    _record_on_robot(report.jobId, robot_name, status, ports)
    logger.info(
        "robot finished",
        extra={
            "robot": robot_name,
            "jobId": report.jobId,
            "status": status,
            "wave": wave,
            "failureCode": fields.get("failureCode"),
        },
    )
    complete_wave_if_done(report.jobId, wave, ports)
    return ReportOutcome.FINISHED


def _ignored(
    robot_name: str, report: StatusReport, step_index: int, now: float, ports: Ports
) -> ReportOutcome:
    """Why the conditional write rejected a report (logged), and the redelivery case that still needs work."""
    row = ports.store.get_robot_deployment(report.jobId, robot_name)
    if row is None:
        outcome = ReportOutcome.UNKNOWN_ROBOT
    elif row.get("status") != "Deploying":
        outcome = ReportOutcome.NOT_DEPLOYING
    elif int(row.get("attempt", 0)) != report.attempt:
        outcome = ReportOutcome.STALE_ATTEMPT
    elif int(row.get("seq", -1)) >= report.seq:
        outcome = ReportOutcome.DUPLICATE
    elif int(row.get("stepIndex", -1)) > step_index:
        outcome = ReportOutcome.STEP_BACKWARDS
    elif float(row.get("deadline", 0)) <= now:
        outcome = ReportOutcome.LATE
    else:
        outcome = ReportOutcome.LOST_RACE
    logger.info(
        "report ignored",
        extra={
            "robot": robot_name,
            "jobId": report.jobId,
            "attempt": report.attempt,
            "seq": report.seq,
            "step": report.step.value,
            "reportStatus": report.status.value,
            "why": outcome.value,
            "rowStatus": (row or {}).get("status"),
        },
    )
    if (
        row is not None
        and outcome is ReportOutcome.NOT_DEPLOYING
        and row.get("attempt") == report.attempt
        and row.get("status") in ("InSync", "Failed")
    ):
        # A redelivered final report: its transition was applied, but what follows it may not have
        # finished (SendTaskSuccess failed and SQS redelivered the record). Both steps are idempotent.
        # (A NoResponse row never came from a report: the sweep wrote it, and the robot's own row too.)
        _record_on_robot(report.jobId, robot_name, row["status"], ports)
        complete_wave_if_done(report.jobId, int(row.get("wave", 0)), ports)
    return outcome


# A job's ARN, fleet and creation time never change: remembered per warm container, so a final report
# costs no job read.
_JOB_IDENTITY: dict[str, tuple[str, str, Any]] = {}


def _job_identity(job_id: str, ports: Ports) -> tuple[str, str, Any] | None:
    identity = _JOB_IDENTITY.get(job_id)
    if identity is None:
        job = ports.store.get_job(job_id) or {}
        if not job.get("fleetName"):
            return None
        identity = (job["arn"], job["fleetName"], job.get("createdAt"))
        if len(_JOB_IDENTITY) > 1000:
            _JOB_IDENTITY.clear()
        _JOB_IDENTITY[job_id] = identity
    return identity


def _record_on_robot(job_id: str, robot_name: str, status: str, ports: Ports) -> None:
    """The robot's own status follows its deployment's outcome while this job is its last deployment."""
    identity = _job_identity(job_id, ports)
    if identity is None:
        return
    job_arn, fleet_name, _ = identity
    ports.store.update_robot_entity(robot_name, fleet_name, {"status": status}, job_arn)


def _came_back(
    robot_name: str, report: StatusReport, status: str, fields: dict[str, Any], ports: Ports
) -> bool:
    """A robot that timed out (NoResponse) ran the retained command when it came back online.

    The job's history stays as it ended (its row, counters and summary keep NoResponse); only the robot's
    own status takes the outcome, and only while this job is still the robot's last deployment and the
    robot still shows NoResponse from it: a duplicate, or a report of an older job, changes nothing.
    """
    row = ports.store.get_robot_deployment(report.jobId, robot_name)
    if row is None or row.get("status") != "NoResponse" or int(row.get("attempt", 0)) != report.attempt:
        return False
    identity = _job_identity(report.jobId, ports)
    if identity is None:
        return False
    job_arn, fleet_name, created_at = identity
    settled = ports.store.settle_robot_after_timeout(
        robot_name, fleet_name, job_arn, {"status": status, "lastDeploymentTime": created_at}
    )
    if settled:
        logger.info(
            "robot came back after its timeout",
            extra={
                "robot": robot_name,
                "jobId": report.jobId,
                "status": status,
                "failureCode": fields.get("failureCode"),
            },
        )
    return settled


def complete_wave_if_done(job_id: str, wave: int, ports: Ports) -> bool:
    """End the wave's wait when the job's policy reads it as over: all its robots finished, or the failure
    criteria already breached. True: SendTaskSuccess sent."""
    store = ports.store
    job = store.get_job(job_id)
    if job is None or job.get("status") != "InProgress" or not job.get("waveToken"):
        return False
    end = policy_for(job).wave_end(job, wave, ports)
    if end is None or not (end.complete or end.breached):
        return False
    token = store.claim_wave_token(job_id, end.wave)
    if token is None:
        return False  # someone else ended this wave's wait (another report, sweep, cancel)
    output = {"wave": end.wave, "complete": end.complete, "thresholdBreached": end.breached}
    try:
        sent = ports.tokens.succeed(token, output)
    except Exception:
        # Put the token back so the retried report (SQS redelivery) can claim it again.
        store.restore_wave_token(job_id, end.wave, token)
        raise
    logger.info("wave wait ended", extra={"jobId": job_id, **output, "sent": sent})
    return sent
