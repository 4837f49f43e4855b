"""The front door itself: malformed requests, unknown routes, unexpected failures, response headers."""

from __future__ import annotations

import pytest
from cases.robomaker_validation import MALFORMED_BODIES, MALFORMED_BODY_IDS
from fakes.api_events import rest_event
from fleetwave_service.fleet import fleets as fleets_logic


@pytest.mark.parametrize("raw_body,reason", MALFORMED_BODIES, ids=MALFORMED_BODY_IDS)
def test_a_body_that_is_not_a_json_object_is_an_invalid_parameter(api, raw_body, reason):
    response = api.send(rest_event("POST", "/createFleet", raw_body=raw_body))

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message == reason


def test_a_missing_body_where_one_is_required_is_an_invalid_parameter(api):
    response = api.request("POST", "/describeFleet", None)

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


def test_a_body_that_is_not_json_content_is_an_invalid_parameter(api):
    event = rest_event("POST", "/createFleet", raw_body="name=x", headers={"Content-Type": "text/plain"})

    response = api.send(event)

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/launchRockets"),
        ("GET", "/createFleet"),
        ("PUT", "/tags/arn:aws:robomaker:x"),
        ("POST", "/"),
    ],
)
def test_an_unknown_operation_is_api_gateways_403_missing_authentication_token(api, method, path):
    # API Gateway answers a method and path it has no route for itself; the Lambda answers the same, so
    # the local gateway (which passes every path on) and the deployed API agree
    response = api.request(method, path, {})

    assert (response.status, response.error_type) == (403, "MissingAuthenticationTokenException")
    assert response.message == "Missing Authentication Token"


def test_an_unexpected_failure_is_a_500_that_leaks_nothing(api, monkeypatch):
    # Given a fault deep inside the service
    def explode(request):
        raise RuntimeError("secret connection string")

    monkeypatch.setattr(fleets_logic, "list_fleets", explode)

    # When a request hits it
    response = api.call("listFleets")

    # Then the caller sees a generic InternalServerException
    assert (response.status, response.error_type) == (500, "InternalServerException")
    assert "secret" not in response.message
    assert response.message


def test_responses_carry_the_request_id_and_json_content_type(api):
    event = rest_event("POST", "/listFleets", {})

    response = api.send(event)
    error = api.send(rest_event("POST", "/describeFleet", {}))

    assert response.headers["x-amzn-RequestId"] == event["requestContext"]["requestId"]
    assert response.headers["Content-Type"] == "application/json"
    assert error.headers["Content-Type"] == "application/json"
    assert error.headers["x-amzn-ErrorType"] == "InvalidParameterException"


def test_unknown_members_in_a_body_are_ignored(api):
    response = api.call("createFleet", {"name": "warehouse", "someFutureField": 1})

    assert response.status == 200
    assert "someFutureField" not in response.json


@pytest.mark.parametrize(
    "operation,listed",
    [
        ("listFleets", "fleetDetails"),
        ("listRobots", "robots"),
        ("listRobotApplications", "robotApplicationSummaries"),
        ("listDeploymentJobs", "deploymentJobs"),
    ],
)
def test_list_operations_accept_an_absent_body(api, operation, listed):
    response = api.request("POST", f"/{operation}", None)

    assert (response.status, response.json) == (200, {listed: []})
