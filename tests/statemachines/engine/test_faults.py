"""Fault injection on the rollout (issue 11): the real ASL on moto, the real status handler, faults injected
into the status path (DynamoDB throttles through tests/fakes/faults.py), hostile report streams, and races
on CreateDeploymentJob. Each case ends with the job terminal, every robot's outcome right, the counters
equal to the per-robot rows, no row lost or counted twice (support/invariants.py).

The longer, repeated version is `make chaos` (tests/chaos_run.py), which prints figures.
"""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from fakes.faults import FlakyStore
from support.invariants import assert_rollout_consistent, job_id_of
from support.rollout_harness import HOLD, SILENT, report

pytestmark = pytest.mark.chaos


def _flaky_store(rollout) -> FlakyStore:
    from fleetwave_service.engine.ports import get_ports, use_ports

    store = FlakyStore(get_ports().store)
    use_ports(store=store, channel=rollout.robots.channel)
    return store


def test_a_status_batch_failing_part_way_is_redelivered_and_applied_exactly_once(rollout):
    # Given 6 robots in one wave, and DynamoDB throttling some of the status writes: final reports of r01
    # and r04 before the write, a progress report of r02, and r03's final report after its write succeeded
    # (the answer lost: SQS will deliver it again)
    fleet = rollout.fleet_of(6, "faults")
    version = rollout.given.application_version("nav")
    store = _flaky_store(rollout)
    store.plan("finish_robot", robots={"r01"})
    store.plan("finish_robot", robots={"r04"}, times=2)
    store.plan("update_robot_progress", robots={"r02"})
    store.plan("finish_robot", robots={"r03"}, after=True)
    rollout.robots.redeliver = True

    # When the deployment runs
    job = rollout.run(fleet, version)

    # Then only the failed records were delivered again (partial batch response), and each was applied once
    assert store.pending() == 0 and len(store.injected) == 5
    assert rollout.robots.redelivered == 5
    assert job["status"] == "Succeeded", job
    outcome = assert_rollout_consistent(job_id_of(job), {f"r{i:02d}" for i in range(6)})
    assert set(outcome.values()) == {"InSync"}


def test_a_failing_link_request_is_redelivered_alone_beside_reports_health_and_presence(rollout):
    # Given 3 robots holding their command, and DynamoDB throttling the first read of r01's link request
    fleet = rollout.fleet_of(3, "mixed")
    version = rollout.given.application_version("nav")
    for index in range(3):
        rollout.robots.behave(f"r{index:02d}", HOLD)
    job = rollout.start(fleet, version)
    rollout.pump_until(lambda: len(rollout.robots.held) == 3, "the commands")
    command = rollout.robots.held["r01"]
    store = _flaky_store(rollout)
    store.plan("get_robot_deployment", robots={"r01"})
    rollout.robots.redeliver = True

    # When one status batch carries, in this order, r01's link request, a health and a presence message,
    # and the robots' final reports
    link_request = {"schemaVersion": "1", "kind": "linkRequest", "requestId": "req-1",
                    "jobId": command.jobId, "attempt": command.attempt, "sentAt": time.time()}  # fmt: skip
    rollout.robots.send("r01", link_request)
    rollout.robots.send("r00", {"schemaVersion": "1", "kind": "health", "state": "Running",
                                "jobId": command.jobId, "sentAt": time.time()})  # fmt: skip
    rollout.robots.send("r02", {"schemaVersion": "1", "kind": "presence", "connected": True})
    for robot in ("r00", "r01", "r02"):
        rollout.robots.finish(robot)
    job = rollout.wait(job)

    # Then only the link request was delivered again, and answered once, with links; every report counted once
    assert store.injected == [("get_robot_deployment", "r01")]
    assert rollout.robots.redelivered == 1
    [(robot, topic, payload)] = rollout.robots.channel.replies
    assert (robot, topic) == ("r01", "fleetwave/robots/r01/links")
    assert json.loads(payload)["requestId"] == "req-1" and "error" not in json.loads(payload)
    assert job["status"] == "Succeeded", job
    assert set(assert_rollout_consistent(job_id_of(job), {"r00", "r01", "r02"}).values()) == {"InSync"}
    described = {
        name: rollout.given.ok("describeRobot", {"robot": arn})
        for name, arn in ((r["name"], r["arn"]) for r in rollout.given.ok("listRobots", {})["robots"])
    }
    assert described["r00"]["applicationHealth"]["status"] == "Running"
    assert described["r02"]["connectivity"]["status"] == "Online"


def test_duplicate_out_of_order_late_and_foreign_reports_change_nothing_they_should_not(rollout):
    # Given two fleets; job B runs on fleet B, and fleet A's six robots hold their command
    rollout.time_scale(0.01)
    fleet_a = rollout.fleet_of(6, "hostile-a", "a")
    fleet_b = rollout.fleet_of(1, "hostile-b", "b")
    version = rollout.given.application_version("nav")
    other = rollout.run(fleet_b, version)
    for index in range(6):
        rollout.robots.behave(f"a{index:02d}", HOLD)
    rollout.robots.behave("a05", SILENT)
    job = rollout.start(fleet_a, version, deploymentConfig={"robotDeploymentTimeoutInSeconds": 1500})
    rollout.pump_until(lambda: len(rollout.robots.held) == 5, "the commands")
    command = rollout.robots.held["a00"]
    jid, attempt = command.jobId, command.attempt
    rng = random.Random(11)

    def stream(robot: str, status: str = "InSync") -> list[tuple[str, dict]]:
        final = "Finished" if status == "InSync" else "Launching"
        extra = {"failureCode": "RobotAgentConnectionTimeout"} if status == "Failed" else {}
        steps = ["Validating", "DownloadingExtracting", "ExecutingDownloadCondition", "ExecutingPreLaunch"]
        reports = [(robot, report(jid, attempt, seq, step)) for seq, step in enumerate(steps)]
        return reports + [(robot, report(jid, attempt, len(steps), final, status, **extra))]

    # When reports arrive twice, shuffled (a final one before the progress it follows), interleaved with
    # foreign ones: a robot the job does not target, another job's id, an attempt the job never issued
    hostile = []
    for robot, status in (("a00", "InSync"), ("a01", "InSync"), ("a02", "Failed"), ("a03", "InSync")):
        hostile += stream(robot, status) * 2
    hostile += [
        ("b00", report(jid, attempt, 6, "Finished", "InSync")),
        ("intruder", report(jid, attempt, 6, "Finished", "InSync")),
        ("a04", report(job_id_of(other), attempt, 6, "Finished", "InSync")),
        ("a04", report(jid, attempt + 1, 6, "Finished", "InSync")),
    ]
    rng.shuffle(hostile)
    for robot, payload in hostile:
        rollout.robots.send(robot, payload)
    rollout.robots.deliver()
    # a04 answers properly; a05 stays silent past its timeout, then reports (late)
    for robot, payload in stream("a04"):
        rollout.robots.send(robot, payload)
    job = rollout.wait(job)
    for robot, payload in stream("a05"):
        rollout.robots.send(robot, payload)
    rollout.robots.deliver()

    # Then each robot's outcome is its own real one, counted once; the foreign and late reports changed
    # nothing in this job (a05 stays NoResponse in it: it came back after its timeout)
    assert job["status"] == "Failed" or job["status"] == "Succeeded"
    outcome = assert_rollout_consistent(job_id_of(job), {f"a{i:02d}" for i in range(6)})
    assert outcome == {
        "a00": "InSync",
        "a01": "InSync",
        "a02": "Failed",
        "a03": "InSync",
        "a04": "InSync",
        "a05": "NoResponse",
    }
    summary = rollout.robot_summary(job)
    assert "intruder" not in summary and "b00" not in summary
    # and the other job was not touched
    assert assert_rollout_consistent(job_id_of(other), {"b00"}) == {"b00": "InSync"}


def test_concurrent_create_deployment_job_makes_exactly_one_job_per_fleet_while_rollouts_run(rollout):
    # Given 20 fleets of 2 robots, and one more fleet already rolling out (its robots holding)
    version = rollout.given.application_version("nav")
    fleets = [rollout.fleet_of(2, f"race-{n:02d}", f"f{n:02d}-") for n in range(20)]
    busy = rollout.fleet_of(2, "race-busy", "busy-")
    for name in ("busy-00", "busy-01"):
        rollout.robots.behave(name, HOLD)
    running = rollout.start(busy, version)

    # When 20 CreateDeploymentJob calls race on the 20 fleets and 8 race on one other fleet
    target = rollout.fleet_of(2, "race-same", "same-")
    answers: list[tuple[str, int, dict]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(28)

    def create(fleet: dict, token: str) -> None:
        request = rollout.given.job_request(fleet, version, clientRequestToken=token)
        barrier.wait(30)
        response = rollout.api.call("createDeploymentJob", request)
        with lock:
            answers.append((fleet["name"], response.status, response.json or {}))

    threads = [threading.Thread(target=create, args=(f, f"tok-{f['name']}")) for f in fleets]
    threads += [threading.Thread(target=create, args=(target, f"tok-same-{n}")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # Then every one of the 20 fleets has its job, and the contended fleet exactly one
    created = [(name, body) for name, status, body in answers if status == 200]
    refused = [body for name, status, body in answers if status != 200]
    assert sorted(name for name, _ in created if name.startswith("race-")) == sorted(
        [f["name"] for f in fleets] + ["race-same"]
    )
    assert len(refused) == 7
    # and the rollouts all end, each job consistent
    rollout.pump_until(lambda: {"busy-00", "busy-01"} <= set(rollout.robots.held), "the busy fleet's wave")
    rollout.robots.finish("busy-00")
    rollout.robots.finish("busy-01")
    jobs = [body for _, body in created] + [running]
    for job in jobs:
        described = rollout.wait(job, limit=240)
        assert described["status"] == "Succeeded", described
        assert set(assert_rollout_consistent(job_id_of(job)).values()) == {"InSync"}
