"""A script written for AWS RoboMaker runs against `fleetwave serve` with only its client's creation changed
(issue 13, item 1): once with `fleetwave.sdk.client("robomaker", ...)` (Fleetwave's shipped model), once
with AWS's own historic model (tests/data/aws) as botocore shipped it, signing for execute-api."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest

import fleetwave.sdk

HISTORIC_MODELS = Path(__file__).resolve().parents[2] / "data" / "aws"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
# A cap, not an expectation: the job ends within seconds at the e2e time scale.
JOB_DEADLINE_SECONDS = 120.0


def robomaker_script(robomaker: Any) -> dict[str, Any]:
    """What a RoboMaker user's script did, as it was written for boto3.client("robomaker")."""
    suffix = uuid.uuid4().hex[:8]
    fleet = robomaker.create_fleet(name=f"script-fleet-{suffix}", tags={"team": "ops"})
    robot = robomaker.create_robot(
        name=f"script-robot-{suffix}", architecture="X86_64", greengrassGroupId="group-1"
    )
    robomaker.register_robot(fleet=fleet["arn"], robot=robot["arn"])
    app = robomaker.create_robot_application(
        name=f"script-app-{suffix}",
        sources=[{"s3Bucket": "my-bundles", "s3Key": "nav/x86.tar.gz", "architecture": "X86_64"}],
        robotSoftwareSuite={"name": "ROS2", "version": "Foxy"},
    )
    version = robomaker.create_robot_application_version(application=app["arn"])
    job = robomaker.create_deployment_job(
        clientRequestToken=f"script-{suffix}",
        fleet=fleet["arn"],
        deploymentApplicationConfigs=[
            {
                "application": version["arn"],
                "applicationVersion": version["version"],
                "launchConfig": {"packageName": "nav", "launchFile": "nav.launch"},
            }
        ],
        deploymentConfig={"concurrentDeploymentPercentage": 50, "robotDeploymentTimeoutInSeconds": 60},
    )
    # A second job while the first runs: the API's ConcurrentDeploymentException, as a modelled exception
    try:
        robomaker.sync_deployment_job(clientRequestToken=f"sync-{suffix}", fleet=fleet["arn"])
        concurrent = None
    except robomaker.exceptions.ConcurrentDeploymentException as error:
        concurrent = error.response["Error"]["Code"]
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while True:
        described = robomaker.describe_deployment_job(job=job["arn"])
        if described["status"] in ("Succeeded", "Failed", "Canceled") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    robots = [
        item
        for page in robomaker.get_paginator("list_robots").paginate(
            filters=[{"name": "fleetName", "values": [fleet["name"]]}], PaginationConfig={"PageSize": 1}
        )
        for item in page["robots"]
    ]
    robomaker.tag_resource(resourceArn=robot["arn"], tags={"site": "a", "shift": "night"})
    robomaker.untag_resource(resourceArn=robot["arn"], tagKeys=["shift"])
    try:
        robomaker.describe_fleet(fleet=fleet["arn"] + "0")
        missing = None
    except robomaker.exceptions.ResourceNotFoundException as error:
        missing = error.response["Error"]["Message"]
    return {
        "fleet": robomaker.describe_fleet(fleet=fleet["arn"]),
        "job": described,
        "concurrent": concurrent,
        "robots": robots,
        "tags": robomaker.list_tags_for_resource(resourceArn=robot["arn"])["tags"],
        "missing": missing,
        "version": version,
    }


def historic_client(endpoint: str) -> Any:
    """AWS's own robomaker model, as an old botocore shipped it, with one signing hook for execute-api."""
    from fleetwave.sdk.greengrass import use_execute_api_signing

    core = botocore.session.Session()
    core.set_config_variable("data_path", str(HISTORIC_MODELS))  # AWS_DATA_PATH, as a user would set it
    session = boto3.session.Session(botocore_session=core, **KEYS)
    client = session.client("robomaker", endpoint_url=endpoint)
    assert client.meta.service_model.signing_name == "robomaker"  # AWS's model, not Fleetwave's
    client.meta.events.register("before-sign.robomaker", use_execute_api_signing)
    return client


@pytest.mark.parametrize("which", ["fleetwave.sdk.client", "historic AWS model"])
def test_robomaker_script_runs_unchanged(serve: Any, which: str) -> None:
    # Given a client made the one way or the other
    if which == "fleetwave.sdk.client":
        robomaker = fleetwave.sdk.client("robomaker", endpoint_url=serve.api_url, **KEYS)
    else:
        robomaker = historic_client(serve.api_url)
    # When the RoboMaker script runs
    result = robomaker_script(robomaker)
    # Then every call answered as AWS RoboMaker did: timestamps as datetimes, the job ran to its end
    job = result["job"]
    assert isinstance(job["createdAt"], dt.datetime)
    # The robot runs no agent: it never answers (NoResponse); with no failure threshold the job succeeds
    assert job["status"] == "Succeeded"
    assert [robot["status"] for robot in job["robotDeploymentSummary"]] == ["NoResponse"]
    assert job["robotDeploymentSummary"][0]["failureCode"] == "RobotDeploymentNoResponse"
    assert job["deploymentConfig"]["concurrentDeploymentPercentage"] == 50
    assert result["concurrent"] == "ConcurrentDeploymentException"
    assert result["fleet"]["lastDeploymentStatus"] == "Succeeded"
    assert isinstance(result["fleet"]["robots"][0]["createdAt"], dt.datetime)
    assert result["fleet"]["robots"][0]["greenGrassGroupId"] == "group-1"  # AWS's spelling in this shape
    assert [robot["greenGrassGroupId"] for robot in result["robots"]] == ["group-1"]
    assert result["tags"] == {"site": "a"}
    assert "does not exist" in result["missing"]
    assert result["version"]["version"] == "1"


def test_robomaker_client_validates_before_sending(serve: Any) -> None:
    # Given Fleetwave's client
    robomaker = fleetwave.sdk.client("robomaker", endpoint_url=serve.api_url, **KEYS)
    # When a required member is missing, botocore refuses it from the model (as it did for RoboMaker)
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="clientRequestToken"):
        robomaker.sync_deployment_job(fleet="arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/x/1")
    # And a value only the service checks comes back as the API's InvalidParameterException
    with pytest.raises(robomaker.exceptions.InvalidParameterException, match="architecture"):
        robomaker.create_robot(name="r", architecture="SPARC", greengrassGroupId="g")


def test_greengrassv2_client_from_the_same_setup(serve: Any) -> None:
    # Given fleetwave.sdk.client for Greengrass V2 (botocore's model, signing for execute-api)
    greengrass = fleetwave.sdk.client("greengrassv2", endpoint_url=serve.api_url, **KEYS)
    # When it lists deployments and asks for one that does not exist
    listed = greengrass.list_deployments()
    with pytest.raises(greengrass.exceptions.ResourceNotFoundException):
        greengrass.get_deployment(deploymentId=str(uuid.uuid4()))
    # Then Fleetwave answered both
    assert "deployments" in listed
