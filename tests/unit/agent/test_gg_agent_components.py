"""Greengrass components on the robot agent: configuration updates, the installed set, rollback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fleetwave_service.engine.messages import ComponentSpec, DeploymentCommand, FailureCode, StatusReport

from fleetwave.agent.components import ConfigurationError, apply_configuration_update
from fleetwave.agent.protocol import RobotAgent
from fleetwave.agent.simulated import Behavior, SimulatedLauncher

NOW = 1_700_000_000.0
DEFAULT = {"speed": 1, "map": {"name": "floor-1", "zoom": 2}, "debug": False}


def test_configuration_update_resets_before_it_merges() -> None:
    current = {"speed": 5, "map": {"name": "floor-9", "zoom": 7}, "extra": 1}
    update = {
        "reset": ["/map/zoom", "/extra"],
        "merge": json.dumps({"map": {"name": "floor-2"}, "debug": True}),
    }
    result = apply_configuration_update(current, DEFAULT, update)
    assert result == {"speed": 5, "map": {"name": "floor-2", "zoom": 2}, "debug": True}


def test_configuration_update_empty_pointer_resets_everything() -> None:
    assert apply_configuration_update({"speed": 9}, DEFAULT, {"reset": [""]}) == DEFAULT


@pytest.mark.parametrize("update", [{"merge": "{not json"}, {"merge": "[1, 2]"}, {"reset": ["no-slash"]}])
def test_configuration_update_rejects_what_it_cannot_apply(update: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        apply_configuration_update(None, DEFAULT, update)


def command(
    job: str, version: str, policy: str = "ROLLBACK", merge: str | None = None, at: float = NOW
) -> DeploymentCommand:
    update = {"merge": merge} if merge is not None else None
    return DeploymentCommand(
        jobId=job,
        attempt=1,
        components={
            "com.example.Nav": ComponentSpec(
                componentVersion=version,
                configurationUpdate=update,
                recipe={"ComponentConfiguration": {"DefaultConfiguration": DEFAULT}},  # fmt: skip
            )
        },
        failureHandlingPolicy=policy,
        timeoutSeconds=60,
        deadline=at + 60,
        issuedAt=at,
    )


async def run(
    agent: RobotAgent, launcher: SimulatedLauncher, cmd: DeploymentCommand, behavior: str = "ok"
) -> StatusReport:
    launcher.behavior = Behavior.parse(behavior)
    agent.receive(cmd.model_dump_json())
    await agent.idle()
    assert agent.outcome is not None
    return agent.outcome.reports[-1]


def test_agent_installs_components_and_rolls_back_or_keeps_a_failed_set() -> None:
    async def scenario() -> None:
        reports: list[StatusReport] = []
        launcher = SimulatedLauncher(Behavior("ok"), step_seconds=0)
        agent = RobotAgent("r1", launcher, reports.append, clock=lambda: NOW)
        # Given revision 1 succeeds with a merged configuration
        first = await run(agent, launcher, command("d1", "1.0.0", merge='{"speed": 2}'))
        assert first.status == "InSync"
        assert first.components["com.example.Nav"].status == "SUCCEEDED"
        assert agent.installed["com.example.Nav"].version == "1.0.0"
        assert agent.installed["com.example.Nav"].configuration["speed"] == 2
        # When revision 2 fails under ROLLBACK: the robot reports ROLLED_BACK and still runs 1.0.0
        second = await run(agent, launcher, command("d2", "2.0.0", at=NOW + 1), "fail:EnvironmentSetupError")
        assert second.status == "Failed"
        assert second.components["com.example.Nav"].status == "ROLLED_BACK"
        assert agent.installed["com.example.Nav"].version == "1.0.0"
        # When revision 3 fails under DO_NOTHING: FAILED, and the failed set stays
        third = await run(
            agent,
            launcher,
            command("d3", "3.0.0", "DO_NOTHING", at=NOW + 2),
            "fail:MissingRobotDeploymentResource",
        )
        assert third.components["com.example.Nav"].status == "FAILED"
        assert agent.installed["com.example.Nav"].version == "3.0.0"

    asyncio.run(scenario())


def test_agent_fails_a_bad_configuration_update_at_validating() -> None:
    async def scenario() -> None:
        reports: list[StatusReport] = []
        launcher = SimulatedLauncher(Behavior("ok"), step_seconds=0)
        agent = RobotAgent("r1", launcher, reports.append, clock=lambda: NOW)
        last = await run(agent, launcher, command("d1", "1.0.0", merge="[1]"))
        assert (last.status, last.step, last.failureCode) == (
            "Failed",
            "Validating",
            FailureCode.ENVIRONMENT_SETUP_ERROR,
        )
        assert "com.example.Nav" in (last.failureReason or "")
        assert agent.installed == {}

    asyncio.run(scenario())
