"""A wave releases in place: no row written per robot. A robot's row still pending in a released wave reads
as Deploying (engine/store.py ``as_released``), and the exactly-once rules hold against it: its first write
of its own happens once, whoever gets there first (a report, the sweep). The same with no row at all: a
robot prepare planned in its wave's plan rows (``PLAN#``), as prepare does now; rows as prepare wrote them
before are what jobs prepared by an earlier version have."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
from fakes.rollout import FakeTaskTokens
from fleetwave_service.core import dynamo
from fleetwave_service.core.keys import job_key, robot_deployment_key, robot_key, wave_key
from fleetwave_service.engine import inbound
from fleetwave_service.engine.inbound import StatusReport
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports
from fleetwave_service.engine.reports import ReportOutcome, handle_report
from fleetwave_service.engine.store import as_released, plan_chunks

JOB = "deployment-inplaceinpla1"
ARN = f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}"


def _wave(**extra) -> dict:
    return {"wave": 1, "firstRobot": "r1", "lastRobot": "r2", "size": 2, **extra}


RELEASED = _wave(releasedAt=1000.0, attempt=1, robotDeadline=1600.0)


def test_as_released_makes_a_pending_row_of_a_released_wave_deploying_and_nothing_else():
    pending = {"robotName": "r1", "wave": 1, "status": "PendingNewDeployment"}
    # A released wave: Deploying, with the wave's attempt, deadline and start, no report yet
    row = as_released(pending, {1: RELEASED})
    assert {k: row[k] for k in ("status", "attempt", "deadline", "deploymentStartTime", "seq")} == {
        "status": "Deploying",
        "attempt": 1,
        "deadline": 1600.0,
        "deploymentStartTime": 1000.0,
        "seq": -1,
    }
    # Not yet released, or a wave whose release marks each robot (queued, or planned by an earlier version)
    assert as_released(pending, {1: _wave()}) == pending
    assert as_released(pending, {1: {"wave": 1, "releasedAt": 1000.0, "queueStart": 0}}) == pending
    assert as_released(pending, {}) == pending
    # A row the sweep finished takes the wave's start and deadline; what a row stored itself stands
    swept = as_released({"robotName": "r1", "wave": 1, "status": "NoResponse"}, {1: RELEASED})
    assert (swept["status"], swept["deploymentStartTime"], swept["attempt"]) == ("NoResponse", 1000.0, 1)
    own = as_released({"wave": 1, "status": "InSync", "deploymentStartTime": 999.0}, {1: RELEASED})
    assert own["deploymentStartTime"] == 999.0


@pytest.fixture(params=["planned", "prepared-before"])
def released(aws, request):
    """JOB InProgress, its wave 1 (r1, r2) released in place: the robots planned in the wave's plan rows
    (no row of their own), or with their rows as prepare wrote them before plan rows."""
    use_ports(tokens=FakeTaskTokens(), channel=object())
    now = time.time()
    expires = int(now) + 86400
    rows = [
        (
            job_key(JOB),
            {
                "id": JOB,
                "arn": ARN,
                "fleetName": "warehouse",
                "status": "InProgress",
                "createdAt": now,
                "expiresAt": expires,
                "targetCount": 2,
                "currentWave": 1,
                "waveToken": "token",
                "deploymentConfig": {},
            },
        ),  # fmt: skip
        (
            wave_key(JOB, 1),
            {
                **_wave(releasedAt=now, attempt=1, robotDeadline=now + 600),
                "succeededCount": 0,
                "failedCount": 0,
                "noResponseCount": 0,
                "expiresAt": expires,
            },
        ),  # fmt: skip
    ]
    for robot in ("r1", "r2"):
        rows.append(
            (robot_key(robot), {"name": robot, "fleetName": "warehouse", "status": "Deploying",
                                "lastDeploymentJob": ARN})
        )  # fmt: skip
        if request.param == "prepared-before":
            rows.append(
                (robot_deployment_key(JOB, robot), {"robotName": robot, "arn": f"arn:robot/{robot}/1",
                                                    "wave": 1, "status": "PendingNewDeployment",
                                                    "expiresAt": expires})
            )  # fmt: skip
    if request.param == "planned":
        robots = [{"name": r, "arn": f"arn:robot/{r}/1", "architecture": "X86_64"} for r in ("r2", "r1")]
        members, plan_rows = plan_chunks({"id": JOB, "expiresAt": expires}, 1, robots, uuid.uuid4().hex)
        rows[1][1].update(members)
        rows += plan_rows
    get_ports().store.put_rows(rows)
    yield now
    reset_ports()


def _report(seq: int, status: str = "Deploying", step: str = "Validating") -> StatusReport:
    return inbound.read(
        StatusReport,
        {"jobId": JOB, "attempt": 1, "seq": seq, "step": step, "status": status,
         "percentDone": 100.0 if status == "InSync" else 10.0, "sentAt": time.time()}
    )  # fmt: skip


def _stored(robot: str) -> dict:
    return dynamo.get(*robot_deployment_key(JOB, robot)) or {}


def test_a_robots_first_report_applies_once_and_stores_its_release(released):
    # When r1's first report arrives twice (QoS 1, SQS redelivery), then a stale attempt
    first = _report(0)
    assert handle_report("r1", first, get_ports()) is ReportOutcome.PROGRESS
    assert handle_report("r1", first, get_ports()) is ReportOutcome.DUPLICATE
    stale = dataclasses.replace(first, attempt=2, seq=1)
    assert handle_report("r1", stale, get_ports()) is ReportOutcome.STALE_ATTEMPT
    # Then its row took the report once, with the release its wave gave it (and its plan: a planned
    # robot's row is written whole by its first write)
    stored = _stored("r1")
    assert (stored["status"], stored["seq"], stored["attempt"]) == ("Deploying", 0, 1)
    assert (stored["robotName"], stored["arn"], stored["wave"]) == ("r1", "arn:robot/r1/1", 1)
    assert float(stored["deploymentStartTime"]) == pytest.approx(released)
    # And r1's outcome counts once, also when its robot's first write is the outcome (r2)
    done = _report(4, "InSync", "Finished")
    assert handle_report("r1", done, get_ports()) is ReportOutcome.FINISHED
    assert handle_report("r2", done, get_ports()) is ReportOutcome.FINISHED
    assert handle_report("r2", done, get_ports()) is ReportOutcome.NOT_DEPLOYING
    wave = get_ports().store.get_wave(JOB, 1)
    assert (wave["succeededCount"], wave["failedCount"]) == (2, 0)
    assert (_stored("r2")["status"], _stored("r2")["robotName"], _stored("r2")["wave"]) == ("InSync", "r2", 1)


def test_a_report_and_the_sweep_racing_on_a_pending_row_apply_once(released):
    store = get_ports().store
    # Given r1's row read as Deploying by a report's batch, and the sweep marking it NoResponse meanwhile
    read = store.get_robot_deployment(JOB, "r1")
    assert read["status"] == "Deploying"
    swept = store.finish_robot(JOB, "r1", status="NoResponse", fields={}, count=False, as_read=read)
    assert swept is not None and (swept["robotName"], swept["wave"]) == ("r1", 1)
    # When the report's write comes after it
    written = store.finish_robot(JOB, "r1", status="InSync", fields={}, read=read, count=False)
    # Then it changes nothing: the sweep got there first
    assert written is None
    assert _stored("r1")["status"] == "NoResponse"
    # And the other way round: r2's outcome first, then the sweep finds it finished
    assert handle_report("r2", _report(4, "InSync", "Finished"), get_ports()) is ReportOutcome.FINISHED
    assert store.finish_robot(JOB, "r2", status="NoResponse", fields={}, count=False, as_read=read) is None
    assert _stored("r2")["status"] == "InSync"


def test_a_pending_row_of_a_wave_not_yet_released_is_not_deploying(released):
    store = get_ports().store
    # Given wave 1 not released yet (its row has no release)
    unreleased = {k: v for k, v in store.get_wave(JOB, 1).items() if k not in ("releasedAt", "robotDeadline")}
    store.put_rows([(wave_key(JOB, 1), unreleased)])
    # Then r1 reads as pending, and a report for it changes nothing
    before = _stored("r1")
    assert store.get_robot_deployment(JOB, "r1")["status"] == "PendingNewDeployment"
    assert handle_report("r1", _report(0), get_ports()) is ReportOutcome.NOT_DEPLOYING
    assert _stored("r1") == before


def test_a_robots_own_row_takes_a_jobs_outcome_unless_a_newer_job_is_its_last_deployment(aws):
    # Given a robot of fleet warehouse whose last deployment is a job created at 2000
    store = get_ports().store
    dynamo.put_rows([(robot_key("r9"), {"name": "r9", "fleetName": "warehouse", "status": "Registered"})])
    assert store.update_robot_entity("r9", "warehouse", {"status": "InSync"}, ("arn:newer", 2000.0))

    # Then an outcome of an older job (created at 1000) changes nothing, and one of another fleet neither
    assert not store.update_robot_entity("r9", "warehouse", {"status": "Failed"}, ("arn:older", 1000.0))
    assert not store.update_robot_entity("r9", "elsewhere", {"status": "Failed"}, ("arn:later", 3000.0))
    row = dynamo.get(*robot_key("r9"))
    assert (row["status"], row["lastDeploymentJob"], row["lastDeploymentTime"]) == (
        "InSync",
        "arn:newer",
        2000,
    )

    # While the same job's later outcome (a robot back after its timeout), or a newer job's, is recorded
    assert store.update_robot_entity("r9", "warehouse", {"status": "Failed"}, ("arn:newer", 2000.0))
    assert store.update_robot_entity("r9", "warehouse", {"status": "InSync"}, ("arn:latest", 3000.0))
    row = dynamo.get(*robot_key("r9"))
    assert (row["status"], row["lastDeploymentJob"]) == ("InSync", "arn:latest")
    # A robot that is gone takes nothing
    assert not store.update_robot_entity("gone", "warehouse", {"status": "InSync"}, ("arn:latest", 3000.0))
    assert store.robots_outside_fleet(["r9", "gone"], "warehouse") == ["gone"]
    assert store.robots_outside_fleet(["r9"], "elsewhere") == ["r9"]
