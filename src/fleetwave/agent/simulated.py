"""Simulated robots: the real `RobotAgent` driving a `SimulatedLauncher`, many of them on one event loop.

Behaviours (``fleetwave simulate --behavior ROBOT=B``):

- ``ok``: every step takes ``step_seconds`` (scaled), then the robot is InSync;
- ``fail:<FailureCode>``: the robot fails at the step that code belongs to (DownloadConditionFailed at
  ExecutingDownloadCondition; ResourceNotFound, ExtractingBundleFailure, EtagMismatch at
  DownloadingExtracting; PreLaunchFileFailure at ExecutingPreLaunch; PostLaunchFileFailure at
  ExecutingPostLaunch; MissingRobotDeploymentResource at Launching; any other code at Validating).
  When the command has no such step (no download condition, no pre-launch file...), it fails at the next
  step it does run, so a rehearsal always sees the failure it asked for;
- ``silent``: never answers, like a robot that is switched off;
- ``delay:<seconds>``: the whole deployment takes that long (scaled), then succeeds;
- ``fail-once:<FailureCode>`` / ``silent-once``: the robot fails (misses) the first deployment it is
  sent, and deploys later ones as ``ok`` does: a cause fixed in between, such as what RetryDeploymentJob
  is for. A retained command handed over again is the same deployment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fleetwave_service.engine.messages import (
    FAILURE_CODES,
    STEP_ORDER,
    DeploymentCommand,
    FailureCode,
    ProgressStep,
    StatusReport,
    parse_command,
    robot_from_topic,
    status_topic,
)
from pydantic import ValidationError

from fleetwave.agent.config import thing_name_of
from fleetwave.agent.protocol import RobotAgent, StepFailed, plan_steps

logger = logging.getLogger("fleetwave.simulate")

FAILURE_STEP: dict[FailureCode, ProgressStep] = {
    FailureCode.DOWNLOAD_CONDITION_FAILED: ProgressStep.EXECUTING_DOWNLOAD_CONDITION,
    FailureCode.RESOURCE_NOT_FOUND: ProgressStep.DOWNLOADING_EXTRACTING,
    FailureCode.EXTRACTING_BUNDLE_FAILURE: ProgressStep.DOWNLOADING_EXTRACTING,
    FailureCode.ETAG_MISMATCH: ProgressStep.DOWNLOADING_EXTRACTING,
    FailureCode.PRE_LAUNCH_FILE_FAILURE: ProgressStep.EXECUTING_PRE_LAUNCH,
    FailureCode.POST_LAUNCH_FILE_FAILURE: ProgressStep.EXECUTING_POST_LAUNCH,
    FailureCode.MISSING_ROBOT_DEPLOYMENT_RESOURCE: ProgressStep.LAUNCHING,
}

_REASONS: dict[FailureCode, str] = {
    FailureCode.DOWNLOAD_CONDITION_FAILED: "the download condition script exited with status 1",
    FailureCode.RESOURCE_NOT_FOUND: "the bundle URL answered 404 Not Found",
    FailureCode.EXTRACTING_BUNDLE_FAILURE: "the bundle is not a readable tar.gz or zip archive",
    FailureCode.ETAG_MISMATCH: "the downloaded bundle's etag does not match the one in the command",
    FailureCode.PRE_LAUNCH_FILE_FAILURE: "the pre-launch script exited with status 1",
    FailureCode.POST_LAUNCH_FILE_FAILURE: "the post-launch script exited with status 1",
    FailureCode.MISSING_ROBOT_DEPLOYMENT_RESOURCE: "the launch file is not in the bundle",
}

BEHAVIOR_HELP = "ok | silent | fail:<FailureCode> | delay:<seconds> | fail-once:<FailureCode> | silent-once"


def failure_step(code: FailureCode) -> ProgressStep:
    return FAILURE_STEP.get(code, ProgressStep.VALIDATING)


@dataclass(frozen=True)
class Behavior:
    kind: str  # "ok" | "silent" | "fail" | "delay"
    failure_code: FailureCode | None = None
    seconds: float = 0.0
    once: bool = False  # only the first deployment; ``ok`` afterwards

    @classmethod
    def parse(cls, text: str) -> Behavior:
        """Read ``ok``, ``silent``, ``fail:<FailureCode>``, ``delay:<seconds>``, ``fail-once:<FailureCode>``
        or ``silent-once``; ValueError otherwise."""
        name, _, argument = text.strip().partition(":")
        if name in ("ok", "silent") and not argument:
            return cls(name)
        if name == "silent-once" and not argument:
            return cls("silent", once=True)
        if name in ("fail", "fail-once"):
            if argument not in FAILURE_CODES:
                known = ", ".join(sorted(FAILURE_CODES))
                raise ValueError(f"unknown failure code {argument!r} in {text!r}; expected one of: {known}")
            return cls("fail", failure_code=FailureCode(argument), once=name == "fail-once")
        if name == "delay":
            try:
                seconds = float(argument)
            except ValueError:
                raise ValueError(f"delay needs a number of seconds, got {text!r}") from None
            if not seconds >= 0:
                raise ValueError(f"delay must be zero or more seconds, got {text!r}")
            return cls("delay", seconds=seconds)
        raise ValueError(f"unknown behaviour {text!r}; expected {BEHAVIOR_HELP}")

    def __str__(self) -> str:
        once = "-once" if self.once else ""
        if self.kind == "fail":
            return f"fail{once}:{self.failure_code}"
        if self.kind == "delay":
            return f"delay:{self.seconds:g}"
        return self.kind + once


class SimulatedLauncher:
    """Plays a behaviour at each step; ``time_scale`` multiplies every duration."""

    def __init__(
        self,
        behavior: Behavior,
        *,
        time_scale: float = 1.0,
        step_seconds: float = 0.05,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be greater than zero")
        self.behavior = behavior
        self._first: tuple[str, int] | None = None
        self._time_scale = time_scale
        self._step_seconds = step_seconds
        self._sleep = sleep

    async def run_step(self, step: ProgressStep, command: DeploymentCommand) -> None:
        behavior = self.behavior
        if behavior.once:
            # The first deployment plays the behaviour; any other one (another job or attempt) is ok.
            self._first = self._first or (command.jobId, command.attempt)
            if self._first != (command.jobId, command.attempt):
                behavior = Behavior("ok")
        if behavior.kind == "silent":
            await asyncio.Event().wait()
        code = behavior.failure_code
        if behavior.kind == "fail" and code is not None and step == self._failing_step(code, command):
            reason = _REASONS.get(code, f"simulated {code}")
            raise StepFailed(code, f"{reason} (simulated)")
        seconds = self.expected_seconds(step, command)
        if seconds > 0:
            await self._sleep(seconds)  # type: ignore[misc]

    async def stop(self) -> None:
        return None

    def expected_seconds(self, step: ProgressStep, command: DeploymentCommand) -> float:
        if self.behavior.kind == "delay":
            return self.behavior.seconds * self._time_scale / len(plan_steps(command))
        return self._step_seconds * self._time_scale

    @staticmethod
    def _failing_step(code: FailureCode, command: DeploymentCommand) -> ProgressStep:
        wanted = STEP_ORDER[failure_step(code).value]
        steps = plan_steps(command)
        for step in steps:
            if STEP_ORDER[step.value] >= wanted:
                return step
        return steps[-1]


@dataclass(frozen=True)
class RobotEvent:
    """One line of the simulator's output."""

    robot: str
    kind: str  # "joined" | "left" | "command" | "ignored" | "report"
    job_id: str | None = None
    attempt: int | None = None
    detail: str = ""
    report: StatusReport | None = None


class SimulatedFleet:
    """Many simulated robots behind one transport.

    ``publish(topic, payload)`` sends a status report; `deliver(topic, payload)` must be called (on this
    fleet's event loop) with every message of the command topics. The fleet remembers the latest command
    payload of every robot topic it sees, so a robot added later receives it exactly as it would receive a
    retained message on subscribe.
    """

    def __init__(
        self,
        publish: Callable[[str, bytes], None],
        *,
        default: Behavior | None = None,
        behaviors: Mapping[str, Behavior] | None = None,
        time_scale: float = 1.0,
        step_seconds: float = 0.05,
        on_event: Callable[[RobotEvent], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._publish = publish
        self._default = default or Behavior("ok")
        self._behaviors = dict(behaviors or {})
        self._time_scale = time_scale
        self._step_seconds = step_seconds
        self._on_event = on_event or (lambda event: None)
        self._clock = clock
        self._agents: dict[str, RobotAgent | None] = {}
        # Topics carry thing names (a robot name over 128 characters has a derived one): thing -> robot.
        self._robot_of_thing: dict[str, str] = {}
        self._latest: dict[str, bytes] = {}  # by thing name
        self._missed: dict[str, tuple[str | None, int | None]] = {}

    @property
    def robots(self) -> list[str]:
        return sorted(self._agents)

    @property
    def time_scale(self) -> float:
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        """Applies to robots added from now on (simulate learns the stack's scale before adding any)."""
        if value <= 0:
            raise ValueError("time_scale must be greater than zero")
        self._time_scale = value

    def behavior_of(self, robot: str) -> Behavior:
        return self._behaviors.get(robot, self._default)

    def agent(self, robot: str) -> RobotAgent | None:
        return self._agents.get(robot)

    def add_robot(self, robot: str) -> bool:
        """Start simulating ``robot``; returns False when it already was."""
        if robot in self._agents:
            return False
        behavior = self.behavior_of(robot)
        agent: RobotAgent | None = None
        if behavior.kind != "silent" or behavior.once:
            # A silent-once robot misses its first deployment here (``_misses``) and runs the others ok.
            played = Behavior("ok") if behavior.kind == "silent" else behavior
            launcher = SimulatedLauncher(played, time_scale=self._time_scale, step_seconds=self._step_seconds)
            agent = RobotAgent(
                robot, launcher, self._publisher(robot), clock=self._clock, thing_name=thing_name_of(robot)
            )
        self._agents[robot] = agent
        self._robot_of_thing[thing_name_of(robot)] = robot
        self._on_event(RobotEvent(robot, "joined", detail=str(behavior)))
        latest = self._latest.get(thing_name_of(robot))
        if latest is not None:
            self._hand_over(robot, agent, latest)
        return True

    async def remove_robot(self, robot: str) -> None:
        agent = self._agents.pop(robot, None)
        self._robot_of_thing.pop(thing_name_of(robot), None)
        if agent is not None:
            await agent.shutdown()
        self._on_event(RobotEvent(robot, "left"))

    def deliver(self, topic: str, payload: bytes) -> None:
        thing = robot_from_topic(topic)
        if thing is None:
            return
        if payload:
            self._latest[thing] = payload
        else:
            self._latest.pop(thing, None)
        robot = self._robot_of_thing.get(thing, thing)
        if robot in self._agents:
            self._hand_over(robot, self._agents[robot], payload)

    async def idle(self) -> None:
        """Wait until no simulated robot has work in progress."""
        for agent in list(self._agents.values()):
            if agent is not None:
                await agent.idle()

    async def shutdown(self) -> None:
        agents = [agent for agent in self._agents.values() if agent is not None]
        await asyncio.gather(*(agent.shutdown() for agent in agents), return_exceptions=True)

    def _hand_over(self, robot: str, agent: RobotAgent | None, payload: bytes) -> None:
        if not payload:
            return
        try:
            command = parse_command(payload)
            job_id, attempt, kind = command.jobId, command.attempt, command.kind
        except ValidationError:
            job_id, attempt, kind = None, None, "unreadable"
        if agent is None or self._misses(robot, job_id, attempt, kind):
            self._on_event(RobotEvent(robot, "ignored", job_id, attempt, "silent robot"))
            return
        self._on_event(RobotEvent(robot, "command", job_id, attempt, kind))
        agent.receive(payload)

    def _misses(self, robot: str, job_id: str | None, attempt: int | None, kind: str) -> bool:
        """A ``silent-once`` robot misses its first deployment (and that one again), not later ones."""
        behavior = self.behavior_of(robot)
        if not (behavior.kind == "silent" and behavior.once) or kind != "deploy":
            return False
        first = self._missed.setdefault(robot, (job_id, attempt))
        return first == (job_id, attempt)

    def _publisher(self, robot: str) -> Callable[[StatusReport], None]:
        topic = status_topic(thing_name_of(robot))

        def publish(report: StatusReport) -> None:
            self._publish(topic, report.model_dump_json(exclude_none=True).encode())
            self._on_event(RobotEvent(robot, "report", report.jobId, report.attempt, report=report))

        return publish
