"""Every validation rule over HTTP: bad input to `fleetwave serve` is a 400 InvalidParameterException naming
the field (never a 500), with the same case tables as the in-process tests (tests/cases/)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from cases.robomaker_validation import (
    CASES,
    MALFORMED_BODIES,
    MALFORMED_BODY_IDS,
    OTHER_CASES,
    apply_case,
    case_id,
)
from fakes.robomaker import unique

from fleetwave.sdk import sign_request


def assert_invalid_parameter(response, field):
    assert (response.status, response.error_type) == (400, "InvalidParameterException"), response.json
    assert response.json["message"].startswith(field), response.json["message"]


@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
def test_request_violating_a_constraint_is_an_invalid_parameter_over_http(api, case):
    # Given an otherwise valid request with one constraint broken
    operation, body = apply_case(case)

    # When it is sent, signed, to the local API Gateway
    response = api.call(operation, body)

    # Then it is a 400 InvalidParameterException naming the field
    assert_invalid_parameter(response, case[3])


@pytest.mark.parametrize("operation,body,field", OTHER_CASES)
def test_other_requests_violating_a_constraint_are_invalid_parameters_over_http(api, operation, body, field):
    assert_invalid_parameter(api.call(operation, body), field)


def send_raw(api, path, body, content_type="application/json"):
    """A signed POST whose body is sent exactly as given (the SDK only sends JSON it encoded itself)."""
    request = sign_request(
        "POST",
        f"{api.server.api_url.rstrip('/')}{path}",
        body,
        api.client.credentials,
        headers={"Content-Type": content_type},
    )
    return api.client.send(request)


@pytest.mark.parametrize("raw_body,reason", MALFORMED_BODIES, ids=MALFORMED_BODY_IDS)
def test_a_body_that_is_not_a_json_object_is_an_invalid_parameter_over_http(api, raw_body, reason):
    response = send_raw(api, "/createFleet", raw_body.encode())

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.json["message"] == reason


def test_a_body_that_is_not_json_content_is_an_invalid_parameter_over_http(api):
    response = send_raw(api, "/createFleet", b"name=x", content_type="text/plain")

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


@pytest.mark.parametrize(
    "operation,body,field",
    [
        ("createFleet", {"name": ["a", "list"]}, "name:"),
        ("createFleet", {"name": None}, "name:"),
        ("createRobot", {"name": "r", "architecture": 64, "greengrassGroupId": "g"}, "architecture:"),
        ("listFleets", {"maxResults": 2.5}, "maxResults:"),
        ("listFleets", {"maxResults": True}, "maxResults:"),
        ("listRobots", {"filters": {"name": "status"}}, "filters:"),
        ("describeFleet", {"fleet": {"arn": "x"}}, "fleet:"),
    ],
    ids=[
        "list-for-string",
        "null-for-required",
        "number-for-enum",
        "float",
        "bool",
        "object-for-list",
        "object",
    ],
)
def test_a_member_of_the_wrong_type_is_an_invalid_parameter_over_http(api, operation, body, field):
    assert_invalid_parameter(api.call(operation, body), field)


def test_list_operations_with_other_constraints_broken_are_invalid_parameters_over_http(api):
    answers = {
        "maxResults:": api.call("listRobotApplications", {"maxResults": 101}),
        "filters[0].name:": api.call("listFleets", {"filters": [{"name": "status", "values": ["x"]}]}),
        "filters[0].values[0]:": api.call(
            "listRobots", {"filters": [{"name": "status", "values": ["Sleeping"]}]}
        ),
    }
    for field, response in answers.items():
        assert_invalid_parameter(response, field)
    unknown_status = api.call("listDeploymentJobs", {"filters": [{"name": "status", "values": ["Done"]}]})
    assert (unknown_status.status, unknown_status.error_type) == (400, "InvalidParameterException")


# --- nextToken ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation", ["listFleets", "listRobots", "listRobotApplications", "listDeploymentJobs"]
)
@pytest.mark.parametrize(
    "token",
    ["garbage", "eyJwayI6eyJTIjoiRkxFRVQjeCJ9fQ.forged", "a" * 2048],
    ids=["garbled", "forged-signature", "long"],
)
def test_a_next_token_the_service_did_not_issue_is_an_invalid_parameter_over_http(api, operation, token):
    response = api.call(operation, {"nextToken": token})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert "nextToken" in response.json["message"]


def test_a_next_token_from_another_listing_is_an_invalid_parameter_over_http(api, given):
    # Given a real token issued by ListRobots for one fleet's robots
    fleet = given.fleet(unique("fleet"))
    for _ in range(2):
        given.robot(unique("robot"), fleet=fleet)
    issued = api.call(
        "listRobots", {"maxResults": 1, "filters": [{"name": "fleetName", "values": [fleet["name"]]}]}
    )
    token = issued.json["nextToken"]

    # When it is replayed against ListFleets, and against ListRobots without the filter
    answers = [api.call("listFleets", {"nextToken": token}), api.call("listRobots", {"nextToken": token})]

    # Then both are refused
    assert [(answer.status, answer.error_type) for answer in answers] == [
        (400, "InvalidParameterException")
    ] * 2


# --- tags -----------------------------------------------------------------------------------------


def test_tag_requests_breaking_a_constraint_are_invalid_parameters_over_http(api, given):
    # Given a fleet with one tag
    fleet = given.fleet(unique("fleet"), tags={"team": "ops"})
    path = "/tags/" + quote(fleet["arn"], safe="")

    # When tags are sent that break the rules (50 more than allowed, a bad value), a DELETE has no keys,
    # and the path holds something that is not an ARN
    answers = {
        "tags:": api.call(path, {"tags": {f"k{index}": "v" for index in range(50)}}),
        "tags.ok:": api.call(path, {"tags": {"ok": "semi;colon"}}),
        "tagKeys:": api.call(path, method="DELETE"),
        "resourceArn:": api.call("/tags/not-an-arn", method="GET"),
    }

    # Then each is an InvalidParameterException naming its field, and the fleet's tags are unchanged
    for field, response in answers.items():
        assert_invalid_parameter(response, field)
    assert api.call(path, method="GET").json == {"tags": {"team": "ops"}}


@pytest.mark.parametrize("method,path", [("POST", "/launchRockets"), ("GET", "/createFleet"), ("POST", "/")])
def test_an_unknown_operation_is_api_gateways_403_over_http(api, method, path):
    response = api.call(path, {} if method == "POST" else None, method=method)

    assert (response.status, response.error_type) == (403, "MissingAuthenticationTokenException")
    assert response.json == {"message": "Missing Authentication Token"}
