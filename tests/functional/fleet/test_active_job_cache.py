"""What a reader read of a fleet's lock (fleet/store.py ``active_job``) is trusted briefly, and this
process's own changes of the lock are seen at once."""

from __future__ import annotations

from fleetwave_service.core import dynamo
from fleetwave_service.core.keys import fleet_key
from fleetwave_service.fleet import store


def _lock_elsewhere(fleet: str, job_id: str) -> None:
    """Another function instance takes the lock: nothing here hears of it."""
    dynamo.update(fleet_key(fleet), sets={"activeJobId": job_id})


def test_a_fleets_lock_is_cached_briefly_and_forgotten_when_this_process_changes_it(aws, monkeypatch):
    store.create_fleet({"name": "warehouse", "arn": "arn:fleet/warehouse", "createdAt": 1.0})
    assert store.active_job("warehouse") is None

    # A lock taken elsewhere is not seen while what was read is trusted ...
    _lock_elsewhere("warehouse", "job-1")
    assert store.active_job("warehouse") is None
    # ... and is once this process forgets it (as CreateDeploymentJob and the lock's release do)
    store.forget_active_job("warehouse")
    assert store.active_job("warehouse") == "job-1"

    # The lock released here is seen at once
    assert store.release_job_lock("warehouse", "job-1")
    assert store.active_job("warehouse") is None

    # With no trust at all (a zero cache time), every read goes to the table
    monkeypatch.setattr(store, "ACTIVE_JOB_CACHE_SECONDS", 0.0)
    store.forget_active_job("warehouse")
    assert store.active_job("warehouse") is None
    _lock_elsewhere("warehouse", "job-2")
    assert store.active_job("warehouse") == "job-2"
