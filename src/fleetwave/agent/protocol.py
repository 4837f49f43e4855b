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
from dataclasses import dataclass, field
from typing import Any, Protocol

from fleetwave_service.engine.messages import (
    AbortCommand,
    ComponentResult,
    DeploymentCommand,
    FailureCode,
    ProgressStep,
    RobotReportStatus,
    StatusReport,
    parse_command,
)
from pydantic import ValidationError

from fleetwave.agent.components import ConfigurationError, InstalledComponent, plan_components

logger = logging.getLogger("fleetwave.agent")

MAX_REASON = 1024


class StepFailed(Exception):
    """A step could not be completed; ``code`` is a FailureCode value, ``reason`` is for people."""

    def __init__(self, code: FailureCode | str, reason: str) -> None:
        super().__init__(reason)
        self.code = FailureCode(code)
        self.reason = reason


class Launcher(Protocol):
    """Does the work of each step for one robot. Raise StepFailed to fail the step."""

    async def run_step(self, step: ProgressStep, command: DeploymentCommand) -> None: ...

    async def stop(self) -> None:
        """Stop whatever the current command started (it was aborted, superseded or timed out)."""
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
    # Greengrass commands: the component set this run installs (known once Validating passed).
    planned: dict[str, InstalledComponent] | None = None


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
    ) -> None:
        self.robot_name = robot_name
        self._launcher = launcher
        self._publish = publish
        self._clock = clock
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
    def receive(self, payload: bytes | str) -> None:
        """Handle one payload from the command topic (retained or live)."""
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
                logger.debug("duplicate command ignored", extra=self._log(command))
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
        else:
            previous = None
        run = _Run(command=command)
        self._run = run
        run.task = self._spawn(self._supersede_then_execute(previous, run))

    def _abort(self, command: AbortCommand) -> None:
        self._aborted[command.jobId] = max(self._aborted.get(command.jobId, 0), command.attempt)
        run = self._run
        if run is None or run.finished or run.command.jobId != command.jobId:
            return
        if run.command.attempt > command.attempt or run.abort is not None:
            return  # meant for an earlier attempt than the one running, or already being aborted
        run.abort = command
        if run.task is not None:
            run.task.cancel()
        self._spawn(self._report_abort(run, command))

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
            logger.warning("unreadable command ignored", extra={"robot": self.robot_name})
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
        if previous is not None and previous.task is not None:
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
        now = self._clock()
        # A robot catching up after being offline finds a command whose deadline has passed: it still
        # deploys (that is how it comes back InSync), with the per-robot timeout as its budget.
        budget = command.deadline - now if command.deadline > now else command.timeoutSeconds
        try:
            async with asyncio.timeout(budget):
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
        except StepFailed as failure:
            self._finish(run, RobotReportStatus.FAILED, failure.code.value, failure.reason, reports)
            return
        except TimeoutError:
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
        logger.info(
            "deployment finished",
            extra={**self._log(run.command), "status": status.value, "failureCode": code},
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
        self._send(report)
        return report

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
