"""An agent restarted in the middle of things: what it reports, what it runs again, what it ignores."""

from __future__ import annotations

import asyncio
import logging

from fleetwave_service.engine.channels.port import encode_command
from fleetwave_service.engine.messages import (
    Bundle,
    DeploymentCommand,
    LaunchConfig,
    ProgressStep,
    StatusReport,
)

from fleetwave.agent.protocol import MAX_INTERRUPTIONS, Recovered, RobotAgent
from fleetwave.agent.state import StateStore

NOW = 1_700_000_000.0


def command(job: str = "deployment-aaaaaaaaaaaa", attempt: int = 1) -> DeploymentCommand:
    return DeploymentCommand(
        jobId=job,
        attempt=attempt,
        application="nav",
        applicationVersion="3",
        bundle=Bundle(url="https://bundles.example/nav.tar.gz", architecture="X86_64"),
        launchConfig=LaunchConfig(packageName="nav", launchFile="nav.launch"),
        timeoutSeconds=300,
        deadline=NOW + 3600,
        issuedAt=NOW,
    )


class Launcher:
    """Records the steps it runs; ``recovered`` is what its state on disk said."""

    def __init__(self, recovered: Recovered | None = None) -> None:
        self.recovered = recovered
        self.steps: list[ProgressStep] = []
        self.gate: asyncio.Event | None = None

    async def recover(self) -> Recovered | None:
        return self.recovered

    async def run_step(self, step, command) -> None:
        self.steps.append(step)
        if step is ProgressStep.DOWNLOADING_EXTRACTING and self.gate is not None:
            await self.gate.wait()

    async def stop(self) -> None:
        return None

    def expected_seconds(self, step, command) -> float:
        return 1.0


def agent_with(tmp_path, launcher, reports: list[StatusReport]) -> RobotAgent:
    state = StateStore(tmp_path, robot_name="robot-1").load()
    return RobotAgent("robot-1", launcher, reports.append, clock=lambda: NOW, state=state)


def interrupted_at_download(tmp_path) -> list[StatusReport]:
    """An agent that accepted a command and reported two steps, then died (its task just stops)."""
    reports: list[StatusReport] = []
    launcher = Launcher()
    launcher.gate = asyncio.Event()

    async def scenario() -> None:
        agent = agent_with(tmp_path, launcher, reports)
        await agent.start()
        agent.receive(encode_command(command()))
        while len(reports) < 2:
            await asyncio.sleep(0.01)
        # The process dies here: nothing of it runs on (no shutdown, no report).
        for task in list(agent._tasks):
            task.cancel()

    asyncio.run(scenario())
    return reports


def restart(tmp_path, recovered: Recovered | None) -> tuple[list[StatusReport], Launcher]:
    reports: list[StatusReport] = []
    launcher = Launcher(recovered)

    async def scenario() -> None:
        agent = agent_with(tmp_path, launcher, reports)
        await agent.start()
        # The broker hands the retained command over again
        agent.receive(encode_command(command()))
        await agent.idle()

    asyncio.run(asyncio.wait_for(scenario(), 30))
    return reports, launcher


def test_agent_restarted_after_its_launcher_committed_reports_in_sync_once_and_runs_nothing(tmp_path):
    before = interrupted_at_download(tmp_path)
    reports, launcher = restart(tmp_path, Recovered("deployment-aaaaaaaaaaaa", 1, "committed"))
    assert [r.status.value for r in reports] == ["InSync"]
    assert reports[0].seq == before[-1].seq + 1 and reports[0].step is ProgressStep.FINISHED
    assert launcher.steps == []  # the retained command was recognised, not run again


def test_agent_restarted_after_its_launcher_failed_reports_that_failure(tmp_path):
    interrupted_at_download(tmp_path)
    recovered = Recovered("deployment-aaaaaaaaaaaa", 1, "failed", "EtagMismatch", "the bundle has etag x")
    reports, launcher = restart(tmp_path, recovered)
    assert [(r.status.value, r.failureCode, r.failureReason) for r in reports] == [
        ("Failed", "EtagMismatch", "the bundle has etag x")
    ]
    assert launcher.steps == []


def test_agent_restarted_mid_deployment_runs_it_again_from_the_start_with_seq_going_on(tmp_path):
    before = interrupted_at_download(tmp_path)
    reports, launcher = restart(tmp_path, Recovered("deployment-aaaaaaaaaaaa", 1, "abandoned"))
    assert launcher.steps[0] is ProgressStep.VALIDATING and reports[-1].status.value == "InSync"
    assert [r.seq for r in reports] == list(range(before[-1].seq + 1, before[-1].seq + 1 + len(reports)))
    # Once finished, a further restart reports nothing and runs nothing
    again, launcher = restart(tmp_path, None)
    assert again == [] and launcher.steps == []


def test_agent_restarted_too_often_in_one_deployment_gives_up_with_a_reason(tmp_path):
    interrupted_at_download(tmp_path)
    for _ in range(MAX_INTERRUPTIONS):
        state = StateStore(tmp_path, robot_name="robot-1").load()
        agent_state = state.section("agent")
        agent_state["run"]["interruptions"] += 1
        state.save("agent", agent_state)
    reports, launcher = restart(tmp_path, None)
    assert reports[-1].status.value == "Failed" and reports[-1].failureCode == "EnvironmentSetupError"
    assert "restarted" in (reports[-1].failureReason or "") and launcher.steps == []


def test_agent_ignores_commands_for_another_robot_and_payloads_that_are_not_json(tmp_path, caplog):
    reports: list[StatusReport] = []
    launcher = Launcher()

    async def scenario() -> None:
        agent = agent_with(tmp_path, launcher, reports)
        await agent.start()
        agent.receive(encode_command(command()), "fleetwave/robots/robot-2/deployment")
        agent.receive(b"\x00not json{", "fleetwave/robots/robot-1/deployment")
        agent.receive(b'{"kind": "deploy", "jobId": 7', "fleetwave/robots/robot-1/deployment")
        await agent.idle()
        # and it still deploys what is meant for it
        agent.receive(encode_command(command()), "fleetwave/robots/robot-1/deployment")
        await agent.idle()

    with caplog.at_level(logging.WARNING, logger="fleetwave.agent"):
        asyncio.run(asyncio.wait_for(scenario(), 30))
    messages = [record.getMessage() for record in caplog.records]
    assert "command for another robot ignored" in messages
    assert messages.count("unreadable command ignored") == 2
    assert [r.jobId for r in reports if r.status.value != "Deploying"] == ["deployment-aaaaaaaaaaaa"]


def test_agent_with_nonsense_in_a_readable_state_file_forgets_it_and_deploys(tmp_path):
    state = StateStore(tmp_path, robot_name="robot-1").load()
    state.save(
        "agent", {"accepted": ["job", "not a number", None], "aborted": {"j": "x"}, "run": {"seq": "?"}}
    )
    reports, launcher = restart(tmp_path, None)
    assert reports[-1].status.value == "InSync" and launcher.steps[0] is ProgressStep.VALIDATING
