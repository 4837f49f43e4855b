"""Greengrass deployments executed by the real rollout machine in moto: exponential batches, the per-minute
cap, abort criteria, the in-progress timeout, component commands and continuous deployment."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from support.rollout_harness import HOLD, SILENT, fail_at

GROUP = "arn:aws:iot:us-east-1:123456789012:thinggroup/"


@pytest.fixture(autouse=True)
def _short_minutes(rollout: Any) -> None:
    # A batch lasts one (scaled) minute: 0.9 s, waited as 1 s by the machine.
    rollout.time_scale(0.015)


FINAL = ("COMPLETED", "FAILED", "CANCELED")


def _fleet(rollout: Any, count: int, name: str = "gg") -> dict:
    fleet = rollout.given.fleet(name)
    for index in range(count):
        rollout.given.robot(f"r{index:02d}", fleet=fleet)
    return fleet


def _deploy(rollout: Any, fleet: dict, **body: Any) -> str:
    body.setdefault("components", {"com.example.Nav": {"componentVersion": "1.0.0"}})
    response = rollout.api.request(
        "POST", "/greengrass/v2/deployments", {"targetArn": GROUP + fleet["name"], **body}
    )
    assert response.status == 201, response.json
    return response.json["deploymentId"]


def _get(rollout: Any, deployment_id: str) -> dict:
    return rollout.api.request("GET", f"/greengrass/v2/deployments/{deployment_id}").json


def _finish(rollout: Any, deployment_id: str) -> dict:
    # The rollout's execution ended too: a canceled deployment reads CANCELED before finalize stops robots.
    execution = {"arn": f"deployment/{deployment_id}"}
    rollout.pump_until(
        lambda: (
            _get(rollout, deployment_id)["deploymentStatus"] in FINAL
            and rollout.status(execution) != "RUNNING"
            and not rollout.robots.has_pending()
        ),
        "deployment to end",
    )
    return _get(rollout, deployment_id)


def _executions(rollout: Any, robot: str) -> dict[str, str]:
    response = rollout.api.request("GET", f"/greengrass/v2/coreDevices/{robot}/effectiveDeployments")
    return {d["deploymentId"]: d["coreDeviceExecutionStatus"] for d in response.json["effectiveDeployments"]}


def _rate(base: int, factor: float, cap: int | None = None) -> dict:
    config: dict[str, Any] = {
        "exponentialRate": {
            "baseRatePerMinute": base,
            "incrementFactor": factor,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 1},
        }
    }
    if cap:
        config["maximumPerMinute"] = cap
    return {"jobExecutionsRolloutConfig": config}


def _released_batches(deployment_id: str) -> list[list[str]]:
    """The robots of each batch, as the engine released them (its MEMBER rows)."""
    from fleetwave_service.engine.ports import get_ports

    store = get_ports().store
    waves = sorted(int(w["wave"]) for w in store.waves(deployment_id) if int(w.get("wave", 0)) >= 1)
    return [sorted(m["robotName"] for m in store.wave_members(deployment_id, n)) for n in waves]


def test_gg_rollout_releases_exponential_batches_capped_per_minute(rollout: Any) -> None:
    # Given 7 robots and a rate of 1 robot, x2 per batch, capped at 3 per minute
    fleet = _fleet(rollout, 7)
    # When the deployment runs and every robot succeeds
    config = _rate(1, 2.0, cap=3)
    # (notified criteria: the rate doubles after every batch, whatever the robots' speed)
    config["jobExecutionsRolloutConfig"]["exponentialRate"]["rateIncreaseCriteria"] = {
        "numberOfNotifiedThings": 1
    }
    deployment_id = _deploy(rollout, fleet, iotJobConfiguration=config)
    done = _finish(rollout, deployment_id)
    # Then it is COMPLETED, and the batches were 1, 2, 3 (capped), 1
    assert done["deploymentStatus"] == "COMPLETED"
    assert _released_batches(deployment_id) == [["r00"], ["r01", "r02"], ["r03", "r04", "r05"], ["r06"]]
    assert all(_executions(rollout, f"r{i:02d}") == {deployment_id: "SUCCEEDED"} for i in range(7))


def test_gg_rollout_abort_criteria_wait_for_min_executed_then_stop(rollout: Any) -> None:
    # Given 6 robots released one at a time; the first fails
    fleet = _fleet(rollout, 6)
    rollout.robots.behave("r00", fail_at("Validating", "EnvironmentSetupError"))
    criteria = [
        {
            "failureType": "FAILED",
            "action": "CANCEL",
            "thresholdPercentage": 30,
            "minNumberOfExecutedThings": 3,
        }
    ]
    # When abort criteria are 30% FAILED once 3 robots executed
    deployment_id = _deploy(
        rollout, fleet, iotJobConfiguration={**_rate(1, 1.0), "abortConfig": {"criteriaList": criteria}}
    )
    done = _finish(rollout, deployment_id)
    # Then the rollout went on until 3 executed (1 of 3 = 33% >= 30%) and then FAILED; r03.. never got it
    assert done["deploymentStatus"] == "FAILED"
    assert rollout.robots.commanded() == ["r00", "r01", "r02"]
    assert _executions(rollout, "r00") == {deployment_id: "FAILED"}
    assert _executions(rollout, "r03") == {deployment_id: "CANCELED"}


def test_gg_rollout_timed_out_failures_count_only_for_timed_out_criteria(rollout: Any) -> None:
    # Given two robots, the first silent, a one-minute in-progress timeout (scaled down)
    fleet = _fleet(rollout, 2)
    rollout.robots.behave("r00", SILENT)
    criteria = [
        {
            "failureType": "FAILED",
            "action": "CANCEL",
            "thresholdPercentage": 10,
            "minNumberOfExecutedThings": 1,
        }
    ]
    # When the deployment runs one robot per batch with a FAILED-only abort criterion
    deployment_id = _deploy(
        rollout,
        fleet,
        iotJobConfiguration={
            **_rate(1, 1.0),
            "timeoutConfig": {"inProgressTimeoutInMinutes": 1},
            "abortConfig": {"criteriaList": criteria},
        },
    )
    done = _finish(rollout, deployment_id)
    # Then the silent robot TIMED_OUT, which is not a FAILED execution: the rollout went on and completed
    assert _executions(rollout, "r00") == {deployment_id: "TIMED_OUT"}
    assert _executions(rollout, "r01") == {deployment_id: "SUCCEEDED"}
    assert done["deploymentStatus"] == "COMPLETED"


def test_gg_command_carries_components_recipes_policies_and_platform(rollout: Any) -> None:
    # Given a registered component whose recipe has a default configuration
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "com.example.Nav",
        "ComponentVersion": "1.0.0",
        "ComponentConfiguration": {"DefaultConfiguration": {"speed": 1}},
    }
    encoded = base64.b64encode(json.dumps(recipe).encode()).decode()
    assert (
        rollout.api.request("POST", "/greengrass/v2/createComponentVersion", {"inlineRecipe": encoded}).status
        == 201
    )
    fleet = _fleet(rollout, 1)
    # When it is deployed with a configuration update and DO_NOTHING
    deployment_id = _deploy(
        rollout,
        fleet,
        components={
            "com.example.Nav": {
                "componentVersion": "1.0.0",
                "configurationUpdate": {"merge": '{"speed": 2}'},
            },
            "aws.greengrass.Cli": {"componentVersion": "2.12.0"},
        },
        deploymentPolicies={"failureHandlingPolicy": "DO_NOTHING"},
    )
    _finish(rollout, deployment_id)
    # Then the robot's command holds the component map, the recipe's defaults and the policies
    sent = rollout.robots.channel.deployments_for("r00")[0]
    assert sent.jobId == deployment_id
    assert sent.failureHandlingPolicy == "DO_NOTHING"
    nav = sent.components["com.example.Nav"]
    assert nav.configurationUpdate == {"merge": '{"speed": 2}'}
    assert nav.recipe == {
        "ComponentName": "com.example.Nav",
        "ComponentVersion": "1.0.0",
        "ComponentDependencies": {},
        "Manifests": [],
        "ComponentConfiguration": {"DefaultConfiguration": {"speed": 1}},
    }
    assert sent.components["aws.greengrass.Cli"].recipe is None  # public components need no registry entry
    assert sent.platform == {"os": "linux", "architecture": "amd64"}
    assert sent.componentUpdatePolicy == {"action": "NOTIFY_COMPONENTS", "timeoutInSeconds": 60}


def test_gg_robot_joining_the_group_later_receives_the_current_deployment(rollout: Any) -> None:
    # Given a completed deployment for a group
    fleet = _fleet(rollout, 1)
    deployment_id = _deploy(rollout, fleet)
    assert _finish(rollout, deployment_id)["deploymentStatus"] == "COMPLETED"
    # When a robot is registered in the fleet (no Greengrass call)
    rollout.given.robot("late", fleet=fleet)
    rollout.pump_until(lambda: _executions(rollout, "late").get(deployment_id) == "SUCCEEDED", "late robot")
    # Then it received the deployment outside the waves and runs it
    assert rollout.robots.commanded().count("late") == 1
    installed = rollout.api.request("GET", "/greengrass/v2/coreDevices/late/installedComponents").json
    assert [(c["componentName"], c["lifecycleState"]) for c in installed["installedComponents"]] == [
        ("com.example.Nav", "RUNNING")
    ]


def test_gg_robot_joining_mid_rollout_keeps_deploying_after_the_rollout_completes(rollout: Any) -> None:
    # Given a rollout whose only robot is still working
    fleet = _fleet(rollout, 1)
    rollout.robots.behave("r00", HOLD)
    deployment_id = _deploy(rollout, fleet)
    rollout.pump_until(lambda: "r00" in rollout.robots.held, "r00 to receive its command")
    # When a robot joins meanwhile (it is dispatched outside the waves) and is still working when the
    # rollout's own robot finishes
    rollout.robots.behave("late", HOLD)
    rollout.given.robot("late", fleet=fleet)
    assert "late" in rollout.robots.held
    rollout.robots.finish("r00")
    assert _finish(rollout, deployment_id)["deploymentStatus"] == "COMPLETED"
    # Then the late robot was not told to abort, and its own result still counts
    assert _executions(rollout, "late") == {deployment_id: "IN_PROGRESS"}
    rollout.robots.finish("late")
    rollout.pump_until(lambda: _executions(rollout, "late") == {deployment_id: "SUCCEEDED"}, "late robot")
    assert "late" not in rollout.robots.commanded("abort")


def test_gg_thing_target_deploys_to_one_robot_outside_any_fleet(rollout: Any) -> None:
    # Given a robot in no fleet, and another robot in a fleet
    rollout.given.robot("solo")
    _fleet(rollout, 1)
    # When a deployment targets the solo robot's thing
    response = rollout.api.request(
        "POST",
        "/greengrass/v2/deployments",
        {
            "targetArn": "arn:aws:iot:us-east-1:123456789012:thing/solo",
            "components": {"com.example.Nav": {"componentVersion": "1.0.0"}},
        },
    )
    deployment_id = response.json["deploymentId"]
    # Then only that robot runs it, and the deployment completes
    assert _finish(rollout, deployment_id)["deploymentStatus"] == "COMPLETED"
    assert rollout.robots.commanded() == ["solo"]
    assert _executions(rollout, "solo") == {deployment_id: "COMPLETED"}  # a thing target's success
    assert _executions(rollout, "r00") == {}


def test_gg_batch_minute_ends_while_robots_keep_running_and_count_when_they_report(rollout: Any) -> None:
    # Given three robots released one per minute; the first is still working when its minute ends
    fleet = _fleet(rollout, 3)
    rollout.robots.behave("r00", HOLD)
    deployment_id = _deploy(rollout, fleet, iotJobConfiguration=_rate(1, 1.0))
    # When the next batches go out on the next minutes, and only then the first robot finishes
    rollout.pump_until(lambda: "r02" in rollout.robots.commanded(), "the third batch")
    assert ("finished", "r00") not in rollout.robots.timeline
    rollout.robots.finish("r00")
    done = _finish(rollout, deployment_id)
    # Then its success counts, and the deployment waited for it before completing
    assert done["deploymentStatus"] == "COMPLETED"
    assert _executions(rollout, "r00") == {deployment_id: "SUCCEEDED"}
    assert rollout.robots.commanded("abort") == []


def test_gg_rollout_notified_criteria_double_the_batches_up_to_the_cap(rollout: Any) -> None:
    # Given 16 robots, a rate of 2 per minute, x2 each time 2 more robots were notified, capped at 8
    fleet = _fleet(rollout, 16)
    config = {
        "jobExecutionsRolloutConfig": {
            "exponentialRate": {
                "baseRatePerMinute": 2,
                "incrementFactor": 2.0,
                "rateIncreaseCriteria": {"numberOfNotifiedThings": 2},
            },
            "maximumPerMinute": 8,
        }
    }
    # When the deployment runs
    deployment_id = _deploy(rollout, fleet, iotJobConfiguration=config)
    done = _finish(rollout, deployment_id)
    # Then the batches were 2, 4, 8 (the cap), then the 2 left, and every robot succeeded
    assert done["deploymentStatus"] == "COMPLETED"
    assert [len(batch) for batch in _released_batches(deployment_id)] == [2, 4, 8, 2]
    assert _released_batches(deployment_id)[0] == ["r00", "r01"]
    assert all(_executions(rollout, f"r{i:02d}") == {deployment_id: "SUCCEEDED"} for i in range(16))


def test_gg_rollout_succeeded_criteria_keep_the_rate_flat_while_robots_are_slow(rollout: Any) -> None:
    # Given 10 robots, a rate of 1 per minute, x2 once 2 robots succeeded; the first two robots are slow
    fleet = _fleet(rollout, 10)
    rollout.robots.behave("r00", HOLD)
    rollout.robots.behave("r01", HOLD)
    config = {
        "jobExecutionsRolloutConfig": {
            "exponentialRate": {
                "baseRatePerMinute": 1,
                "incrementFactor": 2.0,
                "rateIncreaseCriteria": {"numberOfSucceededThings": 2},
            }
        }
    }
    deployment_id = _deploy(rollout, fleet, iotJobConfiguration=config)
    # When a third minute passes while both are still running
    rollout.pump_until(lambda: "r02" in rollout.robots.commanded(), "the third batch")
    # Then the rate stayed at one robot per minute (nobody had succeeded when batches 2 and 3 were sized)
    assert _released_batches(deployment_id)[:3] == [["r00"], ["r01"], ["r02"]]

    # When the slow robots succeed
    rollout.robots.finish("r00")
    rollout.robots.finish("r01")
    done = _finish(rollout, deployment_id)
    # Then the rate doubled once enough robots had succeeded, and the deployment completed
    assert done["deploymentStatus"] == "COMPLETED"
    sizes = [len(batch) for batch in _released_batches(deployment_id)]
    assert sizes[:3] == [1, 1, 1] and sum(sizes) == 10
    assert max(sizes) >= 2
