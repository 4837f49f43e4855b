"""The committed sample messages (tests/samples/messages/) are the protocol contract.

Both sides read the same files: the service's models and parser, the robot agent, and the bridge that
plays the IoT rule. A sample that no longer validates, or that the code would write differently, fails.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from fleetwave_service.engine.messages import (
    FAILURE_CODES,
    AbortCommand,
    ComponentStatesReport,
    DeploymentCommand,
    HealthReport,
    LinkReply,
    LinkRequest,
    PresenceReport,
    StatusReport,
    parse_command,
    status_topic,
)

from fleetwave.agent.protocol import RobotAgent
from fleetwave.agent.simulated import Behavior, SimulatedLauncher
from fleetwave.local.bridge import rule_record

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "messages"
KINDS = {
    "deployment_command": DeploymentCommand,
    "abort_command": AbortCommand,
    "status_report": StatusReport,
    "status_rule_record": StatusReport,
    "health_report": HealthReport,
    "presence_report": PresenceReport,
    "link_request": LinkRequest,
    "link_reply": LinkReply,
    "component_states": ComponentStatesReport,
}


def kind_of(path: Path) -> type:
    return next(model for prefix, model in KINDS.items() if path.stem.startswith(prefix))


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.json"))


def test_samples_cover_every_message_kind():
    found = {kind_of(path) for path in sample_files()}
    assert found == {
        DeploymentCommand,
        AbortCommand,
        StatusReport,
        HealthReport,
        PresenceReport,
        LinkRequest,
        LinkReply,
        ComponentStatesReport,
    }
    assert {"deployment_command.json", "abort_command.json", "status_rule_record.json"} <= {
        p.name for p in sample_files()
    }


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_messages_sample_validates_and_round_trips_unchanged(path):
    raw = path.read_bytes()
    model = kind_of(path).model_validate_json(raw)
    written = json.loads(model.model_dump_json(exclude_none=True))
    expected = json.loads(raw)
    expected.pop("robotName", None)  # added by the IoT rule; not part of the robot's report
    assert written == expected
    assert written["schemaVersion"] == "1"


@pytest.mark.parametrize(
    "name", ["deployment_command.json", "deployment_command_components.json", "abort_command.json"]
)
def test_messages_command_samples_parse_on_the_command_topic(name):
    command = parse_command((SAMPLES / name).read_bytes())
    assert command.kind == ("abort" if name.startswith("abort") else "deploy")


@pytest.mark.parametrize("name", [p.name for p in sample_files() if p.stem.startswith("status")])
def test_messages_status_samples_use_reference_failure_codes(name):
    report = StatusReport.model_validate_json((SAMPLES / name).read_bytes())
    assert report.failureCode is None or report.failureCode in FAILURE_CODES


def test_messages_rule_record_sample_is_what_the_bridge_builds_for_robot_7():
    report = (SAMPLES / "status_report_failed.json").read_bytes()
    record = rule_record(status_topic("robot-7"), report)
    assert record == json.loads((SAMPLES / "status_rule_record.json").read_bytes())


@pytest.mark.parametrize("name", ["deployment_command.json", "deployment_command_components.json"])
def test_messages_agent_runs_the_sample_command_and_its_reports_parse_on_the_service_side(name):
    received: list[StatusReport] = []

    def publish(report: StatusReport) -> None:
        # What goes on the status topic, read back with the service's model
        received.append(StatusReport.model_validate_json(report.model_dump_json(exclude_none=True)))

    async def scenario():
        agent = RobotAgent("robot-7", SimulatedLauncher(Behavior("ok"), step_seconds=0), publish)
        agent.receive((SAMPLES / name).read_bytes())
        await agent.idle()
        # The retained sample abort for that job arrives after it finished: nothing more is reported
        agent.receive((SAMPLES / "abort_command.json").read_bytes())
        await agent.idle()

    asyncio.run(scenario())
    sample = parse_command((SAMPLES / name).read_bytes())
    assert {(r.jobId, r.attempt) for r in received} == {(sample.jobId, sample.attempt)}
    assert received[-1].status.value == "InSync"
    assert [r.seq for r in received] == list(range(len(received)))
