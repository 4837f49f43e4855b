"""The status path applies an SQS batch as a batch, exactly once in effect: duplicate, out-of-order and late
reports inside one batch and across batches, one counter update per wave, one wave check, and partial
batch failures that fail only the records of the robot that failed.

Rows are written through the engine's store under moto; Step Functions is the FakeTaskTokens port.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from fakes.rollout import FakeTaskTokens
from fleetwave_service.core.keys import job_key, robot_deployment_key, robot_key, wave_key
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports
from fleetwave_service.engine.rules import PROGRESS_INTERVAL_SECONDS
from fleetwave_service.engine.store import RolloutStore, plan_chunks
from fleetwave_service.handlers import status_handler as lambda_handler

from fleetwave.bench import WriteCounter
from fleetwave.local.lambda_adapter import LocalLambdaContext

JOB = "deployment-batchbatch01"
OTHER_JOB = "deployment-batchbatch02"
ROBOTS = ("r1", "r2", "r3")
CONTEXT = LocalLambdaContext(
    function_name="status", invoked_function_arn="arn:aws:lambda:us-east-1:1:function:s"
)


# How the fixture's robots are stored: rows of their own, Deploying (a release that marks each robot), or
# planned in their wave's plan rows with no row of their own (prepare's plan of waves, released in place).
_LAYOUT = {"layout": "rows"}


def _job_rows(job_id: str, robots: tuple[str, ...], now: float, *, deadline: float) -> list:
    if _LAYOUT["layout"] == "planned":
        return _planned_job_rows(job_id, robots, now, deadline=deadline)
    expires = int(now) + 86400
    rows = [
        (
            job_key(job_id),
            {
                "id": job_id,
                "arn": f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{job_id}",
                "fleet": "arn:fleet",
                "fleetName": "warehouse",
                "status": "InProgress",
                "createdAt": now,
                "expiresAt": expires,
                "targetCount": len(robots),
                "currentWave": 1,
                "waveToken": f"token-{job_id}",
                "deploymentConfig": {},
                "failedCount": 0,
                "noResponseCount": 0,
            },
        ),
        (
            wave_key(job_id, 1),
            {
                "wave": 1,
                "size": len(robots),
                "succeededCount": 0,
                "failedCount": 0,
                "noResponseCount": 0,
                "expiresAt": expires,
            },
        ),
    ]
    for robot in robots:
        # The robot itself, in the job's fleet, with this job as its last deployment (release set it).
        rows.append(
            (
                robot_key(robot),
                {
                    "name": robot,
                    "fleetName": "warehouse",
                    "status": "Deploying",
                    "lastDeploymentJob": f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{job_id}",
                },
            )
        )
        rows.append(
            (
                robot_deployment_key(job_id, robot),
                {
                    "robotName": robot,
                    "arn": f"arn:robot/{robot}/1",
                    "wave": 1,
                    "status": "Deploying",
                    "attempt": 1,
                    "seq": -1,
                    "deadline": deadline,
                    "expiresAt": expires,
                },
            )
        )
    return rows


def _planned_job_rows(job_id: str, robots: tuple[str, ...], now: float, *, deadline: float) -> list:
    """The same job, its robots planned (no row of their own) in a wave released in place."""
    rows = _job_rows_with_rows(job_id, robots, now, deadline=deadline)
    job = {"id": job_id, "expiresAt": int(now) + 86400}
    planned = [{"name": robot, "arn": f"arn:robot/{robot}/1"} for robot in robots]
    members, plan_rows = plan_chunks(job, 1, planned, uuid.uuid4().hex)
    kept = [(key, row) for key, row in rows if not key.sk.startswith("ROBOT#") or key.sk == "ROBOT"]
    for key, row in kept:
        if key.sk.startswith("WAVE#"):
            row.update(members, releasedAt=now, attempt=1, robotDeadline=deadline)
    return [*kept, *plan_rows]


def _job_rows_with_rows(job_id: str, robots: tuple[str, ...], now: float, *, deadline: float) -> list:
    layout, _LAYOUT["layout"] = _LAYOUT["layout"], "rows"
    try:
        return _job_rows(job_id, robots, now, deadline=deadline)
    finally:
        _LAYOUT["layout"] = layout


@pytest.fixture(params=["rows", "planned"])
def tokens(aws, request):
    """Job JOB InProgress, its one wave (r1, r2, r3) deploying and waiting on token "token-<job>": the
    robots' rows written (a release that marks each robot), or planned with no row of their own."""
    _LAYOUT["layout"] = request.param
    tokens = FakeTaskTokens()
    use_ports(tokens=tokens, channel=object())
    now = time.time()
    get_ports().store.put_rows(_job_rows(JOB, ROBOTS, now, deadline=now + 600))
    yield tokens
    reset_ports()
    _LAYOUT["layout"] = "rows"


STEPS = ["Validating", "DownloadingExtracting", "ExecutingPreLaunch", "Launching", "Finished"]


def report(
    robot: str, seq: int, status: str = "Deploying", *, job: str = JOB, attempt: int = 1, **extra
) -> dict:
    step = STEPS[min(seq, len(STEPS) - 1)] if status != "InSync" else "Finished"
    return {
        "jobId": job,
        "attempt": attempt,
        "seq": seq,
        "step": extra.pop("step", step),
        "status": status,
        "percentDone": 100.0 if status == "InSync" else 20.0 * min(seq, 4),
        "sentAt": time.time(),
        "robotName": robot,
        **extra,
    }


def final(robot: str, seq: int = 4, **extra) -> dict:
    return report(robot, seq, "InSync", **extra)


def batch(*bodies: dict, ids: list[str] | None = None) -> dict:
    names = ids or [f"m-{index}" for index in range(len(bodies))]
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": "h",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:status",
                "awsRegion": "us-east-1",
            }
            for message_id, body in zip(names, bodies, strict=True)
        ]
    }


def row(robot: str, job: str = JOB) -> dict:
    return get_ports().store.get_robot_deployment(job, robot)


def counts(job: str = JOB) -> tuple[int, int, int]:
    wave = get_ports().store.get_wave(job, 1)
    return wave["succeededCount"], wave["failedCount"], wave["noResponseCount"]


@pytest.fixture
def writes():
    counter = WriteCounter()
    counter.install()
    yield counter
    counter.uninstall()


def test_batch_duplicates_and_out_of_order_reports_of_one_robot_apply_once(tokens, writes):
    # Given r1's reports arriving shuffled in one batch: a final report three times, progress before and after
    event = batch(final("r1"), report("r1", 2), final("r1"), report("r1", 0), report("r1", 3), final("r1"))

    # When the batch is handled
    response = lambda_handler(event, CONTEXT)

    # Then r1 is InSync once: counted once, with its final report's detail; nothing is retried
    assert response == {"batchItemFailures": []}
    assert row("r1")["status"] == "InSync"
    assert row("r1")["progressDetail"]["currentProgress"] == "Finished"
    assert counts() == (1, 0, 0)
    # and the batch wrote r1's row once, its wave's counter once and the robot itself once: the progress
    # reports that the final one supersedes cost nothing
    assert writes.reset() == 3
    assert tokens.calls == []  # the wave (r1, r2, r3) is not over


def test_batch_progress_reports_of_one_robot_leave_the_newest_that_does_not_go_backwards(tokens):
    # Given one batch with r2 at ExecutingPreLaunch (seq 2), an older report (seq 1) and a newer one claiming
    # an earlier step (seq 3, Validating)
    event = batch(report("r2", 2), report("r2", 1), report("r2", 3, step="Validating"))

    # When it is handled
    lambda_handler(event, CONTEXT)

    # Then r2 shows ExecutingPreLaunch, still deploying: as if the reports had arrived one by one
    assert row("r2")["progressDetail"]["currentProgress"] == "ExecutingPreLaunch"
    assert (row("r2")["status"], row("r2")["seq"]) == ("Deploying", 2)


def test_batch_reports_across_batches_late_duplicate_and_stale_change_nothing(tokens):
    # Given r1 finished in an earlier batch and r2 reported progress (seq 3)
    lambda_handler(batch(final("r1"), report("r2", 3)), CONTEXT)
    before = (row("r1"), row("r2"), counts())

    # When a later batch redelivers r1's final report, brings r1's progress late, an older report of r2,
    # a report of a stale attempt and one of a robot or a job nobody deploys
    response = lambda_handler(
        batch(
            final("r1"),
            report("r1", 2),
            report("r2", 2),
            report("r2", 4, attempt=2),
            final("ghost"),
            final("r3", job="deployment-000000000000"),
        ),
        CONTEXT,
    )

    # Then nothing changed and nothing is retried
    assert response == {"batchItemFailures": []}
    assert (row("r1"), row("r2"), counts()) == before


def test_batch_reports_after_the_robots_deadline_are_ignored_beside_those_in_time(aws):
    # Given a job whose robots' deadline has passed (the sweep has not run yet), and one in time
    tokens = FakeTaskTokens()
    use_ports(tokens=tokens, channel=object())
    now = time.time()
    store = get_ports().store
    store.put_rows(_job_rows(JOB, ("r1",), now, deadline=now - 1))
    store.put_rows(_job_rows(OTHER_JOB, ("r1",), now, deadline=now + 600))
    try:
        # When r1's final reports for both jobs arrive in one batch
        lambda_handler(batch(final("r1"), final("r1", job=OTHER_JOB)), CONTEXT)

        # Then the late one changed nothing; the other finished r1 and ended its one-robot wave
        assert row("r1")["status"] == "Deploying"
        assert row("r1", OTHER_JOB)["status"] == "InSync"
        assert [call.token for call in tokens.calls] == [f"token-{OTHER_JOB}"]
    finally:
        reset_ports()


def test_batch_counts_each_wave_with_one_update_and_checks_it_once(tokens, monkeypatch):
    # Given every robot of the wave reporting its end in one batch (one of them failing)
    updates: list[tuple[int, dict]] = []
    add = RolloutStore.add_wave_counts
    monkeypatch.setattr(
        RolloutStore,
        "add_wave_counts",
        lambda self, job, wave, c: (updates.append((wave, dict(c))), add(self, job, wave, c)),
    )
    event = batch(
        report("r1", 1),
        final("r1"),
        final("r2"),
        report("r3", 2, "Failed", failureCode="PreLaunchFileFailure", failureReason="exit 1"),
    )

    # When the batch is handled
    lambda_handler(event, CONTEXT)

    # Then the wave's counters moved once, by the whole batch, and its wait ended once
    assert updates == [(1, {"succeededCount": 2, "failedCount": 1})]
    assert counts() == (2, 1, 0)
    assert [(call.token, call.output) for call in tokens.calls] == [
        (f"token-{JOB}", {"wave": 1, "complete": True, "thresholdBreached": False})
    ]
    assert row("r3")["failureCode"] == "PreLaunchFileFailure"


def test_batch_a_failing_robot_fails_its_own_records_only_and_its_redelivery_applies_once(
    tokens, monkeypatch
):
    # Given the store fails r2's write (a throttled request), not the others'
    original = RolloutStore.finish_robot

    def flaky(self, job_id, robot_name, **kwargs):
        if robot_name == "r2":
            raise ConnectionError("ProvisionedThroughputExceededException (fake)")
        return original(self, job_id, robot_name, **kwargs)

    monkeypatch.setattr(RolloutStore, "finish_robot", flaky)

    # When r1's and r2's final reports (and r2's progress) arrive in one batch
    event = batch(final("r1"), report("r2", 2), final("r2"), ids=["r1-final", "r2-progress", "r2-final"])
    response = lambda_handler(event, CONTEXT)

    # Then only r2's records go back to SQS; r1 is InSync and counted
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "r2-progress"}, {"itemIdentifier": "r2-final"}]
    }
    assert (row("r1")["status"], row("r2")["status"], counts()) == ("InSync", "Deploying", (1, 0, 0))

    # When SQS redelivers them (with r1's final again: at-least-once) and the store is back
    monkeypatch.setattr(RolloutStore, "finish_robot", original)
    response = lambda_handler(batch(report("r2", 2), final("r2"), final("r1")), CONTEXT)

    # Then r2 is applied, r1 is not counted twice
    assert response == {"batchItemFailures": []}
    assert (row("r2")["status"], counts()) == ("InSync", (2, 0, 0))


def test_batch_robots_of_two_jobs_in_one_batch(tokens):
    # Given a second job deploying r1 as well
    now = time.time()
    get_ports().store.put_rows(_job_rows(OTHER_JOB, ("r1",), now, deadline=now + 600))

    # When one batch carries r1's reports for both jobs, interleaved
    lambda_handler(batch(report("r1", 1), final("r1", job=OTHER_JOB), report("r1", 2), final("r1")), CONTEXT)

    # Then each job's row took its own report: InSync in both, counted once in each
    assert (row("r1")["status"], row("r1", OTHER_JOB)["status"]) == ("InSync", "InSync")
    assert (counts(), counts(OTHER_JOB)) == ((1, 0, 0), (1, 0, 0))
    assert Counter(call.token for call in tokens.calls) == Counter([f"token-{OTHER_JOB}"])


def test_batch_progress_is_written_at_most_every_interval_and_the_outcome_always(tokens, writes):
    # Given r1's first progress report (written: the robot started)
    lambda_handler(batch(report("r1", 1)), CONTEXT)
    assert row("r1")["seq"] == 1
    writes.reset()

    # When its next step is reported moments later (another batch)
    lambda_handler(batch(report("r1", 2)), CONTEXT)

    # Then it is accepted but not written: the row still shows the first step, at no write
    assert (row("r1")["seq"], row("r1")["progressDetail"]["currentProgress"]) == (1, "DownloadingExtracting")
    assert writes.reset() == 0

    # When the robot sends its next step once the interval has passed since the one written, it is written
    later = row("r1")["progressSentAt"] + PROGRESS_INTERVAL_SECONDS
    lambda_handler(batch(report("r1", 3, sentAt=later)), CONTEXT)
    assert (row("r1")["seq"], row("r1")["progressDetail"]["currentProgress"]) == (3, "Launching")

    # and the outcome is written at once, whatever the interval
    lambda_handler(batch(final("r1")), CONTEXT)
    assert (row("r1")["status"], counts()) == ("InSync", (1, 0, 0))


def test_batch_a_row_that_moved_since_it_was_read_is_read_again_and_the_reports_played_again(
    tokens, monkeypatch
):
    # Given r1 at seq 3 already (another batch applied it), while this batch read r1 before that (seq -1)
    lambda_handler(batch(report("r1", 3)), CONTEXT)
    stale = {**row("r1"), "seq": -1}
    stale.pop("stepIndex")
    read = RolloutStore.robot_deployments
    monkeypatch.setattr(
        RolloutStore, "robot_deployments", lambda self, job, names: {**read(self, job, names), "r1": stale}
    )

    # When the batch brings r1's older progress (seq 2) and r2's final report alongside, then r1's final one
    lambda_handler(batch(report("r1", 2), final("r2")), CONTEXT)
    lambda_handler(batch(final("r1")), CONTEXT)

    # Then the older progress changed nothing (the write found the row moved, the row read again showed it
    # a duplicate), and both final reports applied once each
    assert (row("r1")["status"], row("r1")["seq"], row("r2")["status"]) == ("InSync", 4, "InSync")
    assert counts() == (2, 0, 0)
