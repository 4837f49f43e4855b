"""The live views' words for the rollout control extensions (fleetwave.watch.view, docs/extensions.md)."""

from __future__ import annotations

import time

from fleetwave.watch.view import control_facts

JOB = "arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-"


def test_watch_control_facts_say_why_a_job_holds_and_where_it_comes_from():
    at = time.mktime((2026, 1, 1, 10, 30, 0, 0, 0, -1))
    job = {
        "deploymentConfig": {
            "approval": {"after": "EveryWave", "timeoutInSeconds": 3600, "onTimeout": "Fail"}
        },
        "waitingForApproval": {"wave": 3, "since": at - 60, "deadline": at},
        "paused": True,
        "pausedAt": at,
        "retryOf": JOB + "aaaaaaaaaaaa",
        "retriedBy": [JOB + "bbbbbbbbbbbb", JOB + "cccccccccccc"],
        "rollbackFrom": JOB + "dddddddddddd",
        "rollbackTo": JOB + "eeeeeeeeeeee",
    }

    assert control_facts(job) == {
        "approval gates": "before every wave after the first, fail after 3600 s",
        "waiting for approval": "wave 3, until 10:30:00",
        "paused": "since 10:30:00",
        "retry of": "deployment-aaaaaaaaaaaa",
        "retried by": "deployment-bbbbbbbbbbbb, deployment-cccccccccccc",
        "rollback to": "deployment-eeeeeeeeeeee (from deployment-dddddddddddd)",
    }


def test_watch_control_facts_of_a_job_without_extensions_are_none():
    assert (
        control_facts({"deploymentConfig": {"robotDeploymentTimeoutInSeconds": 60}, "status": "InProgress"})
        == {}
    )
