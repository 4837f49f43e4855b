"""The rollout engine: the steps the state machine runs (docs/rollout.md).

Each public function is one Lambda step and takes/returns the small JSON state the machine carries
(``jobId`` plus a decision); robot lists never travel through state, they live in DynamoDB.

    prepare -> evaluate -> [release wave -> (sweep on timeout) -> evaluate]* -> finalize

Every step is safe to run twice (Lambda retries, redrive): writes are idempotent or conditional.
"""

from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service import ids
from fleetwave_service.logic.bundle_links import bundle_link, download_condition_link
from fleetwave_service.logic.rollout_policies import greengrass_command, is_greengrass, next_batch, policy_for
from fleetwave_service.logic.rollout_ports import Ports
from fleetwave_service.logic.rollout_reports import complete_wave_if_done
from fleetwave_service.logic.rollout_rules import JOB_TIMEOUT_SECONDS, scaled_seconds
from fleetwave_service.models.messages import (
    AbortCommand,
    DeploymentCommand,
    FailureCode,
    LaunchConfig,
)
from fleetwave_service.storage.rollout import (
    COUNTER_FOR_STATUS,
    member_key,
    queue_key,
    robot_deployment_key,
    wave_key,
)

logger = Logger(service="fleetwave-rollout", child=True)

# Actions the machine's Choice states route on.
RELEASE = "release"
DONE = "done"
ABORT = "abort"
CANCELED = "canceled"
EVALUATE = "evaluate"
# What finalize is told happened.
OUTCOME_ERROR = "error"


def _config(job: dict[str, Any]) -> dict[str, Any]:
    return job.get("deploymentConfig") or {}


def _robot_timeout(job: dict[str, Any]) -> int:
    return policy_for(job).robot_timeout_seconds(job)


def _application_name(application_arn: str) -> str:
    # arn:...:robot-application/<name>/<epochMillis>
    resource = application_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) >= 2 else resource


def _totals(store: Any, job: dict[str, Any]) -> dict[str, int]:
    """Job counters from the wave rows (authoritative) plus robots failed before release."""
    totals = {"succeededCount": 0, "failedCount": int(job.get("prepareFailedCount", 0)), "noResponseCount": 0}
    for wave in store.waves(job["id"]):
        if int(wave.get("wave", 0)) < 1:
            continue  # robots dispatched outside the waves (Greengrass continuous deployment)
        # A swept wave's recount is authoritative; its live counters may still move (a report racing it).
        counts = wave.get("sweptCounts") or wave
        for name in totals:
            totals[name] += int(counts.get(name, 0))
    return totals


# --- prepare --------------------------------------------------------------------------------------
def _in_sync_arns(store: Any, job: dict[str, Any]) -> set[str]:
    """ARNs of the deployment a sync job copies, and of the syncs of it before this one."""
    arns: set[str] = set()
    previous_id = job.get("syncOf")
    while previous_id and len(arns) < 1000:
        previous = store.get_job(previous_id)
        if previous is None:
            break
        arns.add(previous["arn"])
        previous_id = previous.get("syncOf")
    return arns


def prepare(job_id: str, ports: Ports) -> dict[str, Any]:
    """Pending -> Preparing: snapshot targets as robot rows, check architectures, plan waves -> InProgress."""
    store = ports.store
    now = ids.now()
    if not store.claim_job_for_preparing(job_id, now):
        job = store.get_job(job_id)
        logger.info("job not preparable", extra={"jobId": job_id, "status": (job or {}).get("status")})
        return {"jobId": job_id, "action": CANCELED}
    job = store.get_job(job_id)
    assert job is not None  # the claim above just matched it
    if is_greengrass(job):
        return _plan_and_start(job, _greengrass_targets(store, job), [], [], [], ports)
    expires_at = job["expiresAt"]

    fleet = store.get_fleet(job["fleetName"])
    if fleet is None or fleet.get("arn") != job["fleet"]:
        return _abort(
            job_id, FailureCode.DEPLOYMENT_FLEET_DOES_NOT_EXIST, f"Fleet {job['fleet']} does not exist."
        )
    config = job["deploymentApplicationConfigs"][0]
    application_name = _application_name(config["application"])
    version = store.get_application_version(application_name, config["applicationVersion"])
    if version is None:
        return _abort(
            job_id,
            FailureCode.ROBOT_APPLICATION_DOES_NOT_EXIST,
            f"Robot application {config['application']} version {config['applicationVersion']} "
            "does not exist.",
        )
    sources = {
        s["architecture"]: {"s3Bucket": s["s3Bucket"], "s3Key": s["s3Key"], "etag": s.get("etag")}
        for s in version.get("sources", [])
        if s.get("architecture")
    }

    robots = sorted(store.fleet_robots(job["fleetName"]), key=lambda r: r["name"])
    if job.get("syncOf"):
        in_sync = _in_sync_arns(store, job)
        robots = [
            r for r in robots if not (r.get("status") == "InSync" and r.get("lastDeploymentJob") in in_sync)
        ]

    rows: list[tuple[dict[str, str], dict[str, Any]]] = []
    failed_entities: list[tuple[str, str, dict[str, Any]]] = []
    releasable: list[dict[str, Any]] = []
    for robot in robots:
        architecture = robot.get("architecture")
        code = None
        if not architecture:
            code, reason = (
                FailureCode.MISSING_ROBOT_ARCHITECTURE,
                f"Robot {robot['name']} has no architecture.",
            )
        elif architecture not in sources:
            code = FailureCode.MISSING_ROBOT_APPLICATION_ARCHITECTURE
            reason = (
                f"Robot application version {config['applicationVersion']} has no source for architecture "
                f"{architecture}."
            )
        if code is None:
            releasable.append(robot)
            continue
        rows.append(
            (
                robot_deployment_key(job_id, robot["name"]),
                {
                    "robotName": robot["name"],
                    "arn": robot["arn"],
                    "architecture": architecture,
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
                {"status": "Failed", "lastDeploymentJob": job["arn"], "lastDeploymentTime": job["createdAt"]},
                None,
            )
        )

    return _plan_and_start(job, robots, releasable, rows, failed_entities, ports, sources)


def _greengrass_targets(store: Any, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The robots a Greengrass target names now: the thing's robot, or the thing group's fleet."""
    from fleetwave_service.storage import fleets as fleet_rows
    from fleetwave_service.storage import robots as robot_rows

    if job.get("targetKind") == "thing":
        robot = robot_rows.find_by_thing_name(job["targetName"])
        return [robot] if robot is not None else []
    fleet = fleet_rows.find_by_thing_group_name(job["targetName"])
    return sorted(store.fleet_robots(fleet["name"]), key=lambda r: r["name"]) if fleet is not None else []


def _plan_and_start(
    job: dict[str, Any],
    robots: list[dict[str, Any]],
    releasable: list[dict[str, Any]] | None,
    rows: list[tuple[dict[str, str], dict[str, Any]]],
    failed_entities: list[tuple[str, str, dict[str, Any], str | None]],
    ports: Ports,
    sources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Plan the waves of the releasable robots with the job's policy, write their rows -> InProgress."""
    store, settings = ports.store, ports.settings
    job_id, expires_at, now = job["id"], job["expiresAt"], ids.now()
    greengrass = is_greengrass(job)
    if greengrass:
        releasable = robots
    # Greengrass batch sizes follow the rate as it grows (evaluate decides each one): its targets wait in a
    # queue, in release order, instead of being planned into waves here.
    waves = policy_for(job).plan(job, [r["name"] for r in releasable], len(robots))
    size = len(waves[0]) if waves else 0
    if greengrass:
        by_name = {r["name"]: r for r in releasable}
        order = [by_name[name] for name in (waves[0] if waves else [])]
        waves, size = [], 0
        for position, robot in enumerate(order):
            common = {
                "robotName": robot["name"],
                "arn": robot["arn"],
                "architecture": robot.get("architecture"),
                "expiresAt": expires_at,
            }
            rows.append(
                (robot_deployment_key(job_id, robot["name"]), {**common, "status": "PendingNewDeployment"})
            )
            rows.append((queue_key(job_id, position), {**common, "position": position}))
    by_name = {r["name"]: r for r in releasable}
    for number, names in enumerate(waves, start=1):
        rows.append(
            (
                wave_key(job_id, number),
                {
                    "wave": number,
                    "size": len(names),
                    "status": "Planned",
                    "succeededCount": 0,
                    "failedCount": 0,
                    "noResponseCount": 0,
                    "expiresAt": expires_at,
                },
            )
        )
        for name in names:
            robot = by_name[name]
            common = {
                "robotName": name,
                "arn": robot["arn"],
                "architecture": robot.get("architecture"),
                "wave": number,
                "expiresAt": expires_at,
            }
            rows.append((robot_deployment_key(job_id, name), {**common, "status": "PendingNewDeployment"}))
            rows.append((member_key(job_id, number, name), common))
    store.put_rows(rows)
    store.update_robot_entities(failed_entities)

    job_timeout = scaled_seconds(JOB_TIMEOUT_SECONDS, settings.time_scale)
    fields = {
        "targetCount": len(robots),
        "waveCount": len(waves),
        "waveSize": size,
        "currentWave": 0,
        "prepareFailedCount": len(failed_entities),
        "succeededCount": 0,
        "failedCount": len(failed_entities),
        "noResponseCount": 0,
        "resolvedSources": sources or {},
        "startedAt": now,
        "jobDeadline": job["createdAt"] + job_timeout,
    }
    if greengrass:
        fields.update({"queuedCount": len(releasable), "releasedCount": 0})
    if not store.mark_job_in_progress(job_id, fields):
        logger.info("job canceled while preparing", extra={"jobId": job_id})
        return {"jobId": job_id, "action": CANCELED}
    logger.info(
        "job prepared",
        extra={
            "jobId": job_id,
            "targets": len(robots),
            "waves": len(waves),
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
    totals = _totals(store, job)
    store.record_job_totals(job_id, totals)
    failed = totals["failedCount"] + totals["noResponseCount"]
    targeted = int(job.get("targetCount", 0))
    current = int(job.get("currentWave", 0))
    log = {"jobId": job_id, "wave": current, "failed": failed, "targeted": targeted, **totals}

    reason = policy_for(job).breach(job, totals)
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
    if is_greengrass(job):
        job = _plan_greengrass_batch(job, totals, ports)
        if job is None:
            return {"jobId": job_id, "action": CANCELED}
    if current < int(job.get("waveCount", 0)):
        wave_timeout = policy_for(job).wave_timeout_seconds(job, current + 1, settings.time_scale)
        timeout = min(wave_timeout, max(1, math.ceil(remaining)))
        logger.info("next wave", extra={**log, "next": current + 1, "timeoutSeconds": timeout})
        return {"jobId": job_id, "action": RELEASE, "wave": current + 1, "timeoutSeconds": timeout}
    logger.info("all waves done", extra=log)
    return {"jobId": job_id, "action": DONE}


def _plan_greengrass_batch(
    job: dict[str, Any], totals: dict[str, int], ports: Ports
) -> dict[str, Any] | None:
    """Plan the next Greengrass batch from the counters: its size, its MEMBER rows and WAVE row.

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
        decision = next_batch(job, batch, start, totals["succeededCount"], queued - start)
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
                extra={"jobId": job_id, "wave": batch, "size": size, "rate": decision["currentRate"]},
            )
        job = store.get_job(job_id)
        if job is None or job.get("status") != "InProgress":
            return None
    start, size = int(job["plannedStart"]), int(job["plannedSize"])
    rows: list[tuple[dict[str, str], dict[str, Any]]] = [
        (
            wave_key(job_id, batch),
            {
                "wave": batch,
                "size": size,
                "status": "Planned",
                "succeededCount": 0,
                "failedCount": 0,
                "noResponseCount": 0,
                "expiresAt": job["expiresAt"],
            },
        )
    ]
    for queued_robot in store.queued_robots(job_id, start, size):
        member = {k: queued_robot.get(k) for k in ("robotName", "arn", "architecture", "expiresAt")}
        rows.append((member_key(job_id, batch, member["robotName"]), {**member, "wave": batch}))
    store.put_rows(rows)
    return job


# --- release wave ---------------------------------------------------------------------------------
def release_wave(job_id: str, wave: int, token: str, timeout_seconds: int, ports: Ports) -> dict[str, Any]:
    """Hold the wave's task token on the job, mark the wave's robots Deploying, publish their commands.

    The token is stored before any robot can report, so the report that completes the wave always finds it.
    """
    store = ports.store
    now = ids.now()
    deadline = now + timeout_seconds
    robot_seconds = timeout_seconds
    attempt = store.open_wave(
        job_id,
        wave,
        token,
        {
            "status": "Released",
            "releasedAt": now,
            "deadline": deadline,
            "timeoutSeconds": timeout_seconds,
            # A re-release (retried step) starts the wave over with a new attempt: counting starts over too.
            "succeededCount": 0,
            "failedCount": 0,
            "noResponseCount": 0,
        },
    )
    if attempt is None:
        # Canceled between evaluate and here: nobody was released; end the wait the same way cancel does.
        logger.info("wave not released: job canceled", extra={"jobId": job_id, "wave": wave})
        ports.tokens.fail(token, "DeploymentCanceled", "The deployment job was canceled.")
        return {"jobId": job_id, "wave": wave, "released": 0}

    job = store.get_job(job_id)
    assert job is not None
    if is_greengrass(job):
        # A Greengrass batch lasts a minute; each robot has the whole in-progress timeout.
        robot_seconds = scaled_seconds(_robot_timeout(job), ports.settings.time_scale)
        deadline = now + robot_seconds
    members = store.wave_members(job_id, wave)
    rows = []
    for member in members:
        rows.append(
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
                    "deploymentStartTime": now,
                    "deadline": deadline,
                    "expiresAt": job["expiresAt"],
                    "progressDetail": {"percentDone": 0.0},
                },
            )
        )
    store.put_rows(rows)
    store.update_robot_entities(
        [
            (
                m["robotName"],
                job.get("fleetName"),
                # From now on this job is the robot's last deployment; later updates of this job check it.
                {
                    "status": "Deploying",
                    "lastDeploymentJob": job["arn"],
                    "lastDeploymentTime": job["createdAt"],
                },
                None,
            )
            for m in members
        ]
    )

    commands = _build_commands(job, members, attempt, now, deadline, robot_seconds, ports)
    failures = ports.channel.publish_commands(commands)
    for failure in failures:
        _fail_undeliverable(job, failure.robot_name, failure.reason, ports)

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
            "attempt": attempt,
            "undelivered": len(failures),
            "timeoutSeconds": timeout_seconds,
        },
    )
    # An empty wave, or one whose robots all failed delivery (or answered already), is complete now.
    complete_wave_if_done(job_id, wave, ports)
    return {"jobId": job_id, "wave": wave, "released": len(members)}


def _build_commands(
    job: dict[str, Any],
    members: list[dict[str, Any]],
    attempt: int,
    now: float,
    deadline: float,
    timeout_seconds: int,
    ports: Ports,
) -> list[tuple[str, DeploymentCommand]]:
    if is_greengrass(job):
        command = greengrass_command(job, attempt, now, deadline, timeout_seconds)
        return [(member["robotName"], command) for member in members]
    config = job["deploymentApplicationConfigs"][0]
    sources = job.get("resolvedSources") or {}
    # One presigned URL per architecture per wave, not per robot.
    bundles = {
        architecture: bundle_link(architecture, source, ports.signer)
        for architecture, source in sources.items()
    }
    download_condition = download_condition_link(job, ports.signer)
    launch = LaunchConfig(**config["launchConfig"]) if config.get("launchConfig") else None
    commands = []
    for member in members:
        commands.append(
            (
                member["robotName"],
                DeploymentCommand(
                    jobId=job["id"],
                    attempt=attempt,
                    application=config["application"],
                    applicationVersion=config["applicationVersion"],
                    bundle=bundles[member["architecture"]],
                    launchConfig=launch,
                    downloadCondition=download_condition,
                    timeoutSeconds=timeout_seconds,
                    deadline=deadline,
                    issuedAt=now,
                ),
            )
        )
    return commands


def _fail_undeliverable(job: dict[str, Any], robot_name: str, reason: str, ports: Ports) -> None:
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
    )
    if changed:
        ports.store.update_robot_entity(
            robot_name, job.get("fleetName"), {"status": "NoResponse"}, job["arn"]
        )
    logger.warning("command not delivered", extra={"jobId": job["id"], "robot": robot_name, "reason": reason})


def _abort_robots(job: dict[str, Any], robot_names: list[str], reason: str, ports: Ports) -> list[str]:
    """Replace the retained deploy command of robots still deploying with an abort. Returns who was told."""
    rows = ports.store.batch_get([robot_deployment_key(job["id"], name) for name in robot_names])
    deploying = [row for row in rows if row.get("status") == "Deploying"]
    ports.channel.publish_commands(_abort_commands(job, deploying, reason))
    return [row["robotName"] for row in deploying]


def _abort_commands(
    job: dict[str, Any], rows: list[dict[str, Any]], reason: str
) -> list[tuple[str, AbortCommand]]:
    """(robot, abort of ``job``) for each robot deployment row, at the attempt the robot is running."""
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
    """After the wave's timeout: its robots that have not finished are NoResponse; counts come from rows."""
    store = ports.store
    job = store.get_job(job_id)
    if job is None:
        return {"jobId": job_id, "wave": wave, "noResponse": 0}
    # Nobody may claim this wave's token any more: it is finished (timed out).
    store.claim_wave_token(job_id, wave)
    if is_greengrass(job):
        return _sweep_greengrass(job, wave, ports)
    now = ids.now()
    silent = []
    for row in store.wave_robot_deployments(job_id, wave):
        if row.get("status") not in ("Deploying", "PendingNewDeployment"):
            continue
        changed = store.finish_robot(
            job_id,
            row["robotName"],
            status="NoResponse",
            fields={
                "failureCode": FailureCode.ROBOT_DEPLOYMENT_NO_RESPONSE.value,
                "failureReason": "The robot did not finish within the robot deployment timeout.",
                "deploymentFinishTime": now,
            },
            from_statuses=("Deploying", "PendingNewDeployment"),
        )
        if changed:
            silent.append(row["robotName"])
    store.update_robot_entities(
        [(name, job.get("fleetName"), {"status": "NoResponse"}, job["arn"]) for name in silent]
    )
    # The sweep's counts are authoritative: recount the wave from its rows, which are all terminal now.
    counts = {"succeededCount": 0, "failedCount": 0, "noResponseCount": 0}
    names = {"InSync": "succeededCount", "Failed": "failedCount", "NoResponse": "noResponseCount"}
    for row in store.wave_robot_deployments(job_id, wave):
        if row.get("status") in names:
            counts[names[row["status"]]] += 1
    store.set_wave_fields(job_id, wave, {"sweptCounts": counts, "status": "TimedOut", "sweptAt": now})
    logger.info("wave timed out", extra={"jobId": job_id, "wave": wave, "noResponse": len(silent), **counts})
    return {"jobId": job_id, "wave": wave, "noResponse": len(silent)}


def _sweep_greengrass(job: dict[str, Any], wave: int, ports: Ports) -> dict[str, Any]:
    """A Greengrass batch's minute ended: robots past their own deadline are TIMED_OUT (NoResponse); the
    others keep running and are counted when they report. After the last batch everyone still running is
    past the in-progress timeout. Counters stay live (no recount): late reports must still count."""
    store, job_id = ports.store, job["id"]
    now = ids.now()
    last = wave >= int(job.get("waveCount", 0))
    silent = []
    for row in store.job_robot_deployments(job_id, ("Deploying",)):
        if row.get("continuous") or (not last and float(row.get("deadline") or now) > now):
            continue
        changed = store.finish_robot(
            job_id,
            row["robotName"],
            status="NoResponse",
            fields={
                "failureCode": FailureCode.ROBOT_DEPLOYMENT_NO_RESPONSE.value,
                "failureReason": "The robot did not finish within the in-progress timeout.",
                "deploymentFinishTime": now,
            },
        )
        if changed:
            silent.append(row["robotName"])
    store.update_robot_entities(
        [(name, job.get("fleetName"), {"status": "NoResponse"}, job["arn"]) for name in silent]
    )
    store.set_wave_fields(job_id, wave, {"status": "TimedOut" if last else "MinuteEnded", "sweptAt": now})
    logger.info(
        "batch minute ended", extra={"jobId": job_id, "wave": wave, "last": last, "timedOut": len(silent)}
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
    if store.finish_job(job_id, status, fields):
        final_status = status
    else:
        final_status = (store.get_job(job_id) or job)["status"]

    reason = {
        "Canceled": "The deployment job was canceled.",
        "Failed": f"The deployment job stopped: {failure_reason or failure_code}",
    }.get(final_status, "The deployment job ended.")
    aborted = _stop_unfinished_robots(job, reason, ports, keep_continuous=final_status == "Succeeded")
    if final_status == "Canceled":
        _withdraw_from_timed_out_robots(job, reason, ports)

    totals = _final_totals(store, job_id)
    store.update_finished_job(job_id, totals)
    if not is_greengrass(job):
        store.finish_fleet_deployment(
            job.get("fleetName"),
            job_id,
            {
                "lastDeploymentStatus": final_status,
                "lastDeploymentJob": job["arn"],
                "lastDeploymentTime": job["createdAt"],
            },
        )
    finished = store.get_job(job_id) or job
    detail = {
        "jobId": job_id,
        "arn": job["arn"],
        "fleet": job.get("fleet") or job.get("targetArn"),
        "status": final_status,
        "failureCode": finished.get("failureCode"),
        "failureReason": finished.get("failureReason"),
        "targetCount": job.get("targetCount", 0),
        **totals,
    }
    try:
        ports.events.publish(
            "Deployment Job Status Change",
            {k: v for k, v in detail.items() if v is not None},
            [job["arn"], job.get("fleet") or job.get("targetArn")],
        )
    except Exception:
        # Subscribers are told best effort; the job row is the record and the rollout is over.
        logger.exception("job event not published", extra={"jobId": job_id})
    logger.info("job finished", extra={**detail, "abortedRobots": aborted})
    return {"jobId": job_id, "status": final_status}


def _final_totals(store: Any, job_id: str) -> dict[str, int]:
    """The job's final counts, recounted from its robot rows (exact, whatever the counters say)."""
    totals = {"succeededCount": 0, "failedCount": 0, "noResponseCount": 0, "notReleasedCount": 0}
    for row in store.job_robot_deployments(job_id):
        if row.get("notReleased"):
            totals["notReleasedCount"] += 1
        elif row.get("status") in COUNTER_FOR_STATUS:
            totals[COUNTER_FOR_STATUS[row["status"]]] += 1
    return totals


def _withdraw_from_timed_out_robots(job: dict[str, Any], reason: str, ports: Ports) -> None:
    """A canceled job's deploy command must not stay retained for robots that timed out: one that comes
    back would install a deployment its user canceled. Their history stays NoResponse; only the retained
    command becomes an abort. (After a success or a threshold stop the command stays: docs/rollout.md.)"""
    if job.get("supersededBy"):
        return  # a newer revision's command already replaced theirs
    silent = ports.store.job_robot_deployments(job["id"], ("NoResponse",))
    if silent:
        _publish_aborts(job, silent, reason, ports)


def _publish_aborts(job: dict[str, Any], rows: list[dict[str, Any]], reason: str, ports: Ports) -> None:
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
    job: dict[str, Any], reason: str, ports: Ports, keep_continuous: bool = False
) -> int:
    """Robots in flight get an abort and end Failed; robots never released end Failed without a message.

    ``keep_continuous``: a robot that joined a Greengrass group after the rollout began (dispatched outside
    the waves) keeps deploying when the rollout itself succeeded.
    """
    store = ports.store
    unfinished = [
        row
        for row in store.job_robot_deployments(job["id"], ("Deploying", "PendingNewDeployment"))
        if not (keep_continuous and row.get("continuous"))
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
        )
        if changed and released:
            aborted_entities.append(
                (row["robotName"], job.get("fleetName"), {"status": "Failed"}, job["arn"])
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
