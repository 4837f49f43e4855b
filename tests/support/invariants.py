"""What every rollout must leave behind, whatever failed on the way (the fault-injection suites check it).

- the job is terminal;
- every robot the job targets has exactly one row, in a terminal status;
- the job's counters equal its rows, and each wave's counters (its recount after a timeout, else its live
  counters) equal that wave's rows: a robot is never lost nor counted twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

TERMINAL_JOB = ("Succeeded", "Failed", "Canceled")
TERMINAL_ROBOT = ("InSync", "Failed", "NoResponse")
_COUNTER = {"InSync": "succeededCount", "Failed": "failedCount", "NoResponse": "noResponseCount"}


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    tally = Counter(row["status"] for row in rows)
    return {counter: tally.get(status, 0) for status, counter in _COUNTER.items()}


def job_id_of(job: dict[str, Any]) -> str:
    """The job id at the end of a deployment job's ARN (a Greengrass deployment's id is its own)."""
    return job["arn"].rsplit("/", 1)[-1]


def job_rows(job_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    from fleetwave_service.engine.ports import get_ports

    store = get_ports().store
    job = store.get_job(job_id)
    assert job is not None, f"job {job_id} has no row"
    return job, list(store.job_robot_deployments(job_id)), store.waves(job_id)


def assert_rollout_consistent(job_id: str, targets: set[str] | None = None) -> dict[str, str]:
    """Check the invariants above; returns robot name -> its status in the job."""
    job, robots, waves = job_rows(job_id)
    assert job["status"] in TERMINAL_JOB, f"job {job_id} is {job['status']}"
    names = [row["robotName"] for row in robots]
    assert len(names) == len(set(names)), f"a robot has two rows: {sorted(names)}"
    if targets is not None:
        assert set(names) == targets, f"rows {sorted(names)} != targets {sorted(targets)}"
    not_final = {row["robotName"]: row["status"] for row in robots if row["status"] not in TERMINAL_ROBOT}
    assert not not_final, f"robots not terminal: {not_final}"
    released = [row for row in robots if not row.get("notReleased")]
    job_counts = {key: int(job.get(key, 0)) for key in _COUNTER.values()}
    assert job_counts == _counts(released), f"job counts {job_counts} != rows {_counts(released)}"
    for wave in waves:
        number = int(wave["wave"])
        members = [row for row in released if int(row.get("wave", -1)) == number]
        finished = [row for row in members if row["status"] in TERMINAL_ROBOT]
        counted = wave.get("sweptCounts") or {key: wave.get(key, 0) for key in _COUNTER.values()}
        counted = {key: int(counted.get(key, 0)) for key in _COUNTER.values()}
        # A wave's live counters are bumped after each robot's terminal write: never above its rows.
        expected = _counts(finished)
        for key in _COUNTER.values():
            assert counted[key] <= expected[key], f"wave {number} counts {counted} > rows {expected}"
        if job["status"] == "Succeeded":
            assert counted == expected, f"wave {number} counts {counted} != rows {expected}"
    return {row["robotName"]: row["status"] for row in robots}
