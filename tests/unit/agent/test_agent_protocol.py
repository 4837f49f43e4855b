"""The robot agent's protocol: what a robot reports for each command it receives (no network)."""

from __future__ import annotations

import asyncio
import json

import pytest
from fleetwave_service.engine.channels.port import encode_command
from fleetwave_service.engine.messages import (
    AbortCommand,
    Bundle,
    ComponentSpec,
    DeploymentCommand,
    DownloadCondition,
    LaunchConfig,
    ProgressStep,
    StatusReport,
)

from fleetwave.agent.protocol import RobotAgent, StepFailed, plan_steps
from fleetwave.agent.simulated import Behavior, SimulatedLauncher

NOW = 1_700_000_000.0
ALL_STEPS = [
    "Validating",
    "ExecutingDownloadCondition",
    "DownloadingExtracting",
    "ExecutingPreLaunch",
    "Launching",
    "ExecutingPostLaunch",
    "Finished",
]


class FakeClock:
    """Advances a millisecond per reading, so every report has its own sentAt."""

    def __init__(self, start: float = NOW) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


class GatedLauncher:
    """Completes every step at once except ``gate_step``, which waits until the test opens the gate."""

    def __init__(self, gate_step: ProgressStep = ProgressStep.LAUNCHING) -> None:
        self.gate_step = gate_step
        self.gate = asyncio.Event()
        self.reached = asyncio.Event()
        self.stops = 0

    async def run_step(self, step: ProgressStep, command: DeploymentCommand) -> None:
        if step == self.gate_step:
            self.reached.set()
            await self.gate.wait()

    async def stop(self) -> None:
        self.stops += 1

    def expected_seconds(self, step: ProgressStep, command: DeploymentCommand) -> float:
        return 2.0


def deploy(
    job: str = "deployment-aaaaaaaaaaaa",
    attempt: int = 1,
    *,
    full: bool = False,
    issued_at: float = NOW,
    deadline: float = NOW + 3600,
    components: bool = False,
    rollback: bool = False,
) -> DeploymentCommand:
    launch = LaunchConfig(
        packageName="hello_world",
        launchFile="hello.launch",
        preLaunchFile="pre.sh" if full else None,
        postLaunchFile="post.sh" if full else None,
        environmentVariables={"ROBOT_MODE": "demo"},
    )
    return DeploymentCommand(
        jobId=job,
        attempt=attempt,
        application="hello",
        applicationVersion="1",
        bundle=Bundle(url="https://bundles.example/hello.tar.gz", etag="abc", architecture="X86_64"),
        launchConfig=None if components else launch,
        downloadCondition=DownloadCondition(url="https://bundles.example/cond.sh") if full else None,
        components={"com.example.Hello": ComponentSpec(componentVersion="1.0.0")} if components else None,
        failureHandlingPolicy="ROLLBACK" if rollback else "DO_NOTHING",
        timeoutSeconds=300,
        deadline=deadline,
        issuedAt=issued_at,
    )


def abort(job: str = "deployment-aaaaaaaaaaaa", attempt: int = 1, reason: str = "") -> AbortCommand:
    return AbortCommand(jobId=job, attempt=attempt, reason=reason, issuedAt=NOW + 1)


class Robot:
    """An agent wired to a list of published reports, as the robot's status topic would see them."""

    def __init__(self, launcher, name: str = "robot-1") -> None:
        self.reports: list[StatusReport] = []
        self.clock = FakeClock()
        self.agent = RobotAgent(name, launcher, self._publish, clock=self.clock)

    def _publish(self, report: StatusReport) -> None:
        # Round-trip through JSON: what the service receives, not the in-memory object.
        self.reports.append(StatusReport.model_validate_json(report.model_dump_json(exclude_none=True)))

    def send(self, command: DeploymentCommand | AbortCommand) -> None:
        self.agent.receive(encode_command(command))

    def steps(self, job: str | None = None, attempt: int | None = None) -> list[str]:
        return [
            r.step.value
            for r in self.reports
            if (job is None or r.jobId == job) and (attempt is None or r.attempt == attempt)
        ]

    @property
    def last(self) -> StatusReport:
        return self.reports[-1]


def simulated(behavior: str) -> SimulatedLauncher:
    return SimulatedLauncher(Behavior.parse(behavior), step_seconds=0)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=30))


def test_agent_ok_reports_every_step_in_order_then_in_sync():
    async def scenario():
        # Given a robot that succeeds
        robot = Robot(simulated("ok"))
        # When it receives a command with a download condition, pre- and post-launch files
        robot.send(deploy(full=True))
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    # Then it reports every step in the reference order, then Finished and InSync
    assert robot.steps() == ALL_STEPS
    assert [r.status.value for r in robot.reports] == ["Deploying"] * 6 + ["InSync"]
    assert [r.seq for r in robot.reports] == list(range(7))
    percents = [r.percentDone for r in robot.reports]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    assert robot.last.estimatedTimeRemainingSeconds == 0
    assert robot.last.failureCode is None
    sent = [r.sentAt for r in robot.reports]
    assert sent == sorted(sent)


def test_agent_skips_steps_the_command_does_not_need():
    async def scenario():
        robot = Robot(simulated("ok"))
        robot.send(deploy(full=False))
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert robot.steps() == ["Validating", "DownloadingExtracting", "Launching", "Finished"]
    assert robot.last.status.value == "InSync"


@pytest.mark.parametrize(
    ("code", "failing_step"),
    [
        ("DownloadConditionFailed", "ExecutingDownloadCondition"),
        ("ResourceNotFound", "DownloadingExtracting"),
        ("ExtractingBundleFailure", "DownloadingExtracting"),
        ("EtagMismatch", "DownloadingExtracting"),
        ("PreLaunchFileFailure", "ExecutingPreLaunch"),
        ("MissingRobotDeploymentResource", "Launching"),
        ("PostLaunchFileFailure", "ExecutingPostLaunch"),
        ("BadPermissionError", "Validating"),
        ("EnvironmentSetupError", "Validating"),
    ],
)
def test_agent_fail_behaviour_fails_at_the_step_of_its_code(code, failing_step):
    async def scenario():
        robot = Robot(simulated(f"fail:{code}"))
        robot.send(deploy(full=True))
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    # Then the last report is Failed at that step with the code and a readable reason, and nothing follows
    assert robot.last.status.value == "Failed"
    assert robot.last.step.value == failing_step
    assert robot.last.failureCode == code
    assert robot.last.failureReason and "simulated" in robot.last.failureReason
    assert robot.steps()[-2] == failing_step  # the step was announced, then failed
    assert "Finished" not in robot.steps()
    assert robot.agent.outcome is not None and robot.agent.outcome.failure_code == code


def test_agent_fail_behaviour_without_its_step_fails_at_the_next_step_run():
    async def scenario():
        robot = Robot(simulated("fail:PreLaunchFileFailure"))
        robot.send(deploy(full=False))  # no pre-launch file in this command
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert (robot.last.step.value, robot.last.failureCode) == ("Launching", "PreLaunchFileFailure")


def test_agent_fail_behaviour_with_seconds_fails_once_that_long_has_passed():
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def scenario():
        # Given a robot that fails its pre-launch script 12 s into its deployment, at time scale 0.5
        launcher = SimulatedLauncher(
            Behavior.parse("fail:PreLaunchFileFailure:12"), time_scale=0.5, sleep=sleep
        )
        robot = Robot(launcher)
        robot.send(
            deploy(full=False)
        )  # Validating, DownloadingExtracting, then Launching stands for pre-launch
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    # Then its three steps up to the failure took 12 s x 0.5 between them, and it failed where its code says
    assert (robot.last.step.value, robot.last.failureCode) == ("Launching", "PreLaunchFileFailure")
    assert slept == [2.0, 2.0, 2.0]
    assert str(Behavior.parse("fail:PreLaunchFileFailure:12")) == "fail:PreLaunchFileFailure:12"
    with pytest.raises(ValueError, match="seconds"):
        Behavior.parse("fail:PreLaunchFileFailure:soon")


def test_agent_same_job_and_attempt_twice_runs_once():
    async def scenario():
        robot = Robot(simulated("ok"))
        command = deploy()
        robot.send(command)
        await robot.agent.idle()
        # When the broker re-delivers the retained command (reconnect) and a QoS 1 duplicate arrives
        robot.send(command)
        robot.send(command)
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert robot.steps().count("Finished") == 1
    assert [r.seq for r in robot.reports] == [0, 1, 2, 3]


def test_agent_newer_attempt_restarts_and_the_old_attempt_never_reports_again():
    async def scenario():
        launcher = GatedLauncher()
        robot = Robot(launcher)
        robot.send(deploy(attempt=1))
        await launcher.reached.wait()
        # When the service dispatches attempt 2 of the same job while attempt 1 is launching
        launcher.reached.clear()
        robot.send(deploy(attempt=2))
        await launcher.reached.wait()
        launcher.gate.set()
        await robot.agent.idle()
        return robot, launcher

    robot, launcher = run(scenario())
    assert robot.steps(attempt=1) == ["Validating", "DownloadingExtracting", "Launching"]
    assert robot.steps(attempt=2) == ["Validating", "DownloadingExtracting", "Launching", "Finished"]
    assert [r.seq for r in robot.reports if r.attempt == 2] == [0, 1, 2, 3]
    assert robot.last.attempt == 2 and robot.last.status.value == "InSync"
    assert launcher.stops == 1  # what attempt 1 started was stopped


def test_agent_newer_job_replaces_the_running_one_and_an_older_job_is_ignored():
    async def scenario():
        launcher = GatedLauncher()
        robot = Robot(launcher)
        robot.send(deploy("deployment-first0000000", issued_at=NOW))
        await launcher.reached.wait()
        robot.send(deploy("deployment-second000000", issued_at=NOW + 10))
        # A stale command for a job issued before the running one arrives late: ignored
        robot.send(deploy("deployment-stale0000000", issued_at=NOW - 10))
        launcher.gate.set()
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert robot.steps("deployment-second000000")[-1] == "Finished"
    assert "Finished" not in robot.steps("deployment-first0000000")
    assert robot.steps("deployment-stale0000000") == []


def test_agent_abort_of_the_running_job_reports_aborted_and_stops():
    async def scenario():
        launcher = GatedLauncher()
        robot = Robot(launcher)
        command = deploy()
        robot.send(command)
        await launcher.reached.wait()
        # When the job is canceled: the retained command becomes an abort
        robot.send(abort(reason="deployment job canceled by user"))
        await robot.agent.idle()
        # and a late duplicate of the deploy command must not start it again
        robot.send(command)
        await robot.agent.idle()
        return robot, launcher

    robot, launcher = run(scenario())
    assert robot.last.status.value == "Failed"
    assert robot.last.failureCode == "RobotDeploymentAborted"
    assert robot.last.failureReason == "deployment job canceled by user"
    assert robot.last.step.value == "Launching"
    assert robot.steps().count("Validating") == 1
    assert launcher.stops == 1
    assert robot.agent.running is None


def test_agent_abort_of_another_job_is_ignored():
    async def scenario():
        robot = Robot(simulated("ok"))
        robot.send(deploy("deployment-mine00000000"))
        await robot.agent.idle()
        # A robot that was offline during a cancel finds that job's abort retained
        robot.send(abort("deployment-other0000000"))
        robot.send(abort("deployment-mine00000000"))  # already finished: nothing to stop
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert robot.last.status.value == "InSync"
    assert robot.steps().count("Finished") == 1


def test_agent_reports_no_response_when_the_deadline_passes_mid_run():
    async def scenario():
        robot = Robot(SimulatedLauncher(Behavior.parse("delay:600")))
        # Given a command whose deadline is a few milliseconds away
        robot.send(deploy(deadline=robot.clock.now + 0.05))
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert robot.last.status.value == "Failed"
    assert robot.last.failureCode == "RobotDeploymentNoResponse"
    assert "time budget" in (robot.last.failureReason or "")


def test_agent_catching_up_after_the_deadline_still_deploys():
    async def scenario():
        robot = Robot(simulated("ok"))
        # A robot that was off during the job gets the retained command long after its deadline
        robot.send(deploy(deadline=NOW - 3600))
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert robot.last.status.value == "InSync"


def test_agent_unreadable_command_that_names_its_job_is_failed_at_validating():
    async def scenario():
        robot = Robot(simulated("ok"))
        payload = json.loads(encode_command(deploy()))
        del payload["timeoutSeconds"]
        robot.agent.receive(json.dumps(payload))
        newer = json.loads(encode_command(deploy(attempt=2)))
        newer["schemaVersion"] = "2"
        robot.agent.receive(json.dumps(newer))
        robot.agent.receive(b"not json at all")
        robot.agent.receive(b"")  # a cleared retained topic
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert [(r.attempt, r.step.value, r.status.value) for r in robot.reports] == [
        (1, "Validating", "Failed"),
        (2, "Validating", "Failed"),
    ]
    assert all(r.failureCode == "EnvironmentSetupError" for r in robot.reports)
    assert "timeoutSeconds" in (robot.reports[0].failureReason or "")
    assert "schemaVersion '2'" in (robot.reports[1].failureReason or "")


@pytest.mark.parametrize(
    ("behavior", "rollback", "expected"),
    [
        ("ok", False, "SUCCEEDED"),
        ("fail:ResourceNotFound", True, "ROLLED_BACK"),
        ("fail:ResourceNotFound", False, "FAILED"),
    ],
)
def test_agent_component_deployment_reports_per_component_results(behavior, rollback, expected):
    async def scenario():
        robot = Robot(simulated(behavior))
        robot.send(deploy(components=True, rollback=rollback))
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert robot.last.components is not None
    result = robot.last.components["com.example.Hello"]
    assert (result.status, result.version) == (expected, "1.0.0")
    assert all(r.components is None for r in robot.reports[:-1])


def test_agent_estimates_remaining_time_from_the_launcher_before_any_step_ran():
    async def scenario():
        launcher = GatedLauncher()
        robot = Robot(launcher)
        robot.send(deploy())
        await launcher.reached.wait()
        first = robot.reports[0]
        launcher.gate.set()
        await robot.agent.idle()
        return first

    first = run(scenario())
    # three work steps of 2 s each, as the launcher expects
    assert first.estimatedTimeRemainingSeconds == 6


def test_agent_launcher_error_still_ends_in_a_failed_report():
    class BrokenLauncher(GatedLauncher):
        async def run_step(self, step, command):
            if step == ProgressStep.DOWNLOADING_EXTRACTING:
                raise OSError("disk full")

    async def scenario():
        robot = Robot(BrokenLauncher())
        robot.send(deploy())
        await robot.agent.idle()
        return robot

    robot = run(scenario())
    assert robot.last.status.value == "Failed"
    assert robot.last.failureCode == "EnvironmentSetupError"
    assert "disk full" in (robot.last.failureReason or "")


def test_plan_steps_follows_the_reference_order():
    assert [s.value for s in plan_steps(deploy(full=True))] == ALL_STEPS[:-1]


def test_step_failed_rejects_codes_outside_the_reference_enum():
    with pytest.raises(ValueError):
        StepFailed("DiskOnFire", "no")
