"""Robot status reports, applied exactly once in effect, a batch at a time, and the wave completion that ends
a wave's wait.

A report changes a robot's row only while that row is Deploying, for the robot's live attempt, with a newer
``seq`` than any applied before, a step that does not go backwards, and before the deadline the service gave
the robot. Everything else (duplicates, out-of-order or stale reports, reports after a timeout, for another
job, or from a robot the job does not target) changes nothing and is logged.

The status Lambda receives reports in SQS batches (up to 100), and applies them as a batch:

- per job, the rows of the batch's robots are read in one request;
- per robot, its reports in the batch are played in ``seq`` order against its row, under the rules above,
  in memory; only the outcome is written, with one conditional write whose condition is those same rules
  (the write, not the read, is the authority: a row that changed since the read fails it, and the robot is
  read and played again). Duplicates and reports superseded within the batch cost nothing;
- robots that finished are counted on their wave's counters with one update per wave, and the wave's end is
  checked once per batch.

Counters move only after a robot's transition into a terminal state succeeded, which happens once per
robot: a counter never counts a robot twice (engine/store.py ``finish_robot``). When the job's policy reads
the wave as over (complete, or the failure criteria already breached) the batch that noticed claims the
wave's task token with a conditional write, so exactly one SendTaskSuccess is sent per wave.

Partial batch failures: whatever fails while one robot's reports are applied (or while a finished robot's
wave is counted or checked) fails that robot's records only; ``apply_reports`` returns their message ids,
which the handler hands back to SQS, and their redelivery is applied like any report (what was already
applied is a duplicate then). The other robots' changes stand and are not applied again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids
from fleetwave_service.core.dynamo import Row
from fleetwave_service.engine import inbound
from fleetwave_service.engine.inbound import StatusReport
from fleetwave_service.engine.ports import Ports
from fleetwave_service.engine.protocol import (
    FAILURE_CODES,
    STEP_ORDER,
    FailureCode,
    ProgressStep,
    RobotReportStatus,
)
from fleetwave_service.engine.rules import PROGRESS_INTERVAL_SECONDS
from fleetwave_service.engine.store import COUNTER_FOR_STATUS
from fleetwave_service.engine.wave_end import complete_wave_if_done

logger = Logger(service="fleetwave-rollout", child=True)


class ReportOutcome(StrEnum):
    PROGRESS = "progress"
    FINISHED = "finished"
    SUPERSEDED = "superseded by a newer report of the robot in the same batch"
    NOT_WRITTEN = "progress accepted, not written: the robot's last progress was written moments ago"
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


@dataclass(frozen=True)
class Inbound:
    """A report of a batch: its SQS message id, the robot (from the topic, never the payload), the report."""

    message_id: str
    robot: str
    report: StatusReport


@dataclass
class _Played:
    """What playing one robot's reports against its row decided."""

    # (report, what became of it, the row's status it met: as read, or as the batch's earlier reports left it)
    outcomes: list[tuple[Inbound, ReportOutcome, str | None]]
    applied_at: int | None = None  # index in outcomes of the last report accepted: its effect is written

    @property
    def applied(self) -> Inbound | None:
        return None if self.applied_at is None else self.outcomes[self.applied_at][0]

    def mark_applied(self, outcome: ReportOutcome) -> None:
        assert self.applied_at is not None
        item, _, met = self.outcomes[self.applied_at]
        self.outcomes[self.applied_at] = (item, outcome, met)


@dataclass
class _JobBatch:
    """One job's share of a batch, and what it leaves to do once every robot was applied."""

    job_id: str
    failed: set[str] = field(default_factory=set)
    counts: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    finished: list[tuple[str, str]] = field(default_factory=list)  # (robot, status) to record on the robot
    # wave -> message ids of the final reports whose redelivery would check that wave again
    waves: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))


def apply_reports(items: Sequence[Inbound], ports: Ports) -> set[str]:
    """Apply a batch of robot reports (module docstring). Returns the message ids that failed (retry them)."""
    failed: set[str] = set()
    by_job: dict[str, list[Inbound]] = defaultdict(list)
    for item in items:
        by_job[item.report.jobId].append(item)
    for job_id, job_items in by_job.items():
        try:
            failed |= _apply_job(job_id, job_items, ports)
        except Exception:
            logger.exception("reports not applied", extra={"jobId": job_id, "records": len(job_items)})
            failed |= {item.message_id for item in job_items}
    return failed


def handle_report(robot_name: str, report: StatusReport, ports: Ports) -> ReportOutcome:
    """Apply one robot's report on its own (a batch of one); the outcome says what became of it."""
    outcomes: list[ReportOutcome] = []
    failed = _apply_job(report.jobId, [Inbound("single", robot_name, report)], ports, outcomes)
    if failed:
        raise RuntimeError(f"report of {robot_name} for {report.jobId} not applied")
    return outcomes[0]


def _apply_job(
    job_id: str, items: list[Inbound], ports: Ports, outcomes: list[ReportOutcome] | None = None
) -> set[str]:
    batch = _JobBatch(job_id)
    by_robot: dict[str, list[Inbound]] = defaultdict(list)
    for item in items:
        by_robot[item.robot].append(item)
    rows = ports.store.robot_deployments(job_id, by_robot)
    now = ids.now()
    for robot, robot_items in by_robot.items():
        robot_items.sort(key=lambda item: (item.report.attempt, item.report.seq))
        try:
            played = _apply_robot(batch, robot, robot_items, rows.get(robot), now, ports)
        except Exception:
            logger.exception("robot's reports not applied", extra={"robot": robot, "jobId": job_id})
            batch.failed |= {item.message_id for item in robot_items}
            continue
        if outcomes is not None:
            outcomes.extend(outcome for _, outcome, _ in played.outcomes)
    _finish_batch(batch, ports)
    return batch.failed


def _apply_robot(
    batch: _JobBatch, robot: str, items: list[Inbound], row: Row | None, now: float, ports: Ports
) -> _Played:
    store = ports.store
    for _ in range(_RACES):
        played = _play(items, row, now)
        if played.applied is None:
            break
        if not _persists(played.applied.report, row, now, ports):
            played.mark_applied(ReportOutcome.NOT_WRITTEN)
            break
        assert row is not None  # a report is accepted only against a row
        written = _write_or_read_back(batch.job_id, robot, played.applied.report, row, now, ports)
        if written is not None:
            if written.get("status") in COUNTER_FOR_STATUS:
                wave = int(written.get("wave", 0))
                batch.counts[wave][COUNTER_FOR_STATUS[written["status"]]] += 1
                batch.finished.append((robot, written["status"]))
                batch.waves[wave].append(played.applied.message_id)
                _log_finished(batch.job_id, robot, written, wave)
            break
        # The row changed since it was read (another batch, the sweep, finalize): read it, play again.
        row = store.get_robot_deployment(batch.job_id, robot)
    else:
        status = (row or {}).get("status")
        played = _Played([(item, ReportOutcome.LOST_RACE, status) for item in items])
    for index, (item, outcome, met) in enumerate(played.outcomes):
        if outcome in _APPLIED:
            continue
        if outcome is ReportOutcome.NOT_DEPLOYING and row is not None and met == row.get("status"):
            if _came_back(robot, item.report, row, ports):
                played.outcomes[index] = (item, ReportOutcome.CAME_BACK, met)
                continue
            _settled_already(batch, item, row)
        _log_ignored(robot, item.report, outcome, met)
    return played


# A robot's row changing between its read and its write is rare (two batches with reports of one robot at
# once, or the sweep); after this many rounds the reports are logged as lost to the race.
_RACES = 3
_APPLIED = (
    ReportOutcome.PROGRESS,
    ReportOutcome.FINISHED,
    ReportOutcome.SUPERSEDED,
    ReportOutcome.NOT_WRITTEN,
)


def _write_or_read_back(
    job_id: str, robot: str, report: StatusReport, row: Row, now: float, ports: Ports
) -> Row | None:
    """``_write``; when it raises, the write may still have happened (its answer lost, a timeout after
    DynamoDB applied it): a robot's outcome is then read back, and a row that holds exactly this report's
    outcome (its attempt, its seq, a terminal status) counts as written. Otherwise the error stands and the
    robot's records are redelivered. Without this, the redelivered report would find its outcome already
    applied and nobody would count it: the wave would wait for its timeout."""
    try:
        return _write(job_id, robot, report, row, now, ports)
    except Exception:
        if report.status is RobotReportStatus.DEPLOYING:
            raise
        now_row = ports.store.get_robot_deployment(job_id, robot)
        if (
            now_row is not None
            and now_row.get("status") == _terminal_status(report)
            and now_row.get("attempt") == report.attempt
            and now_row.get("seq") == report.seq
        ):
            logger.warning(
                "robot's outcome written, its answer lost: counted",
                extra={"robot": robot, "jobId": job_id, "status": now_row.get("status")},
            )
            return now_row
        raise


def _persists(report: StatusReport, row: Row | None, now: float, ports: Ports) -> bool:
    """Whether an accepted report is written: an outcome always, a progress report when it is the robot's
    first, or when the robot sent it PROGRESS_INTERVAL_SECONDS after the last one written (rules.py; most
    steps take less, and each write is a DynamoDB write per robot per step). Measured on the robot's own
    clock, between its own reports: a status path that runs behind does not turn that into more writes."""
    if report.status is not RobotReportStatus.DEPLOYING:
        return True
    last = (row or {}).get("progressSentAt")
    return (
        last is None or report.sentAt - float(last) >= PROGRESS_INTERVAL_SECONDS * ports.settings.time_scale
    )


def _play(items: list[Inbound], row: Row | None, now: float) -> _Played:
    """Each report against the row as the ones before it (in seq order) left it: accepted or why not."""
    state = dict(row) if row is not None else None
    played = _Played([])
    outcomes = played.outcomes
    for item in items:
        report = item.report
        step_index = STEP_ORDER[report.step.value]
        why = _why_not(state, report, step_index, now)
        met = (state or {}).get("status")
        if why is not None:
            outcomes.append((item, why, met))
            continue
        assert state is not None
        if played.applied_at is not None:
            played.mark_applied(ReportOutcome.SUPERSEDED)
        played.applied_at = len(outcomes)
        terminal = report.status is not RobotReportStatus.DEPLOYING
        outcomes.append((item, ReportOutcome.FINISHED if terminal else ReportOutcome.PROGRESS, met))
        state.update(seq=report.seq, stepIndex=step_index)
        if terminal:
            state["status"] = _terminal_status(report)
    return played


def _why_not(row: Row | None, report: StatusReport, step_index: int, now: float) -> ReportOutcome | None:
    """The exactly-once rules, read off a row: None when they hold. (The write that applies a report then
    holds only while the row is still as read: engine/store.py ``_unchanged``.)"""
    if row is None:
        return ReportOutcome.UNKNOWN_ROBOT
    if row.get("status") != "Deploying":
        return ReportOutcome.NOT_DEPLOYING
    if int(row.get("attempt", 0)) != report.attempt:
        return ReportOutcome.STALE_ATTEMPT
    if int(row.get("seq", -1)) >= report.seq:
        return ReportOutcome.DUPLICATE
    if int(row.get("stepIndex", -1)) > step_index:
        return ReportOutcome.STEP_BACKWARDS
    if float(row.get("deadline", 0)) <= now:
        return ReportOutcome.LATE
    return None


def _terminal_status(report: StatusReport) -> str:
    return "InSync" if report.status is RobotReportStatus.IN_SYNC else "Failed"


def _write(job_id: str, robot: str, report: StatusReport, read: Row, now: float, ports: Ports) -> Row | None:
    """The report's effect, as one write conditional on the row being as ``read`` (engine/store.py
    ``_unchanged``): the row as it is now, or None when it moved since it was read."""
    store = ports.store
    step_index = STEP_ORDER[report.step.value]
    if report.status is RobotReportStatus.DEPLOYING:
        written = store.update_robot_progress(
            job_id,
            robot,
            read=read,
            seq=report.seq,
            step_index=step_index,
            progress=_progress(report),
            now=now,
            sent_at=report.sentAt,
        )
        return {"status": "Deploying"} if written else None
    fields: dict[str, Any] = {
        "deploymentFinishTime": now,
        "seq": report.seq,
        "stepIndex": step_index,
        "lastReportAt": now,
    }
    if report.status is RobotReportStatus.IN_SYNC:
        fields["progressDetail"] = {
            "currentProgress": ProgressStep.FINISHED.value,
            "percentDone": 100.0,
            "estimatedTimeRemainingSeconds": 0,
        }
    else:
        code, reason = _failure_code(report)
        fields.update({"failureCode": code, "failureReason": reason, "progressDetail": _progress(report)})
    if report.components:
        # Greengrass: per-component results, shown by ListEffectiveDeployments.
        fields["componentResults"] = {
            name: inbound.dump(result) for name, result in report.components.items()
        }
    # Counted with the batch's other finished robots, one update per wave (_finish_batch).
    return store.finish_robot(
        job_id, robot, status=_terminal_status(report), fields=fields, read=read, count=False
    )


def _finish_batch(batch: _JobBatch, ports: Ports) -> None:
    """Count the batch's finished robots on their waves, record their outcome on the robots themselves,
    and check each wave they finished in once. A failure fails the records whose redelivery redoes it."""
    store, job_id = ports.store, batch.job_id
    for wave, counts in batch.counts.items():
        try:
            store.add_wave_counts(job_id, wave, counts)
        except Exception:
            # The rows are terminal, the counter is short: the wave then ends on its timeout, whose sweep
            # recounts it from its rows (engine/store.py finish_robot). The redelivery records and checks.
            logger.exception("wave counters not updated", extra={"jobId": job_id, "wave": wave, **counts})
            batch.failed |= set(batch.waves[wave])
    _record_on_robots(job_id, batch.finished, ports)
    for wave, message_ids in batch.waves.items():
        try:
            complete_wave_if_done(job_id, wave, ports)
        except Exception:
            logger.exception("wave end not checked", extra={"jobId": job_id, "wave": wave})
            batch.failed |= set(message_ids)


def _log_finished(job_id: str, robot: str, row: Row, wave: int) -> None:
    logger.info(
        "robot finished",
        extra={
            "robot": robot,
            "jobId": job_id,
            "status": row.get("status"),
            "wave": wave,
            "failureCode": row.get("failureCode"),
        },
    )


def _log_ignored(robot: str, report: StatusReport, outcome: ReportOutcome, row_status: str | None) -> None:
    logger.info(
        "report ignored",
        extra={
            "robot": robot,
            "jobId": report.jobId,
            "attempt": report.attempt,
            "seq": report.seq,
            "step": report.step.value,
            "reportStatus": report.status.value,
            "why": outcome.value,
            "rowStatus": row_status,
        },
    )


def _settled_already(batch: _JobBatch, item: Inbound, row: Row) -> None:
    """A final report for a robot whose row already took this attempt's outcome: a redelivery. Its
    transition was applied, but what follows it may not have finished (SendTaskSuccess failed and SQS
    redelivered the record): record it on the robot and check the wave again; both are idempotent.
    (A NoResponse row never came from a report: the sweep wrote it, and the robot's own row too.)"""
    report = item.report
    if (
        report.status is RobotReportStatus.DEPLOYING
        or row.get("attempt") != report.attempt
        or row.get("status") not in ("InSync", "Failed")
    ):
        return
    batch.finished.append((item.robot, row["status"]))
    batch.waves[int(row.get("wave", 0))].append(item.message_id)


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


def _record_on_robots(job_id: str, finished: list[tuple[str, str]], ports: Ports) -> None:
    """The robots' own status follows their deployment's outcome, and this job becomes their last deployment
    unless a newer job's already is (one update per robot, in parallel: DynamoDB has no batch update)."""
    if not finished:
        return
    identity = _job_identity(job_id, ports)
    if identity is None:
        return
    job_arn, fleet_name, created_at = identity
    ports.store.update_robot_entities(
        [
            (robot, fleet_name, {"status": status}, (job_arn, created_at))
            for robot, status in dict(finished).items()
        ]
    )


def _came_back(robot_name: str, report: StatusReport, row: Row | None, ports: Ports) -> bool:
    """A robot that timed out (NoResponse) ran the retained command when it came back online.

    The job's history stays as it ended (its row, counters and summary keep NoResponse); only the robot's
    own status takes the outcome, and only while this job is still the robot's last deployment and the
    robot still shows NoResponse from it: a duplicate, or a report of an older job, changes nothing.
    """
    if report.status is RobotReportStatus.DEPLOYING:
        return False
    if row is None or row.get("status") != "NoResponse" or int(row.get("attempt", 0)) != report.attempt:
        return False
    status = _terminal_status(report)
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
                "failureCode": report.failureCode,
            },
        )
    return settled
