"""Greengrass V2 deployments as a user runs them: botocore's own ``greengrassv2`` client against
`fleetwave serve`, with `fleetwave simulate` robots (subprocess) running what they are sent.

The session's serve runs at a small time scale (0.01 by default), so inProgressTimeoutInMinutes=1 lasts
0.6 s. Waits poll the API with a deadline; nothing asserts on elapsed time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support.simulate_process import SimulateProcess
from support.waiting import wait_for

DEADLINE_SECONDS = 60.0
ACCOUNT = "123456789012"
FINAL_EXECUTION = ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED", "COMPLETED")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def group_arn(fleet: str) -> str:
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{fleet}"


class Greengrass:
    """Fleets and robots through the RoboMaker SDK; deployments through botocore's greengrassv2 client."""

    def __init__(self, api: Any, serve: Any) -> None:
        self.client = api.client
        self.gg = api.greengrass
        self.serve = serve
        self.simulators: list[SimulateProcess] = []

    def fleet(self, robots: list[str]) -> dict[str, Any]:
        fleet = self.client.call("createFleet", {"name": unique("gg-fleet")})
        for name in robots:
            self.add_robot(fleet, name)
        return fleet

    def add_robot(self, fleet: dict[str, Any], name: str) -> None:
        robot = self.client.call(
            "createRobot", {"name": name, "architecture": "X86_64", "greengrassGroupId": "g"}
        )
        self.client.call("registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})

    def simulate(self, fleet: dict[str, Any], robots: int, **behaviors: str) -> SimulateProcess:
        simulator = SimulateProcess(self.serve, fleet["name"], behaviors, robots=robots)
        self.simulators.append(simulator)
        return simulator

    def deploy(self, fleet: dict[str, Any], version: str = "1.0.0", **kwargs: Any) -> str:
        response = self.gg.create_deployment(
            targetArn=group_arn(fleet["name"]),
            deploymentName=unique("gg"),
            components={"com.example.Nav": {"componentVersion": version}},
            **kwargs,
        )
        return str(response["deploymentId"])

    def executions(self, robot: str) -> dict[str, dict[str, Any]]:
        listed = self.gg.list_effective_deployments(coreDeviceThingName=robot)["effectiveDeployments"]
        return {item["deploymentId"]: item for item in listed}

    def execution(self, robot: str, deployment_id: str, final: bool = True) -> dict[str, Any]:
        def current() -> dict[str, Any] | None:
            item = self.executions(robot).get(deployment_id)
            if item and (not final or item["coreDeviceExecutionStatus"] in FINAL_EXECUTION):
                return item
            return None

        return wait_for(f"{robot} in {deployment_id}", current)

    def status(self, deployment_id: str, *statuses: str) -> dict[str, Any]:
        def current() -> dict[str, Any] | None:
            got = self.gg.get_deployment(deploymentId=deployment_id)
            return got if got["deploymentStatus"] in statuses else None

        return wait_for(f"deployment {deployment_id} {statuses}", current)

    def installed(self, robot: str) -> dict[str, tuple[str, str]]:
        items = self.gg.list_installed_components(coreDeviceThingName=robot)["installedComponents"]
        return {c["componentName"]: (c["componentVersion"], c["lifecycleState"]) for c in items}


@pytest.fixture
def gg(api: Any, serve: Any) -> Iterator[Greengrass]:
    helper = Greengrass(api, serve)
    yield helper
    for simulator in helper.simulators:
        simulator.stop()


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(1, count + 1)]


def exponential(base: int, factor: float, cap: int | None = None) -> dict[str, Any]:
    rollout: dict[str, Any] = {
        "exponentialRate": {
            "baseRatePerMinute": base,
            "incrementFactor": factor,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 1},
        }
    }
    if cap:
        rollout["maximumPerMinute"] = cap
    return {"jobExecutionsRolloutConfig": rollout}


def test_gg_exponential_rollout_reaches_every_robot_and_completes(gg: Greengrass) -> None:
    # Given five robots running the simulator
    robots = names(unique("exp"), 5)
    fleet = gg.fleet(robots)
    gg.simulate(fleet, robots=5)
    # When a deployment rolls out at 1 robot, then x2 per batch, capped at 2 per minute
    deployment_id = gg.deploy(fleet, iotJobConfiguration=exponential(1, 2.0, cap=2))
    # Then every robot reports SUCCEEDED and the deployment is COMPLETED
    for robot in robots:
        assert gg.execution(robot, deployment_id)["coreDeviceExecutionStatus"] == "SUCCEEDED"
    assert gg.status(deployment_id, "COMPLETED")["revisionId"] == "1"
    # And each robot runs the deployed component
    assert gg.installed(robots[0]) == {"com.example.Nav": ("1.0.0", "RUNNING")}


def test_gg_revision_replaces_previous_and_a_robot_joining_later_receives_it(gg: Greengrass) -> None:
    # Given a group with a completed deployment
    robots = names(unique("rev"), 2)
    fleet = gg.fleet(robots)
    gg.simulate(fleet, robots=2)
    first = gg.deploy(fleet, "1.0.0")
    gg.execution(robots[0], first)
    # When a second deployment is created for the same group
    second = gg.deploy(fleet, "2.0.0")
    # Then it is revision 2, the first is INACTIVE, and the robots run 2.0.0
    assert gg.gg.get_deployment(deploymentId=second)["revisionId"] == "2"
    assert gg.gg.get_deployment(deploymentId=first)["deploymentStatus"] == "INACTIVE"
    for robot in robots:
        assert gg.execution(robot, second)["coreDeviceExecutionStatus"] == "SUCCEEDED"
    latest = gg.gg.list_deployments(targetArn=group_arn(fleet["name"]))["deployments"]
    assert [d["deploymentId"] for d in latest] == [second]
    # When a robot joins the group later (nobody calls Greengrass)
    newcomer = f"{robots[0]}-late"
    gg.add_robot(fleet, newcomer)
    # Then it receives the group's current deployment and runs it
    assert gg.execution(newcomer, second)["coreDeviceExecutionStatus"] == "SUCCEEDED"
    assert gg.installed(newcomer) == {"com.example.Nav": ("2.0.0", "RUNNING")}


def test_gg_abort_criteria_stop_the_rollout(gg: Greengrass) -> None:
    # Given four robots, the first of which fails, released one per batch
    robots = names(unique("abort"), 4)
    fleet = gg.fleet(robots)
    gg.simulate(fleet, robots=4, **{robots[0]: "fail:EnvironmentSetupError"})
    criteria = {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 50,
                "minNumberOfExecutedThings": 1,
            }
        ]
    }
    # When the deployment has abort criteria of 50% FAILED after one executed robot
    deployment_id = gg.deploy(fleet, iotJobConfiguration={**exponential(1, 1.0), "abortConfig": criteria})
    # Then the deployment FAILED, the first robot FAILED, and the others never ran it
    gg.status(deployment_id, "FAILED")
    assert gg.execution(robots[0], deployment_id)["coreDeviceExecutionStatus"] == "FAILED"
    for robot in robots[1:]:
        status = gg.executions(robot).get(deployment_id, {}).get("coreDeviceExecutionStatus")
        assert status in (None, "CANCELED"), (robot, status)


def test_gg_silent_robot_times_out(gg: Greengrass) -> None:
    # Given a robot that never answers
    robots = names(unique("silent"), 1)
    fleet = gg.fleet(robots)
    gg.simulate(fleet, robots=1, **{robots[0]: "silent"})
    # When the deployment's in-progress timeout is one minute (scaled)
    deployment_id = gg.deploy(fleet, iotJobConfiguration={"timeoutConfig": {"inProgressTimeoutInMinutes": 1}})
    # Then the robot's execution is TIMED_OUT
    assert gg.execution(robots[0], deployment_id)["coreDeviceExecutionStatus"] == "TIMED_OUT"


def test_gg_failure_rolls_back_to_previous_components_or_leaves_them_broken(gg: Greengrass) -> None:
    # Given robots running revision 1
    robots = names(unique("rollback"), 1)
    fleet = gg.fleet(robots)
    simulator = gg.simulate(fleet, robots=1)
    first = gg.deploy(fleet, "1.0.0")
    gg.execution(robots[0], first)
    simulator.stop()
    gg.simulators.remove(simulator)
    gg.simulate(fleet, robots=1, **{robots[0]: "fail:EnvironmentSetupError"})
    # When revision 2 fails on the robot with ROLLBACK
    second = gg.deploy(fleet, "2.0.0", deploymentPolicies={"failureHandlingPolicy": "ROLLBACK"})
    # Then the robot FAILED it, its component was ROLLED_BACK, and it still runs revision 1's components
    failed = gg.execution(robots[0], second)
    assert failed["coreDeviceExecutionStatus"] == "FAILED"
    assert "com.example.Nav: ROLLED_BACK" in failed["statusDetails"]["errorStack"]
    assert gg.installed(robots[0]) == {"com.example.Nav": ("1.0.0", "RUNNING")}
    # When revision 3 fails with DO_NOTHING
    third = gg.deploy(fleet, "3.0.0", deploymentPolicies={"failureHandlingPolicy": "DO_NOTHING"})
    # Then the robot keeps the failed revision's components, BROKEN
    assert gg.execution(robots[0], third)["coreDeviceExecutionStatus"] == "FAILED"
    assert gg.installed(robots[0]) == {"com.example.Nav": ("3.0.0", "BROKEN")}


def test_gg_cancel_stops_robots_and_allows_delete(gg: Greengrass) -> None:
    # Given a deployment whose robots never finish
    robots = names(unique("cancel"), 2)
    fleet = gg.fleet(robots)
    gg.simulate(fleet, robots=2, **{name: "silent" for name in robots})
    deployment_id = gg.deploy(fleet)
    gg.execution(robots[0], deployment_id, final=False)
    # When it is canceled
    assert gg.gg.cancel_deployment(deploymentId=deployment_id)["message"]
    # Then it is CANCELED, robots in flight end CANCELED, and it can be deleted
    assert gg.status(deployment_id, "CANCELED")
    for robot in robots:
        assert gg.execution(robot, deployment_id)["coreDeviceExecutionStatus"] == "CANCELED"
    gg.gg.delete_deployment(deploymentId=deployment_id)
    with pytest.raises(ClientError) as missing:
        gg.gg.get_deployment(deploymentId=deployment_id)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_gg_botocore_client_errors_and_components(gg: Greengrass) -> None:
    # Deleting an active deployment is a ConflictException (409)
    fleet = gg.fleet([])
    deployment_id = gg.deploy(fleet)
    with pytest.raises(ClientError) as conflict:
        gg.gg.delete_deployment(deploymentId=deployment_id)
    assert conflict.value.response["Error"]["Code"] in ("ConflictException",)
    # A bad target ARN is a ValidationException (400)
    with pytest.raises(ClientError) as invalid:
        gg.gg.create_deployment(targetArn="arn:aws:iot:us-east-1:1:robot/x")
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    # Component versions from an inline recipe, described and listed through the same client
    name = unique("com.example.Hello")
    recipe = {"RecipeFormatVersion": "2020-01-25", "ComponentName": name, "ComponentVersion": "1.0.0"}
    created = gg.gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
    assert created["componentName"] == name and created["status"]["componentState"] == "DEPLOYABLE"
    assert gg.gg.describe_component(arn=created["arn"])["componentVersion"] == "1.0.0"
    versions = gg.gg.list_component_versions(arn=created["arn"].rsplit(":versions:", 1)[0])
    assert [v["componentVersion"] for v in versions["componentVersions"]] == ["1.0.0"]
    got = gg.gg.get_component(arn=created["arn"])
    assert json.loads(got["recipe"])["ComponentName"] == name
    gg.gg.tag_resource(resourceArn=created["arn"], tags={"team": "nav"})
    assert gg.gg.list_tags_for_resource(resourceArn=created["arn"])["tags"] == {"team": "nav"}
    gg.gg.delete_component(arn=created["arn"])
    with pytest.raises(ClientError) as gone:
        gg.gg.describe_component(arn=created["arn"])
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_gg_client_token_paginators_and_core_devices_through_botocore(gg: Greengrass) -> None:
    # Given a fleet of two robots
    robots = names(unique("views"), 2)
    fleet = gg.fleet(robots)
    # When a deployment is created twice with the same client token
    token = unique("tok")
    first = gg.gg.create_deployment(targetArn=group_arn(fleet["name"]), clientToken=token)
    again = gg.gg.create_deployment(targetArn=group_arn(fleet["name"]), clientToken=token)
    # Then the same deployment comes back, and it is the only revision of the target
    assert again["deploymentId"] == first["deploymentId"]
    history = gg.gg.list_deployments(targetArn=group_arn(fleet["name"]), historyFilter="ALL")["deployments"]
    assert [d["revisionId"] for d in history] == ["1"]
    # And botocore's paginator walks every page of the deployments list
    paginator = gg.gg.get_paginator("list_deployments")
    pages = list(paginator.paginate(historyFilter="ALL", PaginationConfig={"PageSize": 1}))
    ids = [d["deploymentId"] for page in pages for d in page["deployments"]]
    assert first["deploymentId"] in ids and len(ids) == len(set(ids)) and len(pages) == len(ids)
    # And the robots are core devices of the group, HEALTHY
    devices = gg.gg.list_core_devices(thingGroupArn=group_arn(fleet["name"]))["coreDevices"]
    assert sorted(d["coreDeviceThingName"] for d in devices) == robots
    assert {d["status"] for d in devices} == {"HEALTHY"}
    assert gg.gg.get_core_device(coreDeviceThingName=robots[0])["architecture"] == "amd64"
