"""Prepare plans a wave's robots in plan rows (``PLAN#``, many robots to a row) instead of a ``ROBOT#`` row
per robot; each robot gets its row with its first write of its own. Every reader of a job's robot rows
shows the planned robots as the rows prepare used to write, and the writes that may come first for a
robot (a report, the sweep, finalize) store its row whole, once."""

from __future__ import annotations

import time
import uuid

import pytest
from fakes.rollout import FakeTaskTokens
from fleetwave_service.core import dynamo, keys
from fleetwave_service.core.keys import job_key, robot_deployment_key, wave_key
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports
from fleetwave_service.engine.store import PLAN_CHUNK_BYTES, PLANNED, plan_chunks

JOB = "deployment-plannedplann1"
# Names of the longest kind, so that a wave's robots take several plan rows
NAMES = [f"robot-{index:04d}-" + "x" * 240 for index in range(300)]


def _robot(name: str) -> dict:
    return {
        "name": name,
        "arn": f"arn:aws:robomaker:us-east-1:123456789012:robot/{name}/1",
        "architecture": "ARM64",
    }


def _partition() -> list[dict]:
    return dynamo.query_all(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues=dynamo.values(pk=keys.job_partition(JOB))
    )


def test_plan_rows_hold_a_waves_robots_in_name_order_in_bounded_rows():
    job = {"id": JOB, "expiresAt": 123}
    members, rows = plan_chunks(job, 2, [_robot(name) for name in reversed(NAMES)], "plan-1")
    # Several rows, each within its bound, holding every robot once, in name order
    assert len(rows) > 1
    entries = [entry for _, row in rows for entry in row["robots"]]
    assert [entry[0] for entry in entries] == NAMES
    for _, row in rows:
        assert sum(len(str(v)) for entry in row["robots"] for v in entry) <= PLAN_CHUNK_BYTES
        assert (row["wave"], row["planId"], row["expiresAt"]) == (2, "plan-1", 123)
    assert [row["chunk"] for _, row in rows] == list(range(len(rows)))
    # The wave's row says how many, their range, and each row's range
    assert (members["size"], members["firstRobot"], members["lastRobot"]) == (300, NAMES[0], NAMES[-1])
    assert members["chunks"] == [row["robots"][0][0] for _, row in rows]
    assert members["planId"] == "plan-1"
    assert [key.sk for key, _ in rows] == [keys.plan_key(JOB, 2, index).sk for index in range(len(rows))]


@pytest.fixture
def planned(aws):
    """JOB InProgress: wave 1 (the first 200 robots, released) and wave 2 (the other 100, not released),
    written as prepare writes them; one robot failed before release (wave 0, a row of its own)."""
    use_ports(tokens=FakeTaskTokens(), channel=object())
    now = time.time()
    expires = int(now) + 86400
    job = {"id": JOB, "expiresAt": expires}
    plan_id = uuid.uuid4().hex
    rows: list = [
        (job_key(JOB), {"id": JOB, "status": "InProgress", "createdAt": now, "expiresAt": expires,
                        "currentWave": 1, "deploymentConfig": {}}),
        (robot_deployment_key(JOB, "robot-0000-a"), {"robotName": "robot-0000-a", "arn": "arn:a", "wave": 0,
                                                      "status": "Failed", "expiresAt": expires}),
    ]  # fmt: skip
    for number, names, release in ((1, NAMES[:200], True), (2, NAMES[200:], False)):
        members, plan_rows = plan_chunks(job, number, [_robot(name) for name in names], plan_id)
        wave = {"wave": number, "succeededCount": 0, "failedCount": 0, "noResponseCount": 0, **members,
                "expiresAt": expires}  # fmt: skip
        if release:
            wave.update(releasedAt=now, attempt=1, robotDeadline=now + 600)
        rows += [(wave_key(JOB, number), wave), *plan_rows]
    get_ports().store.put_rows(rows)
    yield now
    reset_ports()


def test_readers_show_planned_robots_as_their_rows(planned):
    store = get_ports().store
    # No robot row but the one failed before release
    assert [row["sk"] for row in _partition() if row["sk"].startswith("ROBOT#")] == ["ROBOT#robot-0000-a"]

    # The job's robots: all of them, in name order, Deploying in the released wave, pending in the other
    every = list(store.job_robot_deployments(JOB))
    assert [row["robotName"] for row in every] == sorted(["robot-0000-a", *NAMES])
    by_name = {row["robotName"]: row for row in every}
    first, later = by_name[NAMES[0]], by_name[NAMES[250]]
    assert (first["status"], first["attempt"], first["deploymentStartTime"]) == ("Deploying", 1, planned)
    assert (first["arn"], first["architecture"], first["wave"]) == (_robot(NAMES[0])["arn"], "ARM64", 1)
    assert (later["status"], later["wave"]) == ("PendingNewDeployment", 2)
    # By status, by name (in any chunk, robots of no plan absent), by wave
    assert len(list(store.job_robot_deployments(JOB, ("Deploying",)))) == 200
    assert [row["robotName"] for row in store.job_robot_deployments(JOB, ("Failed",))] == ["robot-0000-a"]
    some = [NAMES[5], NAMES[150], NAMES[299], "robot-0000-a", "not-in-the-job"]
    found = store.robot_deployments(JOB, some)
    assert sorted(found) == sorted(some[:4])
    assert found[NAMES[299]]["status"] == "PendingNewDeployment"
    assert store.get_robot_deployment(JOB, "not-in-the-job") is None
    assert [row["robotName"] for row in store.wave_robot_deployments(JOB, 2)] == NAMES[200:]
    assert [row["robotName"] for row in store.wave_members(JOB, 1)] == NAMES[:200]


def test_a_planned_robots_first_write_stores_its_row_whole_once(planned):
    store = get_ports().store
    # Given a robot of the released wave read by two writers (its report's batch, the sweep)
    read = store.get_robot_deployment(JOB, NAMES[7])
    assert read[PLANNED]
    # When its outcome is written, then the sweep's NoResponse as read before
    done = store.finish_robot(JOB, NAMES[7], status="InSync", fields={"seq": 4}, read=read)
    swept = store.finish_robot(
        JOB, NAMES[7], status="NoResponse", fields={}, as_read=read,
        from_statuses=("Deploying", "PendingNewDeployment"),
    )  # fmt: skip
    # Then the first applied, whole (plan and release), and counted once; the second changed nothing
    assert done is not None and swept is None
    stored = dynamo.get(*robot_deployment_key(JOB, NAMES[7]))
    assert {k: stored[k] for k in ("robotName", "wave", "architecture", "status", "attempt", "seq")} == {
        "robotName": NAMES[7], "wave": 1, "architecture": "ARM64", "status": "InSync", "attempt": 1, "seq": 4,
    }  # fmt: skip
    assert stored["arn"] == _robot(NAMES[7])["arn"] and stored["expiresAt"] and PLANNED not in stored
    assert store.get_wave(JOB, 1)["succeededCount"] == 1
    # And the same outcome again, against the robot as first read, finds its row there: nothing changes
    assert store.finish_robot(JOB, NAMES[7], status="InSync", fields={"seq": 4}, read=read) is None
    assert store.get_wave(JOB, 1)["succeededCount"] == 1

    # When finalize stops a robot never released (wave 2), its row is stored whole, not counted
    pending = store.get_robot_deployment(JOB, NAMES[250])
    stopped = store.finish_robot(
        JOB, NAMES[250], status="Failed", fields={"notReleased": True}, count=False,
        from_statuses=("PendingNewDeployment",), as_read=pending,
    )  # fmt: skip
    assert stopped is not None
    stored = dynamo.get(*robot_deployment_key(JOB, NAMES[250]))
    assert (stored["status"], stored["wave"], stored["robotName"]) == ("Failed", 2, NAMES[250])
    assert store.get_wave(JOB, 2)["failedCount"] == 0
    # and every reader now shows the stored rows, each robot once
    every = list(store.job_robot_deployments(JOB))
    assert len(every) == 301
    statuses = {row["robotName"]: row["status"] for row in every}
    assert (statuses[NAMES[7]], statuses[NAMES[250]], statuses[NAMES[8]]) == ("InSync", "Failed", "Deploying")


def test_a_write_of_a_robot_that_is_not_planned_creates_nothing(planned):
    store = get_ports().store
    # A caller that did not read the robot as planned (no row, no plan entry): the condition fails
    assert store.finish_robot(JOB, "not-in-the-job", status="Failed", fields={}) is None
    assert dynamo.get(*robot_deployment_key(JOB, "not-in-the-job")) is None


def test_plan_rows_read_are_kept_by_their_prepare_run_and_a_retried_prepares_are_read_anew(planned):
    store = get_ports().store
    names = [NAMES[3], NAMES[150]]
    assert sorted(store.robot_deployments(JOB, names)) == sorted(names)
    # Given the plan rows read once: reading the same robots again reads no plan row
    reads = []
    batch_get = type(store).batch_get

    def counting(self, row_keys):
        reads.extend(key for key in row_keys if key[1].startswith("PLAN#"))
        return batch_get(self, row_keys)

    type(store).batch_get = counting
    try:
        assert sorted(store.robot_deployments(JOB, names)) == sorted(names)
        assert reads == []
        # When a retried prepare plans wave 1 again under its own id, with other robots
        job = {"id": JOB, "expiresAt": int(planned) + 86400}
        members, plan_rows = plan_chunks(job, 1, [_robot("robot-new")], uuid.uuid4().hex)
        wave = {**store.get_wave(JOB, 1), **members}
        store.put_rows([(wave_key(JOB, 1), wave), *plan_rows])
        # Then its plan rows are read, not the ones kept
        found = store.robot_deployments(JOB, [NAMES[3], "robot-new"])
        assert reads and sorted(found) == ["robot-new"]
    finally:
        type(store).batch_get = batch_get


def _finalizing() -> None:
    """The job as finalize reads it (its ARN, its fleet), with a channel and events that record."""
    from fakes.channel import FakeRobotChannel
    from fakes.rollout import FakeEvents

    use_ports(tokens=FakeTaskTokens(), channel=FakeRobotChannel(), events=FakeEvents())
    arn = f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}"
    fleet = "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/fleet-x/1"
    dynamo.update(job_key(JOB), sets={"arn": arn, "fleet": fleet, "fleetName": "fleet-x"})


def test_finalize_writes_the_jobs_status_once_its_robots_are_finished(planned, monkeypatch):
    from fleetwave_service.engine import steps

    # Given the job stopped by its failure threshold: wave 1 in flight, wave 2 never released
    _finalizing()
    store = get_ports().store
    seen: dict = {}
    finish_job = type(store).finish_job

    def finish_job_seeing_robots(self, job_id, status, fields):
        # What a reader sees the moment the job's status becomes final
        seen["robots"] = {row["status"] for row in store.job_robot_deployments(job_id)}
        seen["fields"] = fields
        return finish_job(self, job_id, status, fields)

    monkeypatch.setattr(type(store), "finish_job", finish_job_seeing_robots)
    finalized = steps.finalize(JOB, steps.ABORT, get_ports(), "FailureThresholdBreached", "too many failed")
    assert finalized["status"] == "Failed"
    # Then every robot was already finished, and the status came with the counts recounted from them
    assert seen["robots"] == {"Failed"}
    assert {k: seen["fields"][k] for k in ("failedCount", "notReleasedCount", "succeededCount")} == {
        "failedCount": 201, "notReleasedCount": 100, "succeededCount": 0,
    }  # fmt: skip
    job = store.get_job(JOB)
    assert (job["status"], job["notReleasedCount"], job["failedCount"]) == ("Failed", 100, 201)


def test_finalize_of_a_job_canceled_meanwhile_keeps_the_cancel(planned, monkeypatch):
    from fleetwave_service.engine import steps

    _finalizing()
    store = get_ports().store
    stop = type(store).finish_robot

    def cancel_while_robots_stop(self, *args, **kwargs):
        # The user cancels while finalize stops the robots
        store.update_status(JOB, "Canceled", ("InProgress",))
        return stop(self, *args, **kwargs)

    monkeypatch.setattr(type(store), "finish_robot", cancel_while_robots_stop)
    assert steps.finalize(JOB, steps.DONE, get_ports())["status"] == "Canceled"
    job = store.get_job(JOB)
    assert (job["status"], job["notReleasedCount"]) == ("Canceled", 100)
