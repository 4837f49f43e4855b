"""Deployment jobs: create (seed 000), sync (seed 001), describe, list, cancel; idempotency and locks."""

from __future__ import annotations

import json
import threading

import pytest
from fleetwave_service.core import dynamo, ids
from fleetwave_service.robomaker import jobs as jobs_logic


def job_id(job):
    return job["arn"].rsplit("/", 1)[1]


def store_job_status(job, status):
    """The job's status as the rollout engine would store it."""
    dynamo.client().update_item(
        TableName=dynamo.table_name(),
        Key=dynamo.key(f"JOB#{job_id(job)}", "JOB"),
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=dynamo.values(s=status),
    )


def set_job_status(job, status):
    """What the rollout engine does when a job ends: final status, fleet lock released."""
    store_job_status(job, status)
    fleet_name = job["fleet"].split("/")[1]
    dynamo.client().update_item(
        TableName=dynamo.table_name(),
        Key=dynamo.key(f"FLEET#{fleet_name}", "FLEET"),
        UpdateExpression="REMOVE activeJobId",
    )


# --- create ---------------------------------------------------------------------------------------


def test_create_deployment_job_answers_the_seed_shape_with_status_pending(
    given, api, fleet, version, monkeypatch
):
    # Given a clock and a full request
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000.0)
    request = given.job_request(
        fleet,
        version,
        deploymentConfig={
            "concurrentDeploymentPercentage": 20,
            "failureThresholdPercentage": 25,
            "robotDeploymentTimeoutInSeconds": 600,
            "downloadConditionFile": {"bucket": "conditions", "key": "check.sh", "etag": "abc"},
        },
        tags={"release": "1.2"},
    )
    request["deploymentApplicationConfigs"][0]["launchConfig"].update(
        preLaunchFile="pre.sh", postLaunchFile="post.sh", environmentVariables={"ROS_DOMAIN_ID": "7"}
    )

    # When the job is created
    response = api.call("createDeploymentJob", request)

    # Then it is Pending, echoing the configuration, with a deployment-job ARN
    assert response.status == 200
    body = response.json
    assert body["arn"].startswith("arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-")
    assert len(job_id(body)) == len("deployment-") + 12
    assert body == {
        "arn": body["arn"],
        "fleet": fleet["arn"],
        "status": "Pending",
        "deploymentApplicationConfigs": request["deploymentApplicationConfigs"],
        "deploymentConfig": request["deploymentConfig"],
        "createdAt": 1_700_000_000.0,
        "tags": {"release": "1.2"},
    }


def test_create_deployment_job_defaults_the_robot_timeout_and_keeps_percentages_absent(given, fleet, version):
    job = given.job(fleet, version)

    assert job["deploymentConfig"] == {"robotDeploymentTimeoutInSeconds": 18000}


def test_create_deployment_job_stores_expiry_ninety_days_out(given, fleet, version, monkeypatch):
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000.0)

    job = given.job(fleet, version)

    row = dynamo.get(f"JOB#{job_id(job)}", "JOB")
    assert row["expiresAt"] == 1_700_000_000 + 90 * 86400


def test_create_deployment_job_for_an_empty_fleet_is_accepted(given, version):
    empty = given.fleet("empty")

    assert given.job(empty, version)["status"] == "Pending"


def test_create_deployment_job_with_an_unknown_fleet_is_not_found(given, api, version):
    ghost = {"arn": "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/ghost/1"}

    response = api.call("createDeploymentJob", given.job_request(ghost, version))

    assert (response.status, response.error_type) == (400, "ResourceNotFoundException")


def test_create_deployment_job_with_an_unknown_version_is_not_found(given, api, fleet, version):
    response = api.call("createDeploymentJob", given.job_request(fleet, dict(version, version="7")))

    assert (response.status, response.error_type) == (400, "ResourceNotFoundException")


def test_create_deployment_job_while_another_is_active_is_a_concurrent_deployment(given, api, fleet, version):
    # Given an active job on the fleet
    first = given.job(fleet, version)

    # When another job is created for the same fleet
    response = api.call("createDeploymentJob", given.job_request(fleet, version))

    # Then it is a ConcurrentDeploymentException naming the active job
    assert (response.status, response.error_type) == (400, "ConcurrentDeploymentException")
    assert job_id(first) in response.message


def test_create_deployment_job_after_the_previous_one_ended_is_accepted(given, fleet, version):
    first = given.job(fleet, version)
    set_job_status(first, "Succeeded")

    assert given.job(fleet, version)["status"] == "Pending"


def test_create_deployment_job_beyond_the_concurrent_job_quota_is_rejected(given, api, version, monkeypatch):
    # Given a deployment allowing one concurrent job, and one active job
    monkeypatch.setenv("FLEETWAVE_MAX_CONCURRENT_JOBS", "1")
    from fleetwave_service.core.settings import reset_settings

    reset_settings()
    given.job(given.fleet("one"), version)

    # When a job is created on another fleet
    response = api.call("createDeploymentJob", given.job_request(given.fleet("two"), version))

    # Then it is a LimitExceededException
    assert (response.status, response.error_type) == (400, "LimitExceededException")


# --- idempotency ----------------------------------------------------------------------------------


def test_create_deployment_job_retried_with_the_same_token_returns_the_same_job(given, api, fleet, version):
    # Given a created job
    request = given.job_request(fleet, version)
    first = api.call("createDeploymentJob", request).json

    # When the identical request is sent again
    again = api.call("createDeploymentJob", request)

    # Then it returns that job (no ConcurrentDeploymentException), and only one job exists
    assert again.status == 200
    assert again.json == first
    assert len(api.call("listDeploymentJobs").json["deploymentJobs"]) == 1


def test_create_deployment_job_retried_returns_the_current_status(given, api, fleet, version):
    request = given.job_request(fleet, version)
    first = api.call("createDeploymentJob", request).json
    set_job_status(first, "Succeeded")

    again = api.call("createDeploymentJob", request)

    assert (again.json["arn"], again.json["status"]) == (first["arn"], "Succeeded")


def test_create_deployment_job_reusing_a_token_for_another_request_is_a_mismatch(given, api, fleet, version):
    # Given a job created with a token
    request = given.job_request(fleet, version)
    given.ok("createDeploymentJob", request)

    # When a different request reuses the token
    changed = dict(request, deploymentConfig={"concurrentDeploymentPercentage": 50})
    response = api.call("createDeploymentJob", changed)

    # Then it is an IdempotentParameterMismatchException
    assert (response.status, response.error_type) == (400, "IdempotentParameterMismatchException")


def test_sync_deployment_job_reusing_a_create_token_is_a_mismatch(given, api, fleet, version):
    request = given.job_request(fleet, version)
    job = given.ok("createDeploymentJob", request)
    set_job_status(job, "Succeeded")

    response = api.call(
        "syncDeploymentJob", {"clientRequestToken": request["clientRequestToken"], "fleet": fleet["arn"]}
    )

    assert (response.status, response.error_type) == (400, "IdempotentParameterMismatchException")


def test_create_deployment_job_identical_requests_racing_make_one_job(given, api, fleet, version):
    # Given eight identical requests released at the same moment
    request = given.job_request(fleet, version)
    barrier = threading.Barrier(8)
    responses = []

    def send():
        barrier.wait()
        responses.append(api.call("createDeploymentJob", request))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every caller gets the same job, and only one job exists
    assert [response.status for response in responses] == [200] * 8
    assert len({response.json["arn"] for response in responses}) == 1
    assert len(api.call("listDeploymentJobs").json["deploymentJobs"]) == 1


def test_create_deployment_job_different_requests_racing_on_one_fleet_make_one_job(
    given, api, fleet, version
):
    # Given eight requests with different tokens for the same fleet, released at once
    requests = [given.job_request(fleet, version) for _ in range(8)]
    barrier = threading.Barrier(8)
    responses = []

    def send(request):
        barrier.wait()
        responses.append(api.call("createDeploymentJob", request))

    threads = [threading.Thread(target=send, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly one wins; the others are told the fleet is busy
    statuses = sorted((response.status, response.error_type) for response in responses)
    assert statuses == [(200, None)] + [(400, "ConcurrentDeploymentException")] * 7
    assert len(api.call("listDeploymentJobs").json["deploymentJobs"]) == 1


# --- starting the rollout -------------------------------------------------------------------------


def _state_machine(aws):
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    return aws.client("stepfunctions").create_state_machine(
        name="rollout",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/rollout",
    )["stateMachineArn"]


def test_create_deployment_job_starts_an_execution_named_after_the_job(
    given, aws, fleet, version, monkeypatch
):
    # Given a rollout state machine
    machine = _state_machine(aws)
    monkeypatch.setenv("FLEETWAVE_STATE_MACHINE_ARN", machine)
    from fleetwave_service.core.settings import reset_settings

    reset_settings()

    # When a job is created
    job = given.job(fleet, version)

    # Then one execution runs, named after the job, with the job id as input
    executions = aws.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    assert [execution["name"] for execution in executions] == [job_id(job)]
    described = aws.client("stepfunctions").describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"]) == {"jobId": job_id(job)}


def test_create_deployment_job_that_cannot_start_fails_the_job_and_frees_the_fleet(
    given, api, fleet, version, monkeypatch
):
    # Given a state machine that does not exist
    monkeypatch.setenv(
        "FLEETWAVE_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:gone"
    )
    from fleetwave_service.core.settings import reset_settings

    reset_settings()

    # When a job is created
    response = api.call("createDeploymentJob", given.job_request(fleet, version))

    # Then the caller gets a 500, the job is Failed with InternalServerError (never stuck Pending)
    assert (response.status, response.error_type) == (500, "InternalServerException")
    [job] = api.call("listDeploymentJobs").json["deploymentJobs"]
    assert (job["status"], job["failureCode"]) == ("Failed", "InternalServerError")
    assert job["failureReason"]
    # And the fleet is free for the next job, and shows the failure as its last deployment
    described = api.call("describeFleet", {"fleet": fleet["arn"]}).json
    assert (described["lastDeploymentStatus"], described["lastDeploymentJob"]) == ("Failed", job["arn"])
    monkeypatch.delenv("FLEETWAVE_STATE_MACHINE_ARN")
    reset_settings()
    assert given.job(fleet, version)["status"] == "Pending"


# --- describe and list ----------------------------------------------------------------------------


def put_robot_deployments(job, count, reason_length=0):
    """Robot rows as the rollout engine writes them."""
    rows = []
    for index in range(count):
        rows.append(
            {
                "pk": f"JOB#{job_id(job)}",
                "sk": f"ROBOT#robot-{index:05d}",
                "robotName": f"robot-{index:05d}",
                "arn": f"arn:aws:robomaker:us-east-1:123456789012:robot/robot-{index:05d}/1",
                "status": "Failed" if reason_length else "Deploying",
                "wave": 1,
                "attempt": 1,
                "seq": 3,
                "deploymentStartTime": 1_700_000_100.5,
                "failureCode": "PreLaunchFileFailure" if reason_length else None,
                "failureReason": "x" * reason_length if reason_length else None,
                "progressDetail": {
                    "currentProgress": "Launching",
                    "percentDone": 50.0,
                    "estimatedTimeRemainingSeconds": 30,
                    "targetResource": job["arn"],
                },
                "expiresAt": ids.now() + 86400,
            }
        )
    for start in range(0, len(rows), 25):
        dynamo.client().batch_write_item(
            RequestItems={
                dynamo.table_name(): [
                    {"PutRequest": {"Item": dynamo.serialize(row)}} for row in rows[start : start + 25]
                ]
            }
        )


def test_describe_deployment_job_shows_each_robot_deployment(given, api, fleet, version):
    # Given a job whose engine wrote one robot row
    job = given.job(fleet, version)
    put_robot_deployments(job, 1)

    # When it is described
    response = api.call("describeDeploymentJob", {"job": job["arn"]})

    # Then it carries the robot's deployment in the original's shape (engine-only attributes dropped)
    assert response.status == 200
    assert response.json["robotDeploymentSummary"] == [
        {
            "arn": "arn:aws:robomaker:us-east-1:123456789012:robot/robot-00000/1",
            "deploymentStartTime": 1_700_000_100.5,
            "status": "Deploying",
            "progressDetail": {
                "currentProgress": "Launching",
                "percentDone": 50.0,
                "estimatedTimeRemainingSeconds": 30,
                "targetResource": job["arn"],
            },
        }
    ]
    assert {key: response.json[key] for key in ("arn", "fleet", "status", "tags")} == {
        "arn": job["arn"],
        "fleet": fleet["arn"],
        "status": "Pending",
        "tags": {},
    }


def test_describe_deployment_job_pages_through_thousands_of_robots(given, api, fleet, version):
    # Given more robot rows than one DynamoDB page holds (1 MB)
    job = given.job(fleet, version)
    put_robot_deployments(job, 1200, reason_length=1000)

    # When the job is described
    summary = api.call("describeDeploymentJob", {"job": job["arn"]}).json["robotDeploymentSummary"]

    # Then every robot is there
    assert len(summary) == 1200
    assert summary[-1]["failureCode"] == "PreLaunchFileFailure"


def test_describe_deployment_job_of_an_unknown_job_is_not_found(api):
    arn = "arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-000000000000"

    response = api.call("describeDeploymentJob", {"job": arn})

    assert (response.status, response.error_type) == (400, "ResourceNotFoundException")


def test_expired_job_is_not_found_and_not_listed(given, api, fleet, version, monkeypatch):
    # Given a job created 91 days ago (TTL has not deleted it yet) and a current one on another fleet
    real_now = ids.now()
    monkeypatch.setattr(ids, "now", lambda: real_now - 91 * 86400)
    old = given.job(fleet, version)
    monkeypatch.setattr(ids, "now", lambda: real_now)
    current = given.job(given.fleet("other"), version)

    # When it is described and jobs are listed
    described = api.call("describeDeploymentJob", {"job": old["arn"]})
    listed = api.call("listDeploymentJobs").json["deploymentJobs"]

    # Then it is gone from both
    assert (described.status, described.error_type) == (400, "ResourceNotFoundException")
    assert [job["arn"] for job in listed] == [current["arn"]]


def test_list_deployment_jobs_newest_first_with_filters(given, api, version, monkeypatch):
    # Given jobs on two fleets at increasing times, the oldest finished
    clock = iter([1_700_000_000.0 + step for step in range(100)])
    monkeypatch.setattr(ids, "now", lambda: next(clock))
    one, two = given.fleet("one"), given.fleet("two")
    oldest = given.job(one, version)
    set_job_status(oldest, "Succeeded")
    middle = given.job(two, version)
    newest = given.job(one, version)

    # When listed unfiltered, by fleet, and by status
    everything = api.call("listDeploymentJobs").json["deploymentJobs"]
    by_fleet = api.call("listDeploymentJobs", {"filters": [{"name": "fleetName", "values": ["one"]}]}).json
    succeeded = api.call(
        "listDeploymentJobs", {"filters": [{"name": "status", "values": ["Succeeded"]}]}
    ).json

    # Then each is newest first, and shaped as the original's DeploymentJob (no tags, no robots)
    assert [job["arn"] for job in everything] == [newest["arn"], middle["arn"], oldest["arn"]]
    assert [job["arn"] for job in by_fleet["deploymentJobs"]] == [newest["arn"], oldest["arn"]]
    assert [job["arn"] for job in succeeded["deploymentJobs"]] == [oldest["arn"]]
    assert set(everything[0]) == {
        "arn",
        "fleet",
        "status",
        "deploymentApplicationConfigs",
        "deploymentConfig",
        "createdAt",
    }


def test_list_deployment_jobs_pages(given, api, version):
    fleets = [given.fleet(f"fleet-{index}") for index in range(5)]
    created = [given.job(fleet, version)["arn"] for fleet in fleets]

    seen, token = [], None
    while True:
        page = api.call(
            "listDeploymentJobs", {"maxResults": 2, **({"nextToken": token} if token else {})}
        ).json
        seen += [job["arn"] for job in page["deploymentJobs"]]
        token = page.get("nextToken")
        if not token:
            break

    assert sorted(seen) == sorted(created)
    assert len(seen) == 5


def test_list_deployment_jobs_with_an_unknown_status_is_an_invalid_parameter(api):
    response = api.call("listDeploymentJobs", {"filters": [{"name": "status", "values": ["Done"]}]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


# --- cancel ---------------------------------------------------------------------------------------


def test_cancel_deployment_job_cancels_it_frees_the_fleet_and_tells_the_engine(
    given, api, fleet, version, monkeypatch
):
    # Given an active job, and the engine's cancel hook recording what it is told
    told = []
    monkeypatch.setattr(jobs_logic, "notify_rollout_canceled", lambda job: told.append(job))
    job = given.job(fleet, version)

    # When it is canceled
    response = api.call("cancelDeploymentJob", {"job": job["arn"]})

    # Then it is Canceled, the engine heard of it, and the fleet takes a new job
    assert (response.status, response.json) == (200, {})
    assert api.call("describeDeploymentJob", {"job": job["arn"]}).json["status"] == "Canceled"
    assert [(canceled["id"], canceled["status"]) for canceled in told] == [(job_id(job), "Canceled")]
    described = api.call("describeFleet", {"fleet": fleet["arn"]}).json
    assert (described["lastDeploymentStatus"], described["lastDeploymentJob"]) == ("Canceled", job["arn"])
    assert given.job(fleet, version)["status"] == "Pending"


@pytest.mark.parametrize("status", ["Preparing", "InProgress"])
def test_cancel_deployment_job_cancels_a_running_job(given, api, fleet, version, status):
    job = given.job(fleet, version)
    store_job_status(job, status)

    assert api.call("cancelDeploymentJob", {"job": job["arn"]}).status == 200
    assert api.call("describeDeploymentJob", {"job": job["arn"]}).json["status"] == "Canceled"


def test_cancel_deployment_job_twice_succeeds(given, api, fleet, version):
    job = given.job(fleet, version)
    given.ok("cancelDeploymentJob", {"job": job["arn"]})

    response = api.call("cancelDeploymentJob", {"job": job["arn"]})

    assert response.status == 200


@pytest.mark.parametrize("status", ["Succeeded", "Failed"])
def test_cancel_deployment_job_that_ended_is_an_invalid_parameter(given, api, fleet, version, status):
    job = given.job(fleet, version)
    set_job_status(job, status)

    response = api.call("cancelDeploymentJob", {"job": job["arn"]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert status in response.message


def test_delete_fleet_cancels_its_active_job_which_stays_visible(given, api, fleet, version):
    job = given.job(fleet, version)

    assert api.call("deleteFleet", {"fleet": fleet["arn"]}).status == 200

    assert api.call("describeDeploymentJob", {"job": job["arn"]}).json["status"] == "Canceled"


# --- sync -----------------------------------------------------------------------------------------


def test_sync_deployment_job_copies_the_latest_job(given, api, fleet, version):
    # Given a finished job
    first = given.job(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 50})
    set_job_status(first, "Succeeded")

    # When the fleet is synced
    response = api.call("syncDeploymentJob", {"clientRequestToken": "sync-1", "fleet": fleet["arn"]})

    # Then a new Pending job has the same configuration (seed 001's shape: no tags)
    assert response.status == 200
    body = response.json
    assert body["arn"] != first["arn"]
    assert body["status"] == "Pending"
    assert body["deploymentApplicationConfigs"] == first["deploymentApplicationConfigs"]
    assert body["deploymentConfig"] == first["deploymentConfig"]
    assert "tags" not in body
    # And the engine can tell which deployment it syncs
    assert dynamo.get(f"JOB#{job_id(body)}", "JOB")["syncOf"] == job_id(first)


def test_sync_deployment_job_retried_returns_the_same_job(given, api, fleet, version):
    set_job_status(given.job(fleet, version), "Succeeded")
    request = {"clientRequestToken": "sync-1", "fleet": fleet["arn"]}
    first = api.call("syncDeploymentJob", request).json

    again = api.call("syncDeploymentJob", request)

    assert (again.status, again.json) == (200, first)


def test_sync_deployment_job_without_a_previous_job_is_an_invalid_parameter(given, api, fleet):
    response = api.call("syncDeploymentJob", {"clientRequestToken": "sync-1", "fleet": fleet["arn"]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert "no deployment to sync" in response.message


def test_sync_deployment_job_while_a_job_is_active_is_a_concurrent_deployment(given, api, fleet, version):
    given.job(fleet, version)

    response = api.call("syncDeploymentJob", {"clientRequestToken": "sync-1", "fleet": fleet["arn"]})

    assert (response.status, response.error_type) == (400, "ConcurrentDeploymentException")
