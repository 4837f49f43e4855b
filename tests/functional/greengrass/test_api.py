"""Greengrass V2 front door through the API handler (moto, no state machine): shapes, revisions, errors."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any
from urllib.parse import quote

import pytest
from fakes.api_events import HandlerApi
from fakes.robomaker import Given

ACCOUNT = "123456789012"
GROUP_PREFIX = f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/"
THING_PREFIX = f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/"
DEPLOYMENTS = "/greengrass/v2/deployments"


def create(api: HandlerApi, **body: Any) -> Any:
    return api.request("POST", DEPLOYMENTS, body)


def recipe(name: str = "com.example.Hello", version: str = "1.0.0", **extra: Any) -> str:
    document = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentDescription": "says hello",
        "ComponentPublisher": "Example",
        "ComponentConfiguration": {"DefaultConfiguration": {"greeting": "hello", "volume": 3}},
        **extra,
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.fixture
def group(given: Given) -> str:
    fleet = given.fleet("gg-fleet")
    given.robot("gg-robot-1", fleet=fleet)
    return GROUP_PREFIX + "gg-fleet"


def test_gg_create_deployment_returns_201_with_ids_and_get_shows_it_active(
    api: HandlerApi, group: str
) -> None:
    # Given a thing group (fleet) with a robot
    # When a deployment is created for it
    response = create(
        api,
        targetArn=group,
        deploymentName="hello",
        components={"com.example.Hello": {"componentVersion": "1.0.0"}},
        tags={"team": "nav"},
    )
    # Then it is 201 with the deployment id, and an IoT job id/ARN derived from it
    assert response.status == 201, response.json
    deployment_id = response.json["deploymentId"]
    assert response.json["iotJobId"] == deployment_id
    assert response.json["iotJobArn"] == f"arn:aws:iot:us-east-1:{ACCOUNT}:job/{deployment_id}"
    got = api.request("GET", f"{DEPLOYMENTS}/{deployment_id}")
    assert got.status == 200
    assert got.json["deploymentStatus"] == "ACTIVE"
    assert got.json["revisionId"] == "1"
    assert got.json["isLatestForTarget"] is True
    assert got.json["targetArn"] == group
    assert got.json["components"] == {"com.example.Hello": {"componentVersion": "1.0.0"}}
    assert got.json["tags"] == {"team": "nav"}
    # And its policies carry Greengrass's defaults
    assert got.json["deploymentPolicies"] == {
        "failureHandlingPolicy": "ROLLBACK",
        "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
        "configurationValidationPolicy": {"timeoutInSeconds": 30},
    }


def test_gg_new_deployment_for_target_is_next_revision_and_previous_inactive(
    api: HandlerApi, group: str
) -> None:
    # Given a deployment for a target
    first = create(api, targetArn=group, components={"a": {"componentVersion": "1.0.0"}}).json["deploymentId"]
    # When another is created for the same target
    second = create(api, targetArn=group, components={"a": {"componentVersion": "2.0.0"}}).json[
        "deploymentId"
    ]
    # Then it is revision 2 and the first is INACTIVE, no longer latest
    assert api.request("GET", f"{DEPLOYMENTS}/{second}").json["revisionId"] == "2"
    old = api.request("GET", f"{DEPLOYMENTS}/{first}").json
    assert (old["deploymentStatus"], old["isLatestForTarget"]) == ("INACTIVE", False)
    # And listing defaults to LATEST_ONLY; ALL shows both
    latest = api.request("GET", DEPLOYMENTS, query={"targetArn": [group]}).json["deployments"]
    assert [d["deploymentId"] for d in latest] == [second]
    everything = api.request("GET", DEPLOYMENTS, query={"targetArn": [group], "historyFilter": ["ALL"]})
    assert {d["deploymentId"] for d in everything.json["deployments"]} == {first, second}


def test_gg_list_deployments_pages_with_next_token(api: HandlerApi, given: Given) -> None:
    # Given three targets with one deployment each
    for index in range(3):
        given.fleet(f"pages-{index}")
        assert create(api, targetArn=f"{GROUP_PREFIX}pages-{index}").status == 201
    # When they are listed two at a time
    first = api.request("GET", DEPLOYMENTS, query={"maxResults": ["2"]})
    second = api.request(
        "GET", DEPLOYMENTS, query={"maxResults": ["2"], "nextToken": [first.json["nextToken"]]}
    )
    # Then the pages hold all three, once each
    ids = [d["deploymentId"] for d in first.json["deployments"] + second.json["deployments"]]
    assert len(ids) == len(set(ids)) == 3
    assert "nextToken" not in second.json


def test_gg_deployments_do_not_appear_in_robomaker_list_deployment_jobs(api: HandlerApi, group: str) -> None:
    # Given a Greengrass deployment
    assert create(api, targetArn=group).status == 201
    # When RoboMaker deployment jobs are listed
    response = api.call("listDeploymentJobs", {})
    # Then it is not among them
    assert response.status == 200 and response.json["deploymentJobs"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"targetArn": "arn:aws:iot:us-east-1:123:robot/x"}, "targetArn"),
        ({"targetArn": GROUP_PREFIX + "g", "deploymentName": ""}, "deploymentName"),
        ({"targetArn": GROUP_PREFIX + "g", "clientToken": "not_valid!"}, "clientToken"),
        ({"targetArn": GROUP_PREFIX + "g", "components": {"a": {}}}, "componentVersion"),
        (
            {"targetArn": GROUP_PREFIX + "g", "deploymentPolicies": {"failureHandlingPolicy": "IGNORE"}},
            "failureHandlingPolicy",
        ),
        (
            {
                "targetArn": GROUP_PREFIX + "g",
                "iotJobConfiguration": {"jobExecutionsRolloutConfig": {"maximumPerMinute": 1001}},
            },
            "maximumPerMinute",
        ),
        (
            {
                "targetArn": GROUP_PREFIX + "g",
                "iotJobConfiguration": {
                    "jobExecutionsRolloutConfig": {
                        "exponentialRate": {
                            "baseRatePerMinute": 1,
                            "incrementFactor": 5.5,
                            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
                        }
                    }
                },
            },
            "incrementFactor",
        ),
        (
            {
                "targetArn": GROUP_PREFIX + "g",
                "iotJobConfiguration": {
                    "abortConfig": {
                        "criteriaList": [
                            {
                                "failureType": "FAILED",
                                "action": "CANCEL",
                                "thresholdPercentage": 101,
                                "minNumberOfExecutedThings": 1,
                            }
                        ]
                    }
                },
            },
            "thresholdPercentage",
        ),
        (
            {
                "targetArn": GROUP_PREFIX + "g",
                "iotJobConfiguration": {"timeoutConfig": {"inProgressTimeoutInMinutes": 0}},
            },
            "inProgressTimeoutInMinutes",
        ),
        ({"targetArn": GROUP_PREFIX + "g", "tags": {"k" * 129: "v"}}, "tags"),
    ],
)
def test_gg_create_deployment_rejects_invalid_input_with_validation_exception(
    api: HandlerApi, body: dict[str, Any], field: str
) -> None:
    # When a request breaks one of the model's constraints
    response = create(api, **body)
    # Then it is a 400 ValidationException naming the field
    assert response.status == 400, response.json
    assert response.error_type == "ValidationException"
    assert field in response.message


def test_gg_create_deployment_for_unknown_target_is_not_found(api: HandlerApi, aws: Any) -> None:
    response = create(api, targetArn=THING_PREFIX + "nobody")
    assert (response.status, response.error_type) == (404, "ResourceNotFoundException")


def test_gg_unknown_deployment_is_not_found_for_get_cancel_delete(api: HandlerApi, aws: Any) -> None:
    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("DELETE", "")):
        response = api.request(method, f"{DEPLOYMENTS}/no-such-id{suffix}", {} if method == "POST" else None)
        assert (response.status, response.error_type) == (404, "ResourceNotFoundException"), method


def test_gg_delete_deployment_only_when_canceled_or_completed(api: HandlerApi, group: str) -> None:
    # Given an active deployment
    deployment_id = create(api, targetArn=group).json["deploymentId"]
    # When it is deleted while active, it is a 409 ConflictException
    refused = api.request("DELETE", f"{DEPLOYMENTS}/{deployment_id}")
    assert (refused.status, refused.error_type) == (409, "ConflictException")
    # When it is canceled, it shows CANCELED and can then be deleted (204), after which it is gone
    canceled = api.request("POST", f"{DEPLOYMENTS}/{deployment_id}/cancel", {})
    assert canceled.status == 200 and canceled.json["message"]
    assert api.request("GET", f"{DEPLOYMENTS}/{deployment_id}").json["deploymentStatus"] == "CANCELED"
    deleted = api.request("DELETE", f"{DEPLOYMENTS}/{deployment_id}")
    assert deleted.status == 204
    assert api.request("GET", f"{DEPLOYMENTS}/{deployment_id}").status == 404


def test_gg_client_token_returns_the_first_response_again(api: HandlerApi, group: str) -> None:
    # Given a deployment created with a client token
    first = create(api, targetArn=group, clientToken="token-1")
    # When the same request is sent again with the same token
    again = create(api, targetArn=group, clientToken="token-1")
    # Then the same deployment comes back and no new revision was made
    assert again.status == 201 and again.json == first.json
    listed = api.request("GET", DEPLOYMENTS, query={"historyFilter": ["ALL"]}).json["deployments"]
    assert len(listed) == 1


def test_gg_client_token_with_a_different_request_is_a_conflict(api: HandlerApi, group: str) -> None:
    assert create(api, targetArn=group, clientToken="token-2").status == 201
    response = create(api, targetArn=group, clientToken="token-2", deploymentName="other")
    assert (response.status, response.error_type) == (409, "ConflictException")


def test_gg_client_token_while_first_request_runs_is_request_already_in_progress(
    api: HandlerApi, group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first request that is still running (held inside its rollout start)
    from fleetwave_service.engine import starter as rollout_starter

    entered, release = threading.Event(), threading.Event()

    def held_start(job_id: str) -> None:
        entered.set()
        release.wait(30)

    monkeypatch.setattr(rollout_starter, "start_rollout", held_start)
    results: dict[str, Any] = {}
    first = threading.Thread(
        target=lambda: results.setdefault("first", create(api, targetArn=group, clientToken="t3"))
    )
    first.start()
    assert entered.wait(30)
    # When the same token arrives meanwhile
    second = create(api, targetArn=group, clientToken="t3")
    release.set()
    first.join(30)
    # Then it is a 400 RequestAlreadyInProgressException, and the first request succeeds
    assert (second.status, second.error_type) == (400, "RequestAlreadyInProgressException")
    assert results["first"].status == 201


def test_gg_tags_on_deployments_use_greengrass_errors(api: HandlerApi, group: str) -> None:
    deployment_id = create(api, targetArn=group).json["deploymentId"]
    arn = f"arn:aws:greengrass:us-east-1:{ACCOUNT}:deployments:{deployment_id}"
    path = "/tags/" + quote(arn, safe="")
    assert api.request("POST", path, {"tags": {"a": "1", "b": "2"}}).status == 200
    assert api.request("DELETE", path, query={"tagKeys": ["a"]}).status == 200
    assert api.request("GET", path).json == {"tags": {"b": "2"}}
    missing = api.request("GET", "/tags/" + quote(arn + "x", safe=""))
    assert (missing.status, missing.error_type) == (404, "ResourceNotFoundException")


# --- components -------------------------------------------------------------------------------------


def test_gg_component_version_lifecycle(api: HandlerApi, aws: Any) -> None:
    # When a component version is created from an inline JSON recipe
    created = api.request("POST", "/greengrass/v2/createComponentVersion", {"inlineRecipe": recipe()})
    # Then it is 201 and DEPLOYABLE, with its version ARN
    assert created.status == 201, created.json
    arn = created.json["arn"]
    assert arn == f"arn:aws:greengrass:us-east-1:{ACCOUNT}:components:com.example.Hello:versions:1.0.0"
    assert created.json["status"]["componentState"] == "DEPLOYABLE"
    # And the same version again is a conflict
    again = api.request("POST", "/greengrass/v2/createComponentVersion", {"inlineRecipe": recipe()})
    assert (again.status, again.error_type) == (409, "ConflictException")
    api.request("POST", "/greengrass/v2/createComponentVersion", {"inlineRecipe": recipe(version="1.10.0")})
    # And describe, list and list versions show it (percent-encoded ARNs, as botocore sends them)
    described = api.request("GET", f"/greengrass/v2/components/{quote(arn, safe='')}/metadata")
    assert described.status == 200 and described.json["description"] == "says hello"
    components = api.request("GET", "/greengrass/v2/components").json["components"]
    assert [(c["componentName"], c["latestVersion"]["componentVersion"]) for c in components] == [
        ("com.example.Hello", "1.10.0")
    ]
    component_arn = arn.rsplit(":versions:", 1)[0]
    versions = api.request("GET", f"/greengrass/v2/components/{quote(component_arn, safe='')}/versions")
    assert [v["componentVersion"] for v in versions.json["componentVersions"]] == ["1.10.0", "1.0.0"]
    # When it is deleted, it is gone
    assert api.request("DELETE", f"/greengrass/v2/components/{quote(arn, safe='')}").status == 204
    gone = api.request("GET", f"/greengrass/v2/components/{quote(arn, safe='')}/metadata")
    assert (gone.status, gone.error_type) == (404, "ResourceNotFoundException")


@pytest.mark.parametrize(
    "inline",
    [
        "%%%not-base64",
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(json.dumps({"ComponentVersion": "1.0.0"}).encode()).decode(),
        base64.b64encode(json.dumps({"ComponentName": "a", "ComponentVersion": "one"}).encode()).decode(),
    ],
)
def test_gg_create_component_version_rejects_bad_recipes(api: HandlerApi, aws: Any, inline: str) -> None:
    response = api.request("POST", "/greengrass/v2/createComponentVersion", {"inlineRecipe": inline})
    assert (response.status, response.error_type) == (400, "ValidationException")
    assert "inlineRecipe" in response.message


# --- core devices -----------------------------------------------------------------------------------


def test_gg_core_devices_are_robots(api: HandlerApi, given: Given) -> None:
    # Given two robots, one in a fleet
    fleet = given.fleet("devices")
    given.robot("dev-1", fleet=fleet)
    given.robot("dev-2", architecture="ARM64")
    # When core devices are listed (all, then by thing group)
    everything = api.request("GET", "/greengrass/v2/coreDevices").json["coreDevices"]
    in_group = api.request(
        "GET", "/greengrass/v2/coreDevices", query={"thingGroupArn": [GROUP_PREFIX + "devices"]}
    )
    # Then every robot is a HEALTHY core device, and the group filter keeps its members
    assert [(d["coreDeviceThingName"], d["status"]) for d in everything] == [
        ("dev-1", "HEALTHY"),
        ("dev-2", "HEALTHY"),
    ]
    assert [d["coreDeviceThingName"] for d in in_group.json["coreDevices"]] == ["dev-1"]
    device = api.request("GET", "/greengrass/v2/coreDevices/dev-2")
    assert device.status == 200 and device.json["architecture"] == "aarch64"
    missing = api.request("GET", "/greengrass/v2/coreDevices/nobody/effectiveDeployments")
    assert (missing.status, missing.error_type) == (404, "ResourceNotFoundException")
    assert api.request("GET", "/greengrass/v2/coreDevices/dev-1/installedComponents").json == {
        "installedComponents": []
    }


def test_gg_component_operations_reject_arns_of_the_wrong_shape(api: HandlerApi, aws: Any) -> None:
    component = f"arn:aws:greengrass:us-east-1:{ACCOUNT}:components:com.example.Hello"
    version = component + ":versions:1.0.0"
    for path in (
        f"/greengrass/v2/components/{quote(component, safe='')}/metadata",
        f"/greengrass/v2/components/{quote(version, safe='')}/versions",
    ):
        response = api.request("GET", path)
        assert (response.status, response.error_type) == (400, "ValidationException"), path
    missing = api.request("GET", f"/greengrass/v2/components/{quote(component, safe='')}/versions")
    assert (missing.status, missing.error_type) == (404, "ResourceNotFoundException")
