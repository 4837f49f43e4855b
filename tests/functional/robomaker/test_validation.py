"""Every request constraint of the seeds/reference: a violation is a 400 InvalidParameterException whose
message starts with the offending field, and never a 500."""

from __future__ import annotations

import pytest
from cases.robomaker_validation import CASES, OTHER_CASES, apply_case, case_id


@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
def test_request_violating_a_constraint_is_an_invalid_parameter_naming_the_field(api, case):
    # Given an otherwise valid request with one constraint broken
    operation, body = apply_case(case)

    # When it is sent
    response = api.call(operation, body)

    # Then it is a 400 InvalidParameterException naming the field
    assert (response.status, response.error_type) == (400, "InvalidParameterException"), response.json
    assert response.message.startswith(case[3]), response.message


@pytest.mark.parametrize("operation,body,field", OTHER_CASES)
def test_other_requests_violating_a_constraint_are_invalid_parameters(api, operation, body, field):
    response = api.call(operation, body)

    assert (response.status, response.error_type) == (400, "InvalidParameterException"), response.json
    assert response.message.startswith(field), response.message


def test_boundary_values_are_accepted(given, api):
    # Given the smallest and largest values the constraints allow (names up to the original's 255)
    fleet = given.fleet("f" * 255)
    given.robot("r" * 255, fleet=fleet)
    version = given.application_version("a" * 255)
    body = given.job_request(
        fleet,
        version,
        deploymentConfig={
            "concurrentDeploymentPercentage": 1,
            "failureThresholdPercentage": 100,
            "robotDeploymentTimeoutInSeconds": 60,
        },
        tags={f"k{i}": "" for i in range(50)},
    )
    body["clientRequestToken"] = "t" * 64
    body["deploymentApplicationConfigs"][0]["launchConfig"]["environmentVariables"] = {
        f"_VAR_{i}": "v" for i in range(20)
    }

    # When the job is created
    response = api.call("createDeploymentJob", body)

    # Then it is accepted
    assert response.status == 200, response.json
