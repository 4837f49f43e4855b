"""The robot side of the protocol (docs/robot-protocol.md), independent of any transport.

A `RobotAgent` is fed every payload that arrives on its command topic and calls ``publish(report)`` for
every status report it sends. It decides what a command means for this robot:

- a deploy command for the job and attempt it already runs or ran (retained re-delivery, QoS 1
  duplicates) is ignored; an older command than the newest it accepted is ignored;
- a newer attempt, or another job issued later, stops the current run (silently: the service has moved
  on) and starts the new one;
- an abort of the job it is running stops the run and reports ``Failed/RobotDeploymentAborted``; an abort
  of anything else is ignored (it is what a robot that was offline during a cancel finds retained).

A run executes the planned steps in order through a `Launcher`, publishing one report per step with an
increasing ``seq``, then ``Finished/InSync`` or ``Failed`` with a failure code from the reference enum.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fleetwave_service.engine.messages import (
    AbortCommand,
    ComponentResult,
    DeploymentCommand,
    FailureCode,
    ProgressStep,
    RobotReportStatus,
    StatusReport,
    parse_command,
    robot_from_topic,
)
from pydantic import ValidationError

from fleetwave.agent.components import ConfigurationError, InstalledComponent, plan_components

if TYPE_CHECKING:
    from fleetwave.agent.state import StateStore

logger = logging.getLogger("fleetwave.agent")

MAX_REASON = 1024
# A deployment the agent was restarted in the middle of is started again, at most this many times: an
# application that takes the whole robot down with it must not keep the robot in a restart loop.
MAX_INTERRUPTIONS = 3


class StepFailed(Exception):
    """A step could not be completed; ``code`` is a FailureCode value, ``reason`` is for people."""

    def __init__(self, code: FailureCode | str, reason: str) -> None:
        super().__init__(reason)
        self.code = FailureCode(code)
        self.reason = reason


class Launcher(Protocol):
    """Does the work of each step for one robot. Raise StepFailed to fail the step.

    A launcher may also have ``async recover() -> Recovered | None``: called once when the agent starts,
    before any command, to put the robot back the way its state on disk says (``ProcessLauncher``).
    """

    async def run_step(self, step: ProgressStep, command: DeploymentCommand) -> None: ...

    async def stop(self) -> None:
        """Abandon the deployment of the last ``run_step`` (aborted, superseded or timed out): whatever it
        changed on the robot is undone (a real robot goes back to its last-known-good application)."""
        ...

    def expected_seconds(self, step: ProgressStep, command: DeploymentCommand) -> float:
        """A guess at how long a step takes, used for estimatedTimeRemainingSeconds before any step ran."""
        ...


def plan_steps(command: DeploymentCommand) -> list[ProgressStep]:
    """The work steps a command needs, in order (Finished is the terminal report, not a step)."""
    launch = command.launchConfig
    steps = [ProgressStep.VALIDATING]
    if command.downloadCondition is not None:
        steps.append(ProgressStep.EXECUTING_DOWNLOAD_CONDITION)
    steps.append(ProgressStep.DOWNLOADING_EXTRACTING)
    if launch is not None and launch.preLaunchFile:
        steps.append(ProgressStep.EXECUTING_PRE_LAUNCH)
    steps.append(ProgressStep.LAUNCHING)
    if launch is not None and launch.postLaunchFile:
        steps.append(ProgressStep.EXECUTING_POST_LAUNCH)
    return steps


Publish = Callable[[StatusReport], None]


@dataclass(frozen=True)
class Recovered:
    """What a launcher found on disk about the last deployment it worked on (`Launcher.recover`)."""

    job_id: str
    attempt: int
    phase: str  # "committed" | "failed" | anything else: it did not finish
    failure_code: str | None = None
    failure_reason: str | None = None


def time_budget(command: DeploymentCommand, now: float) -> float:
    """Seconds a run of ``command`` may take from ``now``: until its deadline, or, for a robot catching up
    after being offline (the deadline has passed), the per-robot timeout."""
    return command.deadline - now if command.deadline > now else command.timeoutSeconds


@dataclass
class _Run:
    command: DeploymentCommand
    task: asyncio.Task[None] | None = None
    seq: int = 0
    step: ProgressStep = ProgressStep.VALIDATING
    percent: float = 0.0
    finished: bool = False
    # Set when another command took over: a superseded run never reports again.
    superseded: bool = False
    abort: AbortCommand | None = None
    abort_task: asyncio.Task[None] | None = None
    interruptions: int = 0
    # Greengrass commands: the component set this run installs (known once Validating passed).
    planned: dict[str, InstalledComponent] | None = None
    terminal: dict[str, Any] | None = None


@dataclass
class AgentOutcome:
    """The last terminal report the agent sent (what a user would see for this robot)."""

    job_id: str
    attempt: int
    status: RobotReportStatus
    failure_code: str | None = None
    failure_reason: str | None = None
    reports: list[StatusReport] = field(default_factory=list)


class RobotAgent:
    """One robot's protocol state. Call `receive` on the event loop that runs the agent."""

    def __init__(
        self,
        robot_name: str,
        launcher: Launcher,
        publish: Publish,
        *,
        clock: Callable[[], float] = time.time,
        state: StateStore | None = None,
        thing_name: str | None = None,
    ) -> None:
        """``state``: where a real robot keeps what it accepted and ran (None: memory only, as simulated
        robots do). ``thing_name``: the robot's IoT thing name, which its topics carry (the robot name
        unless that is longer than IoT allows)."""
        self.robot_name = robot_name
        self.thing_name = thing_name or robot_name
        self._launcher = launcher
        self._publish = publish
        self._clock = clock
        self._state = state
        self._run: _Run | None = None
        # The newest deploy command accepted: (jobId, attempt, issuedAt).
        self._accepted: tuple[str, int, float] | None = None
        self._aborted: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.outcome: AgentOutcome | None = None
        # The Greengrass components the robot runs: replaced by a successful deployment; a failed one
        # restores it (ROLLBACK) or leaves the failed set in place (DO_NOTHING).
        self.installed: dict[str, InstalledComponent] = {}

    # --- inputs ------------------------------------------------------------------------------------
    def receive(self, payload: bytes | str, topic: str | None = None) -> None:
        """Handle one payload from the command topic (retained or live); ``topic`` when known."""
        if topic is not None and robot_from_topic(topic) != self.thing_name:
            logger.warning(
                "command for another robot ignored", extra={"robot": self.robot_name, "topic": topic}
            )
            return
        if not payload:
            return  # an empty retained payload only clears the topic
        try:
            command = parse_command(payload)
        except ValidationError as error:
            self._reject_unreadable(payload, error)
            return
        if isinstance(command, AbortCommand):
            self._abort(command)
        else:
            self._deploy(command)

    async def start(self) -> None:
        """Pick up where the robot was (call once, before the first `receive`).

        The launcher puts the robot back first (``recover``: adopt or relaunch its application). Then a
        deployment that was interrupted is finished: reported when the launcher had finished it, else run
        again from the start with its ``seq`` continuing (the service applies one outcome per attempt).
        """
        recover = getattr(self._launcher, "recover", None)
        recovered: Recovered | None = await recover() if recover is not None else None
        memory = self._state.section("agent") if self._state is not None else {}
        try:
            accepted = memory.get("accepted")
            if isinstance(accepted, list) and len(accepted) == 3:
                self._accepted = (str(accepted[0]), int(accepted[1]), float(accepted[2]))
            aborted = memory.get("aborted")
            if isinstance(aborted, dict):
                self._aborted = {str(job): int(attempt) for job, attempt in aborted.items()}
        except (TypeError, ValueError) as error:
            # Readable JSON with values that make no sense: forget them; the retained command runs again.
            logger.warning(
                "agent state unreadable; forgotten", extra={"robot": self.robot_name, "reason": str(error)}
            )
            self._accepted, self._aborted = None, {}
        self.installed = _installed_from(memory.get("installed"))
        saved = memory.get("run")
        if not isinstance(saved, dict) or saved.get("terminal"):
            return
        try:
            command = DeploymentCommand.model_validate(saved["command"])
            run = _Run(
                command=command,
                seq=int(saved.get("seq", 0)),
                step=ProgressStep(saved.get("step", ProgressStep.VALIDATING.value)),
                interruptions=int(saved.get("interruptions", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            logger.warning(
                "interrupted deployment unreadable; the retained command starts it again",
                extra={"robot": self.robot_name, "reason": str(error)[:300]},
            )
            self._accepted = None
            return
        self._run = run
        self.outcome = AgentOutcome(command.jobId, command.attempt, RobotReportStatus.DEPLOYING)
        key = (command.jobId, command.attempt)
        if recovered is not None and (recovered.job_id, recovered.attempt) == key:
            if recovered.phase == "committed":
                logger.info("interrupted deployment had finished; reporting it", extra=self._log(command))
                run.step, run.percent = ProgressStep.FINISHED, 100.0
                self._finish(run, RobotReportStatus.IN_SYNC, None, None, self.outcome.reports)
                return
            if recovered.phase == "failed":
                logger.info("interrupted deployment had failed; reporting it", extra=self._log(command))
                self._finish(
                    run,
                    RobotReportStatus.FAILED,
                    recovered.failure_code or FailureCode.ENVIRONMENT_SETUP_ERROR.value,
                    recovered.failure_reason,
                    self.outcome.reports,
                )
                return
        run.interruptions += 1
        if run.interruptions > MAX_INTERRUPTIONS:
            reason = (
                f"the agent was restarted {run.interruptions} times during this deployment "
                f"(at step {run.step}); giving up"
            )
            self._finish(
                run,
                RobotReportStatus.FAILED,
                FailureCode.ENVIRONMENT_SETUP_ERROR.value,
                reason,
                self.outcome.reports,
            )
            return
        logger.warning(
            "deployment interrupted by an agent restart; starting it again",
            extra={**self._log(command), "step": run.step.value, "interruptions": run.interruptions},
        )
        self._remember()
        run.task = self._spawn(self._execute(run))

    async def idle(self) -> None:
        """Wait until every run and abort this agent started has ended."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def shutdown(self) -> None:
        """Stop without reporting (the process is exiting; the retained command resumes it next time)."""
        tasks = list(self._tasks)
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._launcher.stop()

    @property
    def running(self) -> tuple[str, int] | None:
        run = self._run
        if run is None or run.finished:
            return None
        return run.command.jobId, run.command.attempt

    # --- decisions ---------------------------------------------------------------------------------
    def _deploy(self, command: DeploymentCommand) -> None:
        accepted = self._accepted
        if accepted is not None:
            job_id, attempt, issued_at = accepted
            if command.jobId == job_id and command.attempt <= attempt:
                logger.info("command already handled; ignored", extra=self._log(command))
                return
            if command.jobId != job_id and command.issuedAt < issued_at:
                logger.info("stale command ignored", extra=self._log(command))
                return
        if self._aborted.get(command.jobId, 0) >= command.attempt:
            logger.info("command for an aborted attempt ignored", extra=self._log(command))
            return
        self._accepted = (command.jobId, command.attempt, command.issuedAt)
        previous = self._run
        if previous is not None and previous.task is not None and not previous.task.done():
            # Cancel now, not in the new task: if that task is itself cancelled before it starts
            # (an abort in the same tick), the old run must still be stopped.
            previous.superseded = True
            previous.task.cancel()
        elif previous is None or previous.abort_task is None or previous.abort_task.done():
            previous = None
        run = _Run(command=command)
        self._run = run
        logger.info(
            "deployment accepted",
            extra={
                **self._log(command),
                "application": command.application,
                "version": command.applicationVersion,
            },
        )
        self._remember()
        run.task = self._spawn(self._supersede_then_execute(previous, run))

    def _abort(self, command: AbortCommand) -> None:
        self._aborted[command.jobId] = max(self._aborted.get(command.jobId, 0), command.attempt)
        self._remember()
        run = self._run
        if run is None or run.finished or run.command.jobId != command.jobId:
            return
        if run.command.attempt > command.attempt or run.abort is not None:
            return  # meant for an earlier attempt than the one running, or already being aborted
        logger.info("deployment aborted by the service", extra=self._log(command))
        run.abort = command
        if run.task is not None:
            run.task.cancel()
        run.abort_task = self._spawn(self._report_abort(run, command))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _reject_unreadable(self, payload: bytes | str, error: ValidationError) -> None:
        """Fail a command we cannot read, when it at least names its job, so the service need not wait."""
        try:
            raw = json.loads(payload)
            job_id, attempt = str(raw["jobId"]), int(raw["attempt"])
        except (ValueError, KeyError, TypeError):
            logger.warning(
                "unreadable command ignored",
                extra={"robot": self.robot_name, "reason": str(error.errors()[0].get("msg"))[:300]},
            )
            return
        if attempt < 1 or (self._accepted is not None and self._accepted[:2] == (job_id, attempt)):
            return
        version = raw.get("schemaVersion")
        if version is not None and version != "1":
            reason = f"unsupported command schemaVersion {version!r}; this agent reads version '1'"
        else:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            reason = f"command could not be read: {where}: {first.get('msg')}"
        self._accepted = (job_id, attempt, self._clock())
        self._remember()
        logger.warning(
            "command rejected", extra={"robot": self.robot_name, "jobId": job_id, "reason": reason}
        )
        report = StatusReport(
            jobId=job_id,
            attempt=attempt,
            seq=0,
            step=ProgressStep.VALIDATING,
            status=RobotReportStatus.FAILED,
            failureCode=FailureCode.ENVIRONMENT_SETUP_ERROR.value,
            failureReason=reason[:MAX_REASON],
            sentAt=self._clock(),
        )
        self._send(report)
        self.outcome = AgentOutcome(
            job_id, attempt, RobotReportStatus.FAILED, report.failureCode, report.failureReason, [report]
        )

    # --- a run -------------------------------------------------------------------------------------
    async def _supersede_then_execute(self, previous: _Run | None, run: _Run) -> None:
        if previous is not None and previous.abort_task is not None:
            # The abort of the previous run undoes what it changed first (launcher.stop()).
            await asyncio.gather(previous.abort_task, return_exceptions=True)
        elif previous is not None and previous.task is not None:
            await asyncio.gather(previous.task, return_exceptions=True)
            await self._launcher.stop()
        await self._execute(run)

    async def _execute(self, run: _Run) -> None:
        command = run.command
        steps = plan_steps(command)
        reports: list[StatusReport] = []
        self.outcome = AgentOutcome(
            command.jobId, command.attempt, RobotReportStatus.DEPLOYING, reports=reports
        )
        durations: list[float] = []
        # A robot catching up after being offline finds a command whose deadline has passed: it still
        # deploys (that is how it comes back InSync), with the per-robot timeout as its budget.
        budget = time_budget(command, self._clock())

        async def steps_in_order() -> None:
            for index, step in enumerate(steps):
                run.step = step
                run.percent = round(100.0 * index / len(steps), 1)
                eta = self._estimate(steps[index:], command, durations)
                reports.append(self._report(run, step, RobotReportStatus.DEPLOYING, eta=eta))
                started = time.monotonic()
                if step is ProgressStep.VALIDATING and command.components is not None:
                    run.planned = self._plan_components(command)
                await self._launcher.run_step(step, command)
                durations.append(time.monotonic() - started)

        try:
            # wait_for, not asyncio.timeout: the agent runs on Python 3.10 (ROS 2 Humble).
            await asyncio.wait_for(steps_in_order(), budget)
        except StepFailed as failure:
            self._finish(run, RobotReportStatus.FAILED, failure.code.value, failure.reason, reports)
            return
        except asyncio.TimeoutError:
            await self._launcher.stop()
            reason = (
                f"the deployment did not finish within its time budget ({budget:.0f} s) at step {run.step}"
            )
            self._finish(
                run, RobotReportStatus.FAILED, FailureCode.ROBOT_DEPLOYMENT_NO_RESPONSE.value, reason, reports
            )
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a launcher bug must still end in a definite report
            logger.exception("launcher error", extra=self._log(command))
            reason = f"agent error at step {run.step}: {type(error).__name__}: {error}"
            self._finish(
                run, RobotReportStatus.FAILED, FailureCode.ENVIRONMENT_SETUP_ERROR.value, reason, reports
            )
            return
        run.step = ProgressStep.FINISHED
        run.percent = 100.0
        self._finish(run, RobotReportStatus.IN_SYNC, None, None, reports)

    def _plan_components(self, command: DeploymentCommand) -> dict[str, InstalledComponent]:
        try:
            return plan_components(self.installed, command)
        except ConfigurationError as error:
            raise StepFailed(FailureCode.ENVIRONMENT_SETUP_ERROR, str(error)) from None

    def _settle_components(self, run: _Run, status: RobotReportStatus) -> None:
        if run.command.components is None or run.planned is None:
            return  # nothing was changed on the robot: the previous set still runs
        if status is RobotReportStatus.IN_SYNC or run.command.failureHandlingPolicy == "DO_NOTHING":
            self.installed = run.planned

    async def _report_abort(self, run: _Run, abort: AbortCommand) -> None:
        if run.task is not None:
            await asyncio.gather(run.task, return_exceptions=True)
        await self._launcher.stop()
        reason = abort.reason or "the service aborted this deployment"
        reports = self.outcome.reports if self.outcome is not None else []
        self._finish(
            run, RobotReportStatus.FAILED, FailureCode.ROBOT_DEPLOYMENT_ABORTED.value, reason, reports
        )

    def _finish(
        self,
        run: _Run,
        status: RobotReportStatus,
        code: str | None,
        reason: str | None,
        reports: list[StatusReport],
    ) -> None:
        if run.finished or run.superseded:
            return
        if run.abort is not None and code != FailureCode.ROBOT_DEPLOYMENT_ABORTED.value:
            return  # a launcher that swallowed the cancel must not report past the abort
        run.finished = True
        run.terminal = {"status": status.value, "failureCode": code}
        self._settle_components(run, status)
        report = self._report(
            run,
            run.step,
            status,
            eta=0 if status is RobotReportStatus.IN_SYNC else None,
            code=code,
            reason=reason,
        )
        reports.append(report)
        self.outcome = AgentOutcome(
            run.command.jobId, run.command.attempt, status, code, report.failureReason, reports
        )
        self._remember()
        logger.log(
            logging.INFO if status is RobotReportStatus.IN_SYNC else logging.WARNING,
            "deployment finished",
            extra={**self._log(run.command), "status": status.value, "failureCode": code, "reason": reason},
        )

    def _report(
        self,
        run: _Run,
        step: ProgressStep,
        status: RobotReportStatus,
        *,
        eta: int | None,
        code: str | None = None,
        reason: str | None = None,
    ) -> StatusReport:
        command = run.command
        report = StatusReport(
            jobId=command.jobId,
            attempt=command.attempt,
            seq=run.seq,
            step=step,
            status=status,
            percentDone=run.percent,
            estimatedTimeRemainingSeconds=eta,
            failureCode=code,
            failureReason=reason[:MAX_REASON] if reason else None,
            components=self._component_results(command, status, reason),
            sentAt=self._clock(),
        )
        run.seq += 1
        if status is RobotReportStatus.DEPLOYING:
            self._remember()  # the next seq survives a restart: the service only takes increasing ones
        logger.info(
            "report",
            extra={
                **self._log(command),
                "seq": report.seq,
                "step": step.value,
                "status": status.value,
                "percent": report.percentDone,
            },
        )
        self._send(report)
        return report

    def _remember(self) -> None:
        """Write what must survive a restart: the newest command accepted, aborts, the run and its seq."""
        if self._state is None:
            return
        run = self._run
        saved_run = None
        if run is not None:
            saved_run = {
                "command": run.command.model_dump(mode="json", exclude_none=True),
                "seq": run.seq,
                "step": run.step.value,
                "interruptions": run.interruptions,
                "terminal": run.terminal,
            }
        try:
            self._state.save(
                "agent",
                {
                    "accepted": list(self._accepted) if self._accepted is not None else None,
                    "aborted": dict(self._aborted),
                    "run": saved_run,
                    "installed": {name: asdict(component) for name, component in self.installed.items()},
                },
            )
        except OSError:
            # Not fatal for this deployment; after a restart it would run again (and report once more).
            logger.exception("agent state not saved", extra={"robot": self.robot_name})

    def _send(self, report: StatusReport) -> None:
        try:
            self._publish(report)
        except Exception:  # the transport retries QoS 1 itself; a lost report ends in the service's sweep
            logger.exception("status report not published", extra={"robot": self.robot_name})

    def _estimate(
        self, remaining: list[ProgressStep], command: DeploymentCommand, durations: list[float]
    ) -> int:
        if durations:
            seconds = sum(durations) / len(durations) * len(remaining)
        else:
            seconds = sum(self._launcher.expected_seconds(step, command) for step in remaining)
        return max(0, round(seconds))

    @staticmethod
    def _component_results(
        command: DeploymentCommand, status: RobotReportStatus, reason: str | None
    ) -> dict[str, ComponentResult] | None:
        if not command.components or status is RobotReportStatus.DEPLOYING:
            return None
        if status is RobotReportStatus.IN_SYNC:
            outcome = "SUCCEEDED"
        else:
            outcome = "ROLLED_BACK" if command.failureHandlingPolicy == "ROLLBACK" else "FAILED"
        return {
            name: ComponentResult(status=outcome, version=spec.componentVersion, reason=reason)
            for name, spec in command.components.items()
        }

    def _log(self, command: DeploymentCommand | AbortCommand) -> dict[str, object]:
        return {"robot": self.robot_name, "jobId": command.jobId, "attempt": command.attempt}


def _installed_from(saved: Any) -> dict[str, InstalledComponent]:
    """The Greengrass component set kept on disk ({} when absent or unreadable)."""
    if not isinstance(saved, dict):
        return {}
    installed = {}
    for name, entry in saved.items():
        try:
            installed[str(name)] = InstalledComponent(
                version=str(entry["version"]),
                configuration=dict(entry.get("configuration") or {}),
                run_with=entry.get("run_with"),
            )
        except (KeyError, TypeError, AttributeError):
            logger.warning("installed component unreadable; forgotten", extra={"component": name})
    return installed
