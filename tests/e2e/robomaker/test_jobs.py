"""Deployment jobs over HTTP against `fleetwave serve`: create, describe, list, cancel, sync, idempotency,
the one-active-job-per-fleet rule, and racing requests (moto's DynamoDB made atomic by the embedded endpoint).

The rollout engine may run jobs in the background: a fleet with a registered robot and no robot agent
keeps its job in flight (the robot never answers, and its timeout is a week), so these tests only rely on
what the API itself sets (Pending on creation, Canceled on cancel). Jobs left active are canceled at the end.
"""

from __future__ import annotations

import threading

import pytest
from fakes.robomaker import list_pages, unique

ACTIVE = ("Pending", "Preparing", "InProgress")
WEEK = 7 * 24 * 3600


@pytest.fixture
def cancel_later(api):
    """Jobs to cancel when the test ends, so that no fleet lock or concurrent-job slot outlives it."""
    arns: list[str] = []
    yield arns
    for arn in arns:
        api.call("cancelDeploymentJob", {"job": arn})


@pytest.fixture
def fleet(given):
    """A fleet with one robot that never answers: its jobs stay active until canceled."""
    fleet = given.fleet(unique("fleet"))
    given.robot(unique("robot"), fleet=fleet)
    return fleet


@pytest.fixture
def version(given):
    return given.application_version(unique("nav"))


def job_request(given, fleet, version, **extra):
    """A CreateDeploymentJob body whose robots wait a week (deploymentConfig=None leaves it out)."""
    extra.setdefault("deploymentConfig", {"robotDeploymentTimeoutInSeconds": WEEK})
    if extra["deploymentConfig"] is None:
        del extra["deploymentConfig"]
    return given.job_request(fleet, version, **extra)


def create(api, given, fleet, version, cancel_later, **extra):
    response = api.call("createDeploymentJob", job_request(given, fleet, version, **extra))
    assert response.status == 200, response.json
    cancel_later.append(response.json["arn"])
    return response.json


def fleet_job_arns(api, fleet_name):
    response = api.call("listDeploymentJobs", {"filters": [{"name": "fleetName", "values": [fleet_name]}]})
    assert response.status == 200, response.json
    return [job["arn"] for job in response.json["deploymentJobs"]]


def race(requests_to_send):
    """Send every (operation, body) at the same moment from its own thread; answers in request order."""
    barrier = threading.Barrier(len(requests_to_send))
    answers = [None] * len(requests_to_send)

    def send(index, call):
        barrier.wait()
        answers[index] = call()

    threads = [threading.Thread(target=send, args=(i, call)) for i, call in enumerate(requests_to_send)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


# --- create, describe, list ---------------------------------------------------------------------------


def test_create_deployment_job_answers_the_seed_shape_pending(api, given, fleet, version, cancel_later):
    # Given a full request
    request = job_request(
        given,
        fleet,
        version,
        deploymentConfig={
            "concurrentDeploymentPercentage": 20,
            "failureThresholdPercentage": 25,
            "robotDeploymentTimeoutInSeconds": WEEK,
            "downloadConditionFile": {"bucket": "conditions", "key": "check.sh", "etag": "abc"},
        },
        tags={"release": "1.2"},
    )
    request["deploymentApplicationConfigs"][0]["launchConfig"].update(
        preLaunchFile="pre.sh", postLaunchFile="post.sh", environmentVariables={"ROS_DOMAIN_ID": "7"}
    )

    # When the job is created
    response = api.call("createDeploymentJob", request)

    # Then it is Pending, echoing the request, with a deployment-job ARN
    assert response.status == 200, response.json
    cancel_later.append(response.json["arn"])
    job_id = response.json["arn"].rsplit("/", 1)[1]
    assert response.json["arn"] == f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{job_id}"
    assert job_id.startswith("deployment-") and len(job_id) == len("deployment-") + 12
    assert response.json == {
        "arn": response.json["arn"],
        "fleet": fleet["arn"],
        "status": "Pending",
        "deploymentApplicationConfigs": request["deploymentApplicationConfigs"],
        "deploymentConfig": request["deploymentConfig"],
        "createdAt": response.json["createdAt"],
        "tags": {"release": "1.2"},
    }


def test_describe_deployment_job_shows_the_job(api, given, fleet, version, cancel_later):
    job = create(api, given, fleet, version, cancel_later, tags={"release": "2"})

    response = api.call("describeDeploymentJob", {"job": job["arn"]})

    assert response.status == 200, response.json
    body = response.json
    assert (body["arn"], body["fleet"], body["tags"]) == (job["arn"], fleet["arn"], {"release": "2"})
    assert body["status"] in ACTIVE
    assert body["deploymentApplicationConfigs"] == job["deploymentApplicationConfigs"]
    assert isinstance(body["robotDeploymentSummary"], list)


def test_create_deployment_job_defaults_the_robot_timeout(api, given, fleet, version, cancel_later):
    job = create(api, given, fleet, version, cancel_later, deploymentConfig=None)

    assert job["deploymentConfig"] == {"robotDeploymentTimeoutInSeconds": 18000}


def test_list_deployment_jobs_by_fleet_pages_newest_first(api, given, fleet, version, cancel_later):
    # Given five jobs on one fleet, each canceled before the next
    created = []
    for _ in range(5):
        job = create(api, given, fleet, version, cancel_later)
        assert api.call("cancelDeploymentJob", {"job": job["arn"]}).status == 200
        created.append(job["arn"])

    # When the fleet's jobs are listed two at a time
    body = {"filters": [{"name": "fleetName", "values": [fleet["name"]]}], "maxResults": 2}
    jobs, pages = list_pages(api, "listDeploymentJobs", body, "deploymentJobs")
    seen = [job["arn"] for job in jobs]

    # Then every job appears once, newest first, over more than two pages
    assert seen == created[::-1]
    assert pages >= 3


def test_list_deployment_jobs_by_status_shows_canceled_jobs(api, given, fleet, version, cancel_later):
    job = create(api, given, fleet, version, cancel_later)
    api.call("cancelDeploymentJob", {"job": job["arn"]})

    listed, token = [], None
    while True:
        body = {
            "filters": [{"name": "status", "values": ["Canceled"]}],
            **({"nextToken": token} if token else {}),
        }
        page = api.call("listDeploymentJobs", body).json
        listed += page["deploymentJobs"]
        token = page.get("nextToken")
        if not token:
            break

    assert job["arn"] in [listed_job["arn"] for listed_job in listed]
    assert {listed_job["status"] for listed_job in listed} == {"Canceled"}


def test_create_deployment_job_with_unknown_resources_is_not_found(api, given, fleet, version):
    ghost = {"arn": f"arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/{unique('ghost')}/1"}

    answers = [
        api.call("createDeploymentJob", job_request(given, ghost, version)),
        api.call("createDeploymentJob", job_request(given, fleet, dict(version, version="99"))),
        api.call(
            "describeDeploymentJob",
            {"job": "arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-000000000000"},
        ),
    ]

    assert [(answer.status, answer.error_type) for answer in answers] == [
        (400, "ResourceNotFoundException")
    ] * 3
    assert fleet_job_arns(api, fleet["name"]) == []


# --- cancel and sync --------------------------------------------------------------------------------


def test_cancel_deployment_job_cancels_it_and_frees_the_fleet(api, given, fleet, version, cancel_later):
    # Given an active job
    job = create(api, given, fleet, version, cancel_later)

    # When it is canceled (twice: the second is a no-op)
    first = api.call("cancelDeploymentJob", {"job": job["arn"]})
    again = api.call("cancelDeploymentJob", {"job": job["arn"]})

    # Then it is Canceled, the fleet shows it as its last deployment, and takes a new job
    assert (first.status, first.json, again.status) == (200, {}, 200)
    assert api.call("describeDeploymentJob", {"job": job["arn"]}).json["status"] == "Canceled"
    described = api.call("describeFleet", {"fleet": fleet["arn"]}).json
    assert (described["lastDeploymentStatus"], described["lastDeploymentJob"]) == ("Canceled", job["arn"])
    assert create(api, given, fleet, version, cancel_later)["status"] == "Pending"


def test_sync_deployment_job_copies_the_fleets_latest_job(api, given, fleet, version, cancel_later):
    # Given a fleet whose last job ended (canceled)
    first = create(api, given, fleet, version, cancel_later, tags={"release": "1"})
    api.call("cancelDeploymentJob", {"job": first["arn"]})
    request = {"clientRequestToken": unique("sync"), "fleet": fleet["arn"]}

    # When the fleet is synced, and the same request is retried
    synced = api.call("syncDeploymentJob", request)
    retried = api.call("syncDeploymentJob", request)

    # Then a new Pending job has the same configuration (seed 001's shape: no tags); the retry is that job
    assert synced.status == 200, synced.json
    cancel_later.append(synced.json["arn"])
    assert synced.json["arn"] != first["arn"]
    assert synced.json["status"] == "Pending"
    assert synced.json["deploymentApplicationConfigs"] == first["deploymentApplicationConfigs"]
    assert synced.json["deploymentConfig"] == first["deploymentConfig"]
    assert "tags" not in synced.json
    assert (retried.status, retried.json["arn"]) == (200, synced.json["arn"])


def test_sync_deployment_job_of_a_fleet_never_deployed_is_an_invalid_parameter(api, fleet):
    response = api.call("syncDeploymentJob", {"clientRequestToken": unique("sync"), "fleet": fleet["arn"]})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


def test_sync_deployment_job_while_a_job_is_active_is_a_concurrent_deployment(
    api, given, fleet, version, cancel_later
):
    create(api, given, fleet, version, cancel_later)

    response = api.call("syncDeploymentJob", {"clientRequestToken": unique("sync"), "fleet": fleet["arn"]})

    assert (response.status, response.error_type) == (400, "ConcurrentDeploymentException")


# --- idempotency and the fleet lock -------------------------------------------------------------------


def test_create_deployment_job_retried_with_its_token_returns_the_same_job(
    api, given, fleet, version, cancel_later
):
    # Given a created job
    request = job_request(given, fleet, version)
    first = api.call("createDeploymentJob", request)
    assert first.status == 200, first.json
    cancel_later.append(first.json["arn"])

    # When the identical request is sent again
    again = api.call("createDeploymentJob", request)

    # Then it answers the same job (not ConcurrentDeploymentException), and the fleet has one job
    assert (again.status, again.json["arn"]) == (200, first.json["arn"])
    assert again.json["deploymentApplicationConfigs"] == first.json["deploymentApplicationConfigs"]
    assert fleet_job_arns(api, fleet["name"]) == [first.json["arn"]]


def test_create_deployment_job_reusing_a_token_for_another_request_is_a_mismatch(
    api, given, fleet, version, cancel_later
):
    request = job_request(given, fleet, version)
    cancel_later.append(given.ok("createDeploymentJob", request)["arn"])

    changed = dict(request, deploymentConfig={"concurrentDeploymentPercentage": 50})
    response = api.call("createDeploymentJob", changed)

    assert (response.status, response.error_type) == (400, "IdempotentParameterMismatchException")


def test_create_deployment_job_while_another_is_active_is_a_concurrent_deployment(
    api, given, fleet, version, cancel_later
):
    # Given an active job on the fleet
    first = create(api, given, fleet, version, cancel_later)

    # When another job (another token) is created for the same fleet
    response = api.call("createDeploymentJob", job_request(given, fleet, version))

    # Then it is a ConcurrentDeploymentException naming the active job, and no second job exists
    assert (response.status, response.error_type) == (400, "ConcurrentDeploymentException")
    assert first["arn"].rsplit("/", 1)[1] in response.json["message"]
    assert fleet_job_arns(api, fleet["name"]) == [first["arn"]]


def test_create_deployment_job_identical_requests_racing_over_http_make_one_job(
    api, given, fleet, version, cancel_later
):
    # Given eight identical requests (one token) released at the same moment
    request = job_request(given, fleet, version)

    # When they race through the local API Gateway (each on its own server thread)
    answers = race([lambda: api.call("createDeploymentJob", request)] * 8)
    cancel_later.extend({answer.json["arn"] for answer in answers if answer.status == 200})

    # Then every caller gets the one job's ARN, and the fleet has exactly one job
    assert [answer.status for answer in answers] == [200] * 8, [answer.json for answer in answers]
    assert len({answer.json["arn"] for answer in answers}) == 1
    assert fleet_job_arns(api, fleet["name"]) == [answers[0].json["arn"]]


def test_create_deployment_job_different_requests_racing_over_http_make_one_job(
    api, given, fleet, version, cancel_later
):
    # Given eight requests with different tokens for one fleet, released at the same moment
    requests = [job_request(given, fleet, version) for _ in range(8)]

    # When they race
    answers = race([lambda request=request: api.call("createDeploymentJob", request) for request in requests])
    winners = [answer.json["arn"] for answer in answers if answer.status == 200]
    cancel_later.extend(winners)

    # Then exactly one wins; every other caller is told the fleet is busy; the fleet has that one job
    outcomes = sorted((answer.status, answer.error_type or "") for answer in answers)
    assert outcomes == [(200, "")] + [(400, "ConcurrentDeploymentException")] * 7, [a.json for a in answers]
    assert fleet_job_arns(api, fleet["name"]) == winners
