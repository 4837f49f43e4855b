"""Fleetwave's extensions on the RoboMaker front door (docs/extensions.md), through the API handler:
what they accept and refuse, and what they leave unchanged on the wire for jobs that use none of them.

The rollout engine does not run here (no state machine): jobs stay Pending unless a test stores the status
the engine would; tests/statemachines/ run the extensions end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.model import ServiceModel
from botocore.parsers import RestJSONParser
from fakes.api_events import LambdaContextStub, rest_event
from fleetwave_service.core import dynamo


def job_key(job):
    return dynamo.key(f"JOB#{job['arn'].rsplit('/', 1)[1]}", "JOB")


def store_job(job, **attributes):
    """What the rollout engine would have stored on the job row."""
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    dynamo.client().update_item(
        TableName=dynamo.table_name(),
        Key=job_key(job),
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(attributes))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=dynamo.values(**{f"v{i}": v for i, v in enumerate(attributes.values())}),
    )


def raw_body(operation, body):
    """The response body exactly as the API Lambda sends it."""
    from fleetwave_service.handlers import api_handler

    response = api_handler(rest_event("POST", f"/{operation}", body), LambdaContextStub())
    assert response["statusCode"] == 200, response
    return response["body"]


def ordered_keys(text):
    return json.loads(text, object_pairs_hook=lambda pairs: [key for key, _ in pairs])


def gated(given, fleet, version, **approval):
    return given.job(
        fleet,
        version,
        deploymentConfig={
            "concurrentDeploymentPercentage": 50,
            "approval": {"after": "FirstWave", **approval},
        },
    )


# --- jobs that use no extension read as before ------------------------------------------------------


def test_a_job_without_extensions_reads_byte_for_byte_as_the_seed_shape(given, fleet, version):
    # Given a plain job, as the engine leaves it after a rollout (its engine attributes on the row)
    job = given.job(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})
    store_job(job, status="Succeeded", currentWave=2, waveCount=2, targetCount=1, finishedAt=1.5)

    # When it is described and listed
    described = raw_body("describeDeploymentJob", {"job": job["arn"]})
    listed = raw_body("listDeploymentJobs", {})

    # Then the members, their order and their values are the seed's, nothing more
    seed_job = ["arn", "fleet", "status", "deploymentApplicationConfigs", "deploymentConfig", "createdAt"]
    assert ordered_keys(described) == [*seed_job, "tags", "robotDeploymentSummary"]
    assert json.loads(described)["deploymentConfig"] == {
        "concurrentDeploymentPercentage": 50,
        "robotDeploymentTimeoutInSeconds": 18000,
    }
    assert ordered_keys(listed) == ["deploymentJobs"]
    assert [ordered_keys(json.dumps(item)) for item in json.loads(listed)["deploymentJobs"]] == [seed_job]
    expected = {key: json.loads(described)[key] for key in seed_job}
    assert json.loads(listed)["deploymentJobs"] == [expected]


def test_unknown_members_of_the_seed_shapes_are_still_ignored(given, api, fleet, version):
    # An unknown member of deploymentConfig itself is ignored, as before (a newer client's field)
    response = api.call(
        "createDeploymentJob",
        given.job_request(fleet, version, deploymentConfig={"robotDeploymentTimeoutInSeconds": 60, "x": 1}),
    )

    assert response.status == 200, response.json
    assert response.json["deploymentConfig"] == {"robotDeploymentTimeoutInSeconds": 60}


# AWS's own botocore model of RoboMaker, as botocore 1.35.99 shipped it (tests/data/aws/README.md).
HISTORIC_MODEL = (
    Path(__file__).resolve().parents[2] / "data" / "aws" / "robomaker" / "2018-06-29" / "service-2.json"
)


def test_extension_members_are_ignored_by_robomakers_historic_botocore_model(given, api, fleet, version):
    # Given a job that uses every extension member a job can show
    job = gated(given, fleet, version)
    given.ok("pauseDeploymentJob", {"job": job["arn"]})
    store_job(
        job,
        status="InProgress",
        waitingForApproval={"wave": 2, "since": 1_700_000_000.0, "deadline": 1_700_086_400.0},
        retryOf=job["arn"],
        retriedBy=[job["arn"]],
        rollbackFrom=job["arn"],
        rollbackTo=job["arn"],
    )
    model = ServiceModel(json.loads(HISTORIC_MODEL.read_text()), service_name="robomaker")

    for operation, body, key in (
        ("DescribeDeploymentJob", {"job": job["arn"]}, None),
        ("ListDeploymentJobs", {}, "deploymentJobs"),
    ):
        # When an old client parses the answer
        raw = raw_body(operation[0].lower() + operation[1:], body)
        parsed = RestJSONParser().parse(
            {"status_code": 200, "headers": {}, "body": raw.encode()},
            model.operation_model(operation).output_shape,
        )

        # Then it reads every member it knows and drops the extensions without an error
        item = parsed[key][0] if key else parsed
        assert item["arn"] == job["arn"]
        assert item["status"] == "InProgress"
        assert item["createdAt"].timestamp() == pytest.approx(job["createdAt"])
        assert item["deploymentConfig"] == {
            "concurrentDeploymentPercentage": 50,
            "robotDeploymentTimeoutInSeconds": 18000,
        }
        assert not {"waitingForApproval", "paused", "pausedAt", "retryOf", "retriedBy"} & set(item)
        # while the extensions are there for clients that know them
        extended = json.loads(raw)
        extended = extended[key][0] if key else extended
        assert extended["waitingForApproval"]["wave"] == 2
        assert extended["paused"] is True
        assert extended["deploymentConfig"]["approval"]["after"] == "FirstWave"


# --- approval gates -------------------------------------------------------------------------------


def test_approval_is_stored_with_its_defaults_and_echoed(given, fleet, version):
    job = gated(given, fleet, version)

    assert job["deploymentConfig"] == {
        "concurrentDeploymentPercentage": 50,
        "robotDeploymentTimeoutInSeconds": 18000,
        "approval": {"after": "FirstWave", "timeoutInSeconds": 86400, "onTimeout": "Cancel"},
    }


def test_approval_as_given_is_kept(given, fleet, version):
    job = gated(given, fleet, version, timeoutInSeconds=60, onTimeout="Fail")

    assert job["deploymentConfig"]["approval"] == {
        "after": "FirstWave",
        "timeoutInSeconds": 60,
        "onTimeout": "Fail",
    }


def test_approve_a_job_without_gates_is_an_invalid_parameter(given, api, fleet, version):
    job = given.job(fleet, version)

    response = api.call("approveDeploymentWave", {"job": job["arn"], "wave": 2})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert "no approval gates" in response.message


def test_approve_without_a_wave_while_not_waiting_is_an_invalid_parameter(given, api, fleet, version):
    job = gated(given, fleet, version)

    response = api.call("approveDeploymentWave", {"job": job["arn"]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert "not waiting for an approval" in response.message


def test_approve_a_wave_without_a_gate_is_an_invalid_parameter(given, api, fleet, version):
    job = gated(given, fleet, version)
    store_job(job, status="InProgress", waveCount=2)

    no_gate = api.call("approveDeploymentWave", {"job": job["arn"], "wave": 3})

    assert (no_gate.status, no_gate.error_type) == (400, "InvalidParameterException")
    assert "only wave 2 has an approval gate" in no_gate.message


def test_approve_a_wave_beyond_the_last_is_an_invalid_parameter(given, api, fleet, version):
    job = given.job(fleet, version, deploymentConfig={"approval": {"after": "EveryWave"}})
    store_job(job, status="InProgress", waveCount=3)

    response = api.call("approveDeploymentWave", {"job": job["arn"], "wave": 4})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert "has 3 waves" in response.message


def test_approve_the_wave_a_job_waits_for_answers_it(given, api, fleet, version):
    job = gated(given, fleet, version)
    store_job(job, status="InProgress", waitingForApproval={"wave": 2, "since": 1.0, "deadline": 2.0})

    response = api.call("approveDeploymentWave", {"job": job["arn"]})

    assert (response.status, response.json) == (200, {"job": job["arn"], "wave": 2})
    assert "waitingForApproval" not in given.ok("describeDeploymentJob", {"job": job["arn"]})


def test_approve_an_unknown_job_is_not_found(api, given, fleet, version):
    job = given.job(fleet, version)
    unknown = job["arn"][: -len("000000000000")] + "000000000000"

    response = api.call("approveDeploymentWave", {"job": unknown, "wave": 2})

    assert (response.status, response.error_type) == (400, "ResourceNotFoundException")


# --- pause and resume -----------------------------------------------------------------------------


def test_pause_shows_on_the_job_and_resume_takes_it_away(given, api, fleet, version):
    # Given an active job
    job = given.job(fleet, version)

    # When it is paused
    assert (api.call("pauseDeploymentJob", {"job": job["arn"]}).json) == {}

    # Then describe and list show it paused, since when
    described = given.ok("describeDeploymentJob", {"job": job["arn"]})
    assert described["paused"] is True
    assert described["pausedAt"] >= job["createdAt"]
    listed = given.ok("listDeploymentJobs", {})["deploymentJobs"][0]
    assert (listed["paused"], listed["pausedAt"]) == (True, described["pausedAt"])

    # When it is paused again, then resumed, twice
    given.ok("pauseDeploymentJob", {"job": job["arn"]})
    assert given.ok("describeDeploymentJob", {"job": job["arn"]})["pausedAt"] == described["pausedAt"]
    given.ok("resumeDeploymentJob", {"job": job["arn"]})
    given.ok("resumeDeploymentJob", {"job": job["arn"]})

    # Then it is no longer paused, and reads as a job that never was
    described = given.ok("describeDeploymentJob", {"job": job["arn"]})
    assert "paused" not in described and "pausedAt" not in described


@pytest.mark.parametrize("operation", ["pauseDeploymentJob", "resumeDeploymentJob", "approveDeploymentWave"])
@pytest.mark.parametrize("status", ["Succeeded", "Failed", "Canceled"])
def test_rollout_control_on_a_finished_job_is_an_invalid_parameter(
    given, api, fleet, version, operation, status
):
    job = gated(given, fleet, version)
    store_job(job, status=status)

    response = api.call(
        operation, {"job": job["arn"], **({"wave": 2} if operation.startswith("approve") else {})}
    )

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert f"is {status}" in response.message
