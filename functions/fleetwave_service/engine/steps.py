"""The rollout engine: the steps the state machine runs (docs/rollout.md).

Each public function is one Lambda step and takes/returns the small JSON state the machine carries
(``jobId`` plus a decision); robot lists never travel through state, they live in DynamoDB.

    prepare -> evaluate -> [release wave -> (sweep on timeout) -> evaluate | hold -> evaluate]* -> finalize

Every step is safe to run twice (Lambda retries, redrive): writes are idempotent or conditional. Where a
front door's rollouts differ (targets, wave plan, batches, commands, sweep), the step asks the job's
policy (engine/policy.py).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.keys import Key, queue_key, robot_deployment_key, wave_key
from fleetwave_service.engine import job_events
from fleetwave_service.engine.cancel import CANCELED_ERROR
from fleetwave_service.engine.policy import Abort, Gate, Release, RolloutPolicy, policy_for
from fleetwave_service.engine.ports import Ports
from fleetwave_service.engine.protocol import FailureCode
from fleetwave_service.engine.rules import JOB_TIMEOUT_SECONDS, scaled_seconds
from fleetwave_service.engine.store import (
    ACTIVE_STATUSES,
    COUNTER_FOR_STATUS,
    HOLD_FOR_APPROVAL,
    HOLD_FOR_PAUSE,
    JobRef,
    plan_chunks,
    queue_members_of,
    releases_in_place,
)
from fleetwave_service.engine.wave_end import complete_wave_if_done

if TYPE_CHECKING:
    from fleetwave_service.engine.messages import AbortCommand

logger = Logger(service="fleetwave-rollout", child=True)
# Why a robot that left the job's fleet (DeregisterRobot) mid-rollout does not deploy it.
DEPARTED_REASON = "The robot was deregistered from the fleet."

# Actions the machine's Choice states route on.
RELEASE = "release"
DONE = "done"
ABORT = "abort"
CANCELED = "canceled"
EVALUATE = "evaluate"
HOLD = "hold"
# What finalize is told happened.
OUTCOME_ERROR = "error"


def _totals(store: Any, job: Row) -> dict[str, int]:
    """Job counters from the wave rows (authoritative) plus robots failed before release."""
    totals = {"succeededCount": 0, "failedCount": int(job.get("prepareFailedCount", 0)), "noResponseCount": 0}
    for wave in store.waves(job["id"]):
        if int(wave.get("wave", 0)) < 1:
            continue  # robots dispatched outside the waves (wave 0: a robot that joined a target later)
        # A swept wave's recount is authoritative; its live counters may still move (a report racing it).
        counts = wave.get("sweptCounts") or wave
        for name in totals:
            totals[name] += int(counts.get(name, 0))
    return totals


def _new_wave(job: Row, number: int, members: dict[str, Any]) -> tuple[Key, Row]:
    """A wave's row: its counters, and where its robots are found (``members``: engine/store.py
    ``wave_members``) instead of a row per member."""
    row = {
        "wave": number,
        "succeededCount": 0,
        "failedCount": 0,
        "noResponseCount": 0,
        **members,
        "expiresAt": job["expiresAt"],
    }
    return wave_key(job["id"], number), row


def _queued(job: Row, robot: Row, position: int) -> list[tuple[Key, Row]]:
    """A target of a queued plan until it is released: its robot deployment row (PendingNewDeployment) and
    its place in the queue (``QUEUE#``, ``position``) that the plan's batches are taken from."""
    common = {
        "robotName": robot["name"],
        "arn": robot["arn"],
        "architecture": robot.get("architecture"),
        "expiresAt": job["expiresAt"],
    }
    return [
        (robot_deployment_key(job["id"], robot["name"]), {**common, "status": "PendingNewDeployment"}),
        (queue_key(job["id"], position), {**common, "position": position}),
    ]


def _is_queued(job: Row) -> bool:
    """The job's robots wait in a queue whose batches evaluate sizes when due (engine/policy.py Plan)."""
    return job.get("queuedCount") is not None


# --- prepare --------------------------------------------------------------------------------------
def prepare(job_id: str, ports: Ports) -> dict[str, Any]:
    """Pending -> Preparing: snapshot targets as robot rows, check architectures, plan waves -> InProgress."""
    store = ports.store
    if not store.claim_job_for_preparing(job_id, ids.now()):
        job = store.get_job(job_id)
        logger.info("job not preparable", extra={"jobId": job_id, "status": (job or {}).get("status")})
        return {"jobId": job_id, "action": CANCELED}
    job = store.get_job(job_id)
    assert job is not None  # the claim above just matched it
    policy = policy_for(job)
    targets = policy.targets(job, ports)
    if isinstance(targets, Abort):
        return _abort(job_id, targets.code, targets.reason)

    job_id, expires_at, now = job["id"], job["expiresAt"], ids.now()
    rows: list[tuple[Key, Row]] = []
    failed_entities = []
    for robot, code, reason in targets.failed:
        rows.append(
            (
                robot_deployment_key(job_id, robot["name"]),
                {
                    "robotName": robot["name"],
                    "arn": robot["arn"],
                    "architecture": robot.get("architecture"),
                    "status": "Failed",
                    "failureCode": code.value,
                    "failureReason": reason,
                    "deploymentStartTime": now,
                    "deploymentFinishTime": now,
                    "wave": 0,
                    "expiresAt": expires_at,
                },
            )
        )
        failed_entities.append(
            (
                robot["name"],
                job.get("fleetName"),
                {"status": "Failed"},
                _job_ref(job),
            )
        )

    releasable = {r["name"]: r for r in targets.releasable}
    plan = policy.plan(job, list(releasable), len(targets.robots))
    # A queue holds the targets in release order; each batch of it is planned when due (evaluate).
    for position, name in enumerate(plan.queue or []):
        rows += _queued(job, releasable[name], position)
    plan_id = secrets.token_hex(8)  # this run's: a retried prepare's plan rows are others
    for number, names in enumerate(plan.waves, start=1):
        # A wave's robots go in its plan rows, many to a row: each gets a row of its own with its first
        # write (engine/store.py, "planned" robots).
        members, plan_rows = plan_chunks(job, number, [releasable[name] for name in names], plan_id)
        rows.append(_new_wave(job, number, members))
        rows += plan_rows
    store.put_rows(rows)
    store.update_robot_entities(failed_entities)

    job_timeout = scaled_seconds(JOB_TIMEOUT_SECONDS, ports.settings.time_scale)
    size = len(plan.waves[0]) if plan.waves else 0
    fields = {
        "targetCount": len(targets.robots),
        "waveCount": len(plan.waves),
        "waveSize": size,
        "currentWave": 0,
        "prepareFailedCount": len(failed_entities),
        "succeededCount": 0,
        "failedCount": len(failed_entities),
        "noResponseCount": 0,
        "resolvedSources": targets.sources,
        "startedAt": now,
        "jobDeadline": job["createdAt"] + job_timeout,
    }
    if plan.queue is not None:
        fields.update({"queuedCount": len(plan.queue), "releasedCount": 0})
    if not store.mark_job_in_progress(job_id, fields):
        logger.info("job canceled while preparing", extra={"jobId": job_id})
        return {"jobId": job_id, "action": CANCELED}
    logger.info(
        "job prepared",
        extra={
            "jobId": job_id,
            "targets": len(targets.robots),
            "waves": len(plan.waves),
            "waveSize": size,
            "failedBeforeRelease": len(failed_entities),
            "sync": bool(job.get("syncOf")),
        },
    )
    return {"jobId": job_id, "action": EVALUATE}


def _abort(job_id: str, code: FailureCode, reason: str) -> dict[str, Any]:
    logger.info("job cannot start", extra={"jobId": job_id, "failureCode": code.value, "reason": reason})
    return {"jobId": job_id, "action": ABORT, "failureCode": code.value, "failureReason": reason}


# --- evaluate -------------------------------------------------------------------------------------
def evaluate(job_id: str, ports: Ports) -> dict[str, Any]:
    """Decide after prepare and after each wave: release the next wave, abort (threshold/timeout) or done."""
    store, settings = ports.store, ports.settings
    job = store.get_job(job_id)
    if job is None or job["status"] != "InProgress":
        logger.info("job no longer in progress", extra={"jobId": job_id, "status": (job or {}).get("status")})
        return {"jobId": job_id, "action": CANCELED}
    policy = policy_for(job)
    totals = _totals(store, job)
    store.record_job_totals(job_id, totals)
    failed = totals["failedCount"] + totals["noResponseCount"]
    targeted = int(job.get("targetCount", 0))
    current = int(job.get("currentWave", 0))
    log = {"jobId": job_id, "wave": current, "failed": failed, "targeted": targeted, **totals}

    reason = policy.breach(job, totals)
    if reason is not None:
        logger.info("failure threshold breached", extra={**log, "reason": reason})
        return {
            "jobId": job_id,
            "action": ABORT,
            "failureCode": FailureCode.FAILURE_THRESHOLD_BREACHED.value,
            "failureReason": reason,
        }
    now = ids.now()
    remaining = float(job["jobDeadline"]) - now
    if remaining <= 0:
        logger.info("job deadline passed", extra=log)
        return {
            "jobId": job_id,
            "action": ABORT,
            "failureCode": FailureCode.FLEET_DEPLOYMENT_TIMEOUT.value,
            "failureReason": "The deployment job did not finish within 30 days.",
        }
    if _is_queued(job):
        job = _plan_next_batch(job, totals, policy, ports)
        if job is None:
            return {"jobId": job_id, "action": CANCELED}
    if current < int(job.get("waveCount", 0)):
        held = _held(job, current + 1, policy, remaining, ports)
        if held is not None:
            logger.info("rollout held", extra={**log, **held})
            return held
        wave_timeout = policy.wave_timeout_seconds(job, current + 1, settings.time_scale)
        timeout = min(wave_timeout, max(1, math.ceil(remaining)))
        logger.info("next wave", extra={**log, "next": current + 1, "timeoutSeconds": timeout})
        return {"jobId": job_id, "action": RELEASE, "wave": current + 1, "timeoutSeconds": timeout}
    logger.info("all waves done", extra=log)
    return {"jobId": job_id, "action": DONE}


def _held(
    job: Row, wave: int, policy: RolloutPolicy, remaining: float, ports: Ports
) -> dict[str, Any] | None:
    """Why ``wave`` may not go out yet: its approval gate (until it is approved, or its time is up: then the
    job ends as the gate says) or a pause (until resumed). None: release it. A hold waits on a task token
    (step ``hold``) no longer than the gate's deadline or the job's 30 days, whichever comes first."""
    job_id = job["id"]
    gate = policy.gate(job, wave)
    if gate is not None and wave not in (job.get("approvedWaves") or []):
        waiting = _gate_reached(job, wave, gate, ports)
        if waiting is not None:
            left = float(waiting["deadline"]) - ids.now()
            if left <= 0:
                return _gate_timed_out(job_id, wave, gate)
            return _hold(job_id, HOLD_FOR_APPROVAL, wave, min(left, remaining))
        # Approved meanwhile (go on) or no longer InProgress (finalize): the job as it is now says which.
        job = ports.store.get_job(job_id) or {}
        if job.get("status") != "InProgress":
            return {"jobId": job_id, "action": CANCELED}
    if job.get("paused"):
        return _hold(job_id, HOLD_FOR_PAUSE, wave, remaining)
    return None


def _hold(job_id: str, reason: str, wave: int, seconds: float) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "action": HOLD,
        "reason": reason,
        "wave": wave,
        "timeoutSeconds": max(1, math.ceil(seconds)),
    }


def _gate_reached(job: Row, wave: int, gate: Gate, ports: Ports) -> Row | None:
    """The gate's clock (``waitingForApproval``: wave, since, deadline), started the first time the rollout
    reaches it, with its event. None: the wave was approved meanwhile, or the job is no longer InProgress."""
    waiting = job.get("waitingForApproval")
    if waiting and int(waiting.get("wave", 0)) == wave:
        return waiting
    now = ids.now()
    timeout = scaled_seconds(gate.timeout_seconds, ports.settings.time_scale)
    if ports.store.record_gate(job["id"], wave, now, now + timeout):
        job_events.publish(
            job,
            job_events.WAITING_FOR_APPROVAL,
            {"wave": wave, "since": now, "deadline": now + timeout, "onTimeout": gate.on_timeout},
            ports,
        )
        logger.info(
            "approval gate reached", extra={"jobId": job["id"], "wave": wave, "timeoutSeconds": timeout}
        )
        return {"wave": wave, "since": now, "deadline": now + timeout}
    # Another evaluate recorded it first, an approval got in, or the job was canceled: read what is there.
    latest = ports.store.get_job(job["id"]) or {}
    waiting = latest.get("waitingForApproval")
    if latest.get("status") == "InProgress" and waiting and int(waiting.get("wave", 0)) == wave:
        return waiting
    return None


def _gate_timed_out(job_id: str, wave: int, gate: Gate) -> dict[str, Any]:
    """Nobody approved ``wave`` in time: the job ends Canceled, or Failed, as the gate says."""
    reason = f"Wave {wave} was not approved within {gate.timeout_seconds} seconds."
    logger.info(
        "approval gate timed out", extra={"jobId": job_id, "wave": wave, "onTimeout": gate.on_timeout}
    )
    if gate.on_timeout == ABORT:
        return {
            "jobId": job_id,
            "action": ABORT,
            "failureCode": FailureCode.FLEET_DEPLOYMENT_TIMEOUT.value,
            "failureReason": reason,
        }
    return {"jobId": job_id, "action": CANCELED, "failureReason": reason}


def _plan_next_batch(job: Row, totals: dict[str, int], policy: RolloutPolicy, ports: Ports) -> Row | None:
    """Plan the next batch of a queued job from the counters: its size and WAVE row (a range of the queue).

    Returns the job as planned (``waveCount`` is the next batch, plus one while robots remain queued), the
    job unchanged when nobody is left, or None when it is no longer InProgress. The plan is recorded on the
    job once (conditional); a retried evaluate rewrites the same rows from the recorded plan.
    """
    store, job_id = ports.store, job["id"]
    current = int(job.get("currentWave", 0))
    batch = current + 1
    if int(job.get("plannedWave", 0)) < batch:
        start = int(job.get("releasedCount", 0))
        queued = int(job.get("queuedCount", 0))
        if start >= queued:
            return job
        decision = policy.next_batch(job, batch, start, totals["succeededCount"], queued - start)
        size = decision.pop("size")
        fields = {
            **decision,
            "plannedStart": start,
            "plannedSize": size,
            "releasedCount": start + size,
            "waveCount": batch + (1 if start + size < queued else 0),
        }
        if store.plan_next_batch(job_id, batch, fields):
            logger.info(
                "batch planned",
                extra={"jobId": job_id, "wave": batch, "size": size, "rate": decision.get("currentRate")},
            )
        job = store.get_job(job_id)
        if job is None or job.get("status") != "InProgress":
            return None
    start, size = int(job["plannedStart"]), int(job["plannedSize"])
    store.put_rows([_new_wave(job, batch, queue_members_of(start, size))])
    return job


# --- release wave ---------------------------------------------------------------------------------
def release_wave(job_id: str, wave: int, token: str, timeout_seconds: int, ports: Ports) -> dict[str, Any]:
    """Hold the wave's task token on the job, mark the wave's robots Deploying, publish their commands.

    The token is stored before any robot can report, so the report that completes the wave always finds it.
    Idempotent: Step Functions retries this step (with a new token) after a transient Lambda error, which may
    come after a run that already released robots. A retry stores the new token, releases only robots still
    pending, re-sends the first release's command (same attempt: the agent ignores one it already has) only
    to robots that have not reported yet, and counts nothing twice (the wave's counters are never reset).
    """
    store = ports.store
    now = ids.now()
    job = store.get_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} does not exist")
    policy = policy_for(job)
    robot_seconds = policy.robot_seconds(job, timeout_seconds, ports.settings.time_scale)
    opened = store.open_wave(
        job_id,
        wave,
        token,
        {
            "status": "Released",
            "releasedAt": now,
            "deadline": now + timeout_seconds,
            "timeoutSeconds": timeout_seconds,
            "attempt": 1,
            "robotDeadline": now + robot_seconds,
            "robotSeconds": robot_seconds,
            "succeededCount": 0,
            "failedCount": 0,
            "noResponseCount": 0,
        },
    )
    if opened is None:
        # Canceled between evaluate and here: nobody was released; end the wait the same way cancel does.
        logger.info("wave not released: job canceled", extra={"jobId": job_id, "wave": wave})
        ports.tokens.fail(token, CANCELED_ERROR, "The deployment job was canceled.")
        return {"jobId": job_id, "wave": wave, "released": 0}

    attempt = int(opened.get("attempt", 1))
    issued_at = float(opened.get("releasedAt", now))
    deadline = float(opened.get("robotDeadline", now + robot_seconds))
    robot_seconds = int(opened.get("robotSeconds", robot_seconds))
    members = store.wave_members(job_id, wave)
    if opened["firstRelease"]:
        to_mark, to_command = members, members
    else:
        to_mark, to_command = _unfinished_release(job_id, members, ports)
    # A plan's waves release in place: the wave's row (written above) makes its robots Deploying, with no
    # write per robot (engine/store.py as_released). Other plans mark each robot's row.
    store.put_rows(
        []
        if releases_in_place(opened)
        else [
            (
                robot_deployment_key(job_id, member["robotName"]),
                {
                    "robotName": member["robotName"],
                    "arn": member["arn"],
                    "architecture": member["architecture"],
                    "wave": wave,
                    "status": "Deploying",
                    "attempt": attempt,
                    "seq": -1,
                    "deploymentStartTime": issued_at,
                    "deadline": deadline,
                    "expiresAt": job["expiresAt"],
                    "progressDetail": {"percentDone": 0.0},
                },
            )
            for member in to_mark
        ]
    )
    departed = _mark_robots_deploying(job, policy, [m["robotName"] for m in to_mark], ports)
    if departed:
        # Deregistered from the fleet (or deleted) after prepare, before its wave: it gets no command; its
        # deployment ends as an in-flight robot's does when it leaves (robot_left: an abort).
        to_command = _without_departed(job, wave, departed, to_command, ports)

    release = Release(job, to_command, attempt, issued_at, deadline, robot_seconds)
    failures = ports.channel.publish_commands(policy.commands(release, ports)) if to_command else []
    commanded = {member["robotName"]: member for member in to_command}
    for failure in failures:
        _fail_undeliverable(job, failure.robot_name, failure.reason, ports, commanded.get(failure.robot_name))

    # Cancel may have landed while the commands went out; robots must not keep a deploy command of a
    # canceled job as their retained command.
    latest = store.get_job(job_id) or {}
    if latest.get("status") == "Canceled":
        _abort_robots(job, [m["robotName"] for m in members], "The deployment job was canceled.", ports)
    logger.info(
        "wave released",
        extra={
            "jobId": job_id,
            "wave": wave,
            "robots": len(members),
            "marked": len(to_mark),
            "commanded": len(to_command),
            "releaseCount": opened.get("releaseCount"),
            "attempt": attempt,
            "undelivered": len(failures),
            "timeoutSeconds": timeout_seconds,
        },
    )
    # An empty wave, or one whose robots all failed delivery (or answered already), is complete now.
    complete_wave_if_done(job_id, wave, ports)
    return {"jobId": job_id, "wave": wave, "released": len(members)}


def _job_ref(job: Row) -> JobRef:
    return job["arn"], job["createdAt"]


def _mark_robots_deploying(
    job: Row, policy: RolloutPolicy, robot_names: list[str], ports: Ports
) -> list[str]:
    """The robots' own rows as the release leaves them; returns the robots no longer in the job's fleet
    (deregistered, or deleted, after prepare), which get no command.

    A job that holds its fleet's lock writes nothing on them: readers of a robot find the deployment in
    flight through its fleet (fleet/in_flight.py), and the robot's row takes the job with its outcome (one
    DynamoDB write per robot less). Other jobs mark each robot Deploying, with the job as its last
    deployment.
    """
    fleet_name = job.get("fleetName")
    if not fleet_name or not robot_names:
        return []
    if policy.holds_fleet_lock:
        return ports.store.robots_outside_fleet(robot_names, fleet_name)
    return ports.store.update_robot_entities(
        [(name, fleet_name, {"status": "Deploying"}, _job_ref(job)) for name in robot_names]
    )


def _without_departed(
    job: Row, wave: int, departed: list[str], members: list[Row], ports: Ports
) -> list[Row]:
    """Fail the robots that left the job's fleet before their wave (RobotDeploymentAborted, counted on the
    wave); the members to command are the others."""
    gone = set(departed)
    by_name = {member["robotName"]: member for member in members}
    for robot_name in departed:
        ports.store.finish_robot(
            job["id"],
            robot_name,
            status="Failed",
            fields={
                "failureCode": FailureCode.ROBOT_DEPLOYMENT_ABORTED.value,
                "failureReason": DEPARTED_REASON,
                "deploymentFinishTime": ids.now(),
            },
            as_read=by_name.get(robot_name),
        )
    logger.info(
        "robots left the fleet before their wave",
        extra={"jobId": job["id"], "wave": wave, "robots": departed},
    )
    return [member for member in members if member["robotName"] not in gone]


def _unfinished_release(job_id: str, members: list[Row], ports: Ports) -> tuple[list[Row], list[Row]]:
    """On a retried release: (members still to be marked Deploying, members to send the command again).

    A robot whose row is still pending was never released; one Deploying with no report yet may not have
    received its command (the earlier run may have stopped before publishing); one that reported, or
    finished, has it. Only a retry reads the rows: the first release writes them blind (batch). In a wave
    that releases in place (no row written per robot) a row still pending is a robot with no report yet:
    it gets its command again, and its own row (Deploying) is written again.
    """
    rows = {
        row["robotName"]: row
        for row in ports.store.batch_get([robot_deployment_key(job_id, m["robotName"]) for m in members])
    }
    to_mark, to_command = [], []
    for member in members:
        row = rows.get(member["robotName"]) or {}
        status = row.get("status", "PendingNewDeployment")
        if status == "PendingNewDeployment":
            to_mark.append(member)
            to_command.append(member)
        elif status == "Deploying" and int(row.get("seq", -1)) < 0:
            to_command.append(member)
    return to_mark, to_command


# --- hold -----------------------------------------------------------------------------------------------
def hold(job_id: str, wave: int, reason: str, token: str, ports: Ports) -> dict[str, Any]:
    """Hold the rollout before ``wave`` on a task token: ApproveDeploymentWave or ResumeDeploymentJob ends the
    wait (engine/control.py), cancel fails it, its timeout (the gate's deadline, the job's 30 days) sends
    the machine back to evaluate. When the reason is gone already (approved, resumed, canceled meanwhile),
    the wait ends at once."""
    if ports.store.open_hold(job_id, token, reason, wave):
        logger.info("rollout holding", extra={"jobId": job_id, "wave": wave, "reason": reason})
        return {"jobId": job_id, "wave": wave, "held": True}
    job = ports.store.get_job(job_id)
    if job is None or job.get("status") != "InProgress":
        ports.tokens.fail(token, CANCELED_ERROR, "The deployment job was canceled.")
    else:
        ports.tokens.succeed(token, {"wave": wave, "reason": reason, "held": False})
    logger.info("hold ended before it began", extra={"jobId": job_id, "wave": wave, "reason": reason})
    return {"jobId": job_id, "wave": wave, "held": False}


def _fail_undeliverable(job: Row, robot_name: str, reason: str, ports: Ports, member: Row | None) -> None:
    """``member``: the robot as its wave's members were read (a planned robot has no row of its own)."""
    now = ids.now()
    changed = ports.store.finish_robot(
        job["id"],
        robot_name,
        status="NoResponse",
        fields={
            "failureCode": FailureCode.ROBOT_DEPLOYMENT_NO_RESPONSE.value,
            "failureReason": f"The deployment command could not be delivered: {reason}"[:1024],
            "deploymentFinishTime": now,
        },
        as_read=member,
    )
    if changed:
        ports.store.update_robot_entity(
            robot_name, job.get("fleetName"), {"status": "NoResponse"}, _job_ref(job)
        )
    logger.warning("command not delivered", extra={"jobId": job["id"], "robot": robot_name, "reason": reason})


def _abort_robots(job: Row, robot_names: list[str], reason: str, ports: Ports) -> list[str]:
    """Replace the retained deploy command of robots still deploying with an abort. Returns who was told."""
    rows = ports.store.robot_deployments(job["id"], robot_names).values()
    deploying = [row for row in rows if row.get("status") == "Deploying"]
    ports.channel.publish_commands(_abort_commands(job, deploying, reason))
    return [row["robotName"] for row in deploying]


def abort_robot(job_id: str, robot_name: str, reason: str, ports: Ports) -> bool:
    """Stop one robot's deployment of a running job (the robot left the job's fleet: DeregisterRobot): its
    retained command becomes an abort, and the agent's report of the abort (Failed,
    RobotDeploymentAborted) ends the robot's deployment as any report does. False when it was not
    deploying."""
    job = ports.store.get_job(job_id)
    if job is None or job.get("status") not in ("Pending", "Preparing", "InProgress"):
        return False
    return bool(_abort_robots(job, [robot_name], reason, ports))


def _abort_commands(job: Row, rows: list[Row], reason: str) -> list[tuple[str, AbortCommand]]:
    """(robot, abort of ``job``) for each robot deployment row, at the attempt the robot is running."""
    from fleetwave_service.engine.messages import AbortCommand  # a step that aborts nobody loads no model

    now = ids.now()
    return [
        (
            row["robotName"],
            AbortCommand(jobId=job["id"], attempt=int(row.get("attempt", 1)), reason=reason, issuedAt=now),
        )
        for row in rows
    ]


# --- sweep ----------------------------------------------------------------------------------------
def sweep(job_id: str, wave: int, ports: Ports) -> dict[str, Any]:
    """After the wave's timeout: the robots the job's policy names (those that have not finished) are
    NoResponse; the wave is recounted from its rows when the policy says so."""
    store = ports.store
    job = store.get_job(job_id)
    if job is None:
        return {"jobId": job_id, "wave": wave, "noResponse": 0}
    # Nobody may claim this wave's token any more: it is finished (timed out).
    store.claim_wave_token(job_id, wave)
    now = ids.now()
    plan = policy_for(job).sweep(job, wave, now, ports)
    silent = []
    for row in plan.rows:
        changed = store.finish_robot(
            job_id,
            row["robotName"],
            status="NoResponse",
            fields={
                "failureCode": FailureCode.ROBOT_DEPLOYMENT_NO_RESPONSE.value,
                "failureReason": plan.reason,
                "deploymentFinishTime": now,
            },
            from_statuses=plan.from_statuses,
            as_read=row,
        )
        if changed:
            silent.append(row["robotName"])
    store.update_robot_entities(
        [(name, job.get("fleetName"), {"status": "NoResponse"}, _job_ref(job)) for name in silent]
    )
    fields: dict[str, Any] = {"status": plan.wave_status, "sweptAt": now}
    if plan.recount:
        # The sweep's counts are authoritative: recount the wave from its rows, which are all terminal now.
        counts = dict.fromkeys(COUNTER_FOR_STATUS.values(), 0)
        for row in store.wave_robot_deployments(job_id, wave):
            if row.get("status") in COUNTER_FOR_STATUS:
                counts[COUNTER_FOR_STATUS[row["status"]]] += 1
        fields["sweptCounts"] = counts
    store.set_wave_fields(job_id, wave, fields)
    logger.info(
        "wave timed out",
        extra={"jobId": job_id, "wave": wave, "waveStatus": plan.wave_status, "noResponse": len(silent)},
    )
    return {"jobId": job_id, "wave": wave, "noResponse": len(silent)}


# --- finalize -------------------------------------------------------------------------------------
_FINAL_STATUS = {DONE: "Succeeded", ABORT: "Failed", OUTCOME_ERROR: "Failed", CANCELED: "Canceled"}


def finalize(
    job_id: str,
    outcome: str,
    ports: Ports,
    failure_code: str | None = None,
    failure_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Job status and failure, robots still deploying told to abort, fleet's last deployment, lock, event."""
    store = ports.store
    job = store.get_job(job_id)
    if job is None:
        logger.warning("finalize: job not found", extra={"jobId": job_id, "outcome": outcome})
        return {"jobId": job_id, "status": None}
    now = ids.now()
    status = _FINAL_STATUS.get(outcome, "Failed")
    if outcome == OUTCOME_ERROR:
        error_name = (error or {}).get("Error") or "Unknown"
        logger.error(
            "rollout stopped on an internal error",
            extra={"jobId": job_id, "error": error_name, "cause": str((error or {}).get("Cause"))[:4000]},
        )
        failure_code = FailureCode.INTERNAL_SERVER_ERROR.value
        failure_reason = f"The rollout stopped on an internal error ({error_name})."
    elif outcome not in _FINAL_STATUS:
        logger.error("finalize: unknown outcome", extra={"jobId": job_id, "outcome": outcome})
        failure_code = FailureCode.INTERNAL_SERVER_ERROR.value
        failure_reason = "The rollout stopped on an internal error."

    fields: dict[str, Any] = {"finishedAt": now}
    if status == "Failed":
        fields.update({"failureCode": failure_code, "failureReason": (failure_reason or "")[:1024]})
    elif status == "Canceled" and failure_reason:
        # Canceled by the rollout itself (an approval gate timed out): say why; no failure code.
        fields["failureReason"] = failure_reason[:1024]
    # The robots first, the job's status last: whoever reads the job finished (DescribeDeploymentJob, a
    # script polling it) reads its robots finished too, and its counts recounted from them. The status is
    # the finalize's commit point: until it is written, the job reads InProgress. A job the API already
    # made terminal (a cancel) keeps its status; a cancel that lands while the robots are being stopped wins
    # the conditional write below, and the robots keep this finalize's reason for stopping.
    active = job.get("status") in ACTIVE_STATUSES
    ending = status if active else job["status"]
    canceled = "The deployment job was canceled."
    reason = {
        "Canceled": f"{canceled[:-1]}: {failure_reason}" if failure_reason else canceled,
        "Failed": f"The deployment job stopped: {failure_reason or failure_code}",
    }.get(ending, "The deployment job ended.")
    # The job's robots read once: stopping the unfinished ones, then counting them all (a read of every
    # robot row of the job; 10,000 rows take seconds in moto).
    robots = {row["robotName"]: row for row in store.job_robot_deployments(job_id)}
    aborted = _stop_unfinished_robots(job, robots, reason, ports, keep_continuous=ending == "Succeeded")
    totals = _final_totals(robots.values())
    if active and store.finish_job(job_id, status, {**fields, **totals}):
        final_status = status
    else:
        final_status = (store.get_job(job_id) or job)["status"]
        store.update_finished_job(job_id, totals)
    if final_status == "Canceled":
        _withdraw_from_timed_out_robots(job, reason, ports)

    policy_for(job).finished(job, final_status, ports)
    finished = store.get_job(job_id) or job
    detail = {
        "status": final_status,
        "failureCode": finished.get("failureCode"),
        "failureReason": finished.get("failureReason"),
        "targetCount": job.get("targetCount", 0),
        **totals,
    }
    job_events.publish(job, job_events.STATUS_CHANGE, detail, ports)
    logger.info("job finished", extra={"jobId": job_id, **detail, "abortedRobots": aborted})
    return {"jobId": job_id, "status": final_status}


def _final_totals(robots: Iterable[Row]) -> dict[str, int]:
    """The job's final counts, recounted from its robot rows (exact, whatever the counters say)."""
    totals = {"succeededCount": 0, "failedCount": 0, "noResponseCount": 0, "notReleasedCount": 0}
    for row in robots:
        if row.get("notReleased"):
            totals["notReleasedCount"] += 1
        elif row.get("status") in COUNTER_FOR_STATUS:
            totals[COUNTER_FOR_STATUS[row["status"]]] += 1
    return totals


def _withdraw_from_timed_out_robots(job: Row, reason: str, ports: Ports) -> None:
    """A canceled job's deploy command must not stay retained for robots that timed out: one that comes
    back would install a deployment its user canceled. Their history stays NoResponse; only the retained
    command becomes an abort. (After a success or a threshold stop the command stays: docs/rollout.md.)"""
    if job.get("supersededBy"):
        return  # a newer revision's command already replaced theirs
    silent = ports.store.job_robot_deployments(job["id"], ("NoResponse",))
    if silent:
        _publish_aborts(job, silent, reason, ports)


def _publish_aborts(job: Row, rows: list[Row], reason: str, ports: Ports) -> None:
    """Replace these robots' retained command for ``job`` with an abort, best effort."""
    aborts = _abort_commands(job, rows, reason)
    try:
        undelivered = ports.channel.publish_commands(aborts)
    except Exception:
        # The job must end whatever the channel does; the robots' deadlines stop them in the worst case.
        logger.exception("abort commands not published", extra={"jobId": job["id"], "robots": len(aborts)})
        return
    for failure in undelivered:
        logger.warning("abort not delivered", extra={"jobId": job["id"], "robot": failure.robot_name})


def _stop_unfinished_robots(
    job: Row, robots: dict[str, Row], reason: str, ports: Ports, keep_continuous: bool = False
) -> int:
    """Robots in flight get an abort and end Failed; robots never released end Failed without a message.

    ``robots``: the job's robot rows by name, as read (``job_robot_deployments``); each robot stopped, or
    found moved on (a report or the sweep finished it meanwhile), is replaced by its row as it is now.
    ``keep_continuous``: a robot that joined a Greengrass group after the rollout began (dispatched outside
    the waves) keeps deploying when the rollout itself succeeded.
    """
    store = ports.store
    unfinished = [
        row
        for row in robots.values()
        if row.get("status") in ("Deploying", "PendingNewDeployment")
        and not (keep_continuous and row.get("continuous"))
    ]
    if not unfinished:
        return 0
    now = ids.now()
    in_flight = [row for row in unfinished if row["status"] == "Deploying"]
    if job.get("supersededBy"):
        # A newer revision's command replaces theirs; an abort published now could land after it.
        in_flight = []
    if in_flight:
        _publish_aborts(job, in_flight, reason, ports)
    aborted_entities = []
    for row in unfinished:
        released = row["status"] == "Deploying"
        # Robots in flight count as failed; robots never released are not counted: nothing was tried.
        changed = store.finish_robot(
            job["id"],
            row["robotName"],
            count=released,
            status="Failed",
            fields={
                "failureCode": FailureCode.ROBOT_DEPLOYMENT_ABORTED.value,
                "failureReason": (reason if released else f"Not released. {reason}")[:1024],
                "deploymentFinishTime": now,
                "notReleased": None if released else True,
            },
            from_statuses=(row["status"],),
            as_read=row,
        )
        now_row = changed if changed is not None else store.get_robot_deployment(job["id"], row["robotName"])
        if now_row is not None:
            robots[row["robotName"]] = now_row
        if changed and released:
            aborted_entities.append(
                (row["robotName"], job.get("fleetName"), {"status": "Failed"}, _job_ref(job))
            )
    store.update_robot_entities(aborted_entities)
    logger.info(
        "unfinished robots stopped",
        extra={
            "jobId": job["id"],
            "aborted": len(in_flight),
            "neverReleased": len(unfinished) - len(in_flight),
        },
    )
    return len(in_flight)
