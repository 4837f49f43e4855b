"""The rehearsal reads the outcome once finalize has written it: the job's status comes first, then the robots
finalize stops, then its counts (``recounted``)."""

from __future__ import annotations

import pytest

from fleetwave.rehearse import run


def _progress(status: str, recounted: bool = False) -> run.Progress:
    return run.Progress(status, 1, 4, 400, 70, 30, 0, recounted=recounted)


def test_the_outcome_is_read_once_finalize_has_recounted_the_job(monkeypatch):
    reads = iter(
        [_progress("InProgress"), _progress("Failed"), _progress("Failed"), _progress("Failed", True)]
    )
    monkeypatch.setattr(run, "read_progress", lambda job_id: next(reads))
    seen = []
    final = run.follow_job("job", seen.append, deadline_seconds=60, every=0.01)
    assert final.recounted and len(seen) == 4


def test_a_finalize_that_never_recounts_is_waited_for_a_bounded_time(monkeypatch):
    monkeypatch.setattr(run, "read_progress", lambda job_id: _progress("Failed"))
    monkeypatch.setattr(run, "FINALIZE_WAIT_SECONDS", 0.05)
    final = run.follow_job("job", lambda progress: None, deadline_seconds=60, every=0.01)
    assert final.status == "Failed" and not final.recounted


@pytest.mark.parametrize("status", ["Pending", "Preparing", "InProgress"])
def test_a_running_job_is_not_done(status):
    assert not _progress(status).done
