"""`ProcessLauncher`: what a real robot does for each step, with files and processes (docs/robot-agent.md).

Every deployment lives in its own directory, ``<work dir>/deployments/<jobId>-<attempt>/``, beside the one
that runs, so the running application keeps running until the new one is ready:

- Validating: the command carries a bundle and a launch config; the new directory is created and writable.
- ExecutingDownloadCondition: download the condition script (etag checked), run it; exit 0 proceeds,
  anything else is ``DownloadConditionFailed``.
- DownloadingExtracting: download the bundle (``ResourceNotFound`` when the URL does not answer 200),
  check its etag (``EtagMismatch``), extract the tar/tar.gz/zip (``ExtractingBundleFailure``; members
  escaping the directory are refused). An expired link (the command waited retained for days) is
  replaced by a fresh one asked of the service (``links``, see `connection.RobotConnection`).
- ExecutingPreLaunch / ExecutingPostLaunch: run the script (a path inside the bundle, or absolute) with
  the launch environment; non-zero exit is ``PreLaunchFileFailure`` / ``PostLaunchFileFailure``.
- Launching: **the switch**. The running application is stopped and the new one started, in a process
  group of its own, its output appended to ``application.log`` in its deployment directory (rotated).
  A launch file that is not in the bundle is ``MissingRobotDeploymentResource``.

After the last step comes the **health window** (``health_window_seconds`` from launch, scaled by the time
scale, shortened to fit the deployment's time budget): if the new application exits, or the post-launch
script fails, inside it, the agent stops it, starts the **last-known-good** application again and the
deployment fails (``EnvironmentSetupError`` for an application that exits; the post-launch code for the
script). RoboMaker deployments always roll back; Greengrass deployments follow ``failureHandlingPolicy``
(DO_NOTHING keeps the failed version in place, under supervision). An application that passes its window
becomes the last-known-good, and from then on it is supervised (`supervisor.Supervisor`: restarted with
backoff, broken past the restart limit) and every change of its state is reported (``on_health``).

State on disk (`state.StateStore`, section ``launcher``): the current deployment and its phase
(installing, launched, committed, failed), the last-known-good deployment, which deployment should be
running and the identity of its process. When the agent starts (`recover`) it adopts that process if it
still runs, or starts it again from its directory (no download, no pre-launch), stops any other process
that carries this work directory's marker (``FLEETWAVE_AGENT_HOME`` in its environment: an orphan of a
crashed agent), and rolls back a deployment whose health window it did not see end. Deployment directories
other than the current, the last-known-good and the running one are pruned.

Scripts and the application see the command's ``environmentVariables`` plus FLEETWAVE_ROBOT_NAME,
FLEETWAVE_JOB_ID, FLEETWAVE_ATTEMPT, FLEETWAVE_BUNDLE_DIR, FLEETWAVE_APPLICATION,
FLEETWAVE_APPLICATION_VERSION, FLEETWAVE_PACKAGE_NAME, FLEETWAVE_LAUNCH_FILE and FLEETWAVE_AGENT_HOME.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fleetwave_service.engine.messages import (
    ApplicationState,
    Bundle,
    DeploymentCommand,
    DownloadCondition,
    FailureCode,
    HealthReport,
    LinkReply,
    ProgressStep,
)
from pydantic import ValidationError

from fleetwave.agent.downloads import download, extract, log_tail
from fleetwave.agent.greengrass import ComponentRunner, ComponentsListener
from fleetwave.agent.protocol import Recovered, StepFailed, plan_steps, time_budget
from fleetwave.agent.state import StateStore
from fleetwave.agent.supervisor import (
    ProcessIdentity,
    ProcessSpec,
    RestartPolicy,
    RotatingLog,
    Supervisor,
    identify,
    kill_group,
    marked_processes,
)

logger = logging.getLogger("fleetwave.agent.process")

DEFAULT_HEALTH_WINDOW_SECONDS = 10.0
MARKER_VARIABLE = "FLEETWAVE_AGENT_HOME"
APPLICATION_LOG = "application.log"
STRAY_KILL_WAIT_SECONDS = 10.0  # SIGKILL is not refusable; this only bounds a process stuck in the kernel
SCRIPTS_LOG = "scripts.log"

_MD5 = re.compile(r"^[0-9a-f]{32}$")

# Deployment phases on disk.
INSTALLING = "installing"
LAUNCHED = "launched"
COMMITTED = "committed"
FAILED = "failed"
ABANDONED = "abandoned"


class LinkSource(Protocol):
    async def fresh_links(self, command: DeploymentCommand) -> LinkReply:
        """Fresh presigned URLs for ``command`` (raises LinkError when the service gives none)."""
        ...


class LinkError(Exception):
    """The service could not be asked, or answered with an error."""


HealthListener = Callable[[HealthReport], None]


@dataclass
class _Deployment:
    command: DeploymentCommand
    phase: str = INSTALLING
    failure: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.command.jobId}-{self.command.attempt}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command.model_dump(mode="json", exclude_none=True),
            "phase": self.phase,
            "failure": self.failure,
        }

    @classmethod
    def from_dict(cls, data: Any) -> _Deployment | None:
        if not isinstance(data, dict):
            return None
        try:
            command = DeploymentCommand.model_validate(data["command"])
        except (KeyError, ValidationError):
            return None
        failure = data.get("failure") if isinstance(data.get("failure"), dict) else None
        return cls(command, str(data.get("phase") or INSTALLING), failure)

    def describe(self) -> str:
        command = self.command
        # An application ARN ends in robot-application/<name>/<created millis>: people know the name.
        parts = (command.application or "").split("/")
        name = (
            parts[-2] if len(parts) >= 3 and parts[0].endswith("robot-application") else command.application
        )
        return f"{name} version {command.applicationVersion} (job {command.jobId})"


@dataclass
class _Window:
    started: float  # monotonic time of the launch
    ends: float
    seconds: float


class ProcessLauncher:
    def __init__(
        self,
        work_root: str | Path,
        *,
        robot_name: str,
        launch_command: Sequence[str] | None = None,
        health_window_seconds: float = DEFAULT_HEALTH_WINDOW_SECONDS,
        restart_policy: RestartPolicy | None = None,
        time_scale: float = 1.0,
        http_timeout_seconds: float = 60.0,
        environment: Mapping[str, str] | None = None,
        state: StateStore | None = None,
        links: LinkSource | None = None,
        on_health: HealthListener | None = None,
        on_components: ComponentsListener | None = None,
        thing_name: str | None = None,
        log_max_bytes: int = 10 * 1024 * 1024,
        log_backups: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be greater than zero")
        self.work_root = Path(work_root)
        self.robot_name = robot_name
        self._launch_command = list(launch_command) if launch_command else None
        self._window_seconds = health_window_seconds * time_scale
        self._policy = restart_policy or RestartPolicy(time_scale=time_scale)
        self._http_timeout = http_timeout_seconds
        self._base_env = dict(os.environ if environment is None else environment)
        self._state = state
        self._links = links
        self._on_health = on_health or (lambda report: None)
        self._log_max_bytes = log_max_bytes
        self._log_backups = log_backups
        self._clock = clock
        self._home = str(self.work_root.resolve())
        self._current: _Deployment | None = None
        self._good: _Deployment | None = None
        self._app: Supervisor | None = None
        self._app_deployment: _Deployment | None = None
        self._window: _Window | None = None
        self._budget_end: float | None = None  # monotonic end of the current run's time budget
        # Greengrass deployments (commands with components) are the component runner's work.
        self.components = ComponentRunner(
            self.work_root,
            robot_name=robot_name,
            thing_name=thing_name or robot_name,
            marker=(MARKER_VARIABLE, self._home),
            restart_policy=self._policy,
            health_window_seconds=self._window_seconds,
            http_timeout_seconds=http_timeout_seconds,
            environment=self._base_env,
            state=state,
            fresh_artifacts=links.fresh_links if links is not None else None,
            on_components=on_components,
            clock=clock,
        )

    # --- the Launcher port -------------------------------------------------------------------------
    async def run_step(self, step: ProgressStep, command: DeploymentCommand) -> None:
        if command.components is not None:
            await self.components.run_step(step, command)
            return
        try:
            await self._run_step(step, command)
        except StepFailed as failure:
            raise StepFailed(failure.code, failure.reason + await self._after_failure(failure)) from None

    async def stop(self) -> None:
        """Abandon the current deployment: if it had switched, back to the last-known-good application."""
        await self.components.stop()
        current = self._current
        if current is None or current.phase not in (INSTALLING, LAUNCHED):
            return
        logger.info("deployment abandoned", extra=self._log(current.command, phase=current.phase))
        if current.phase == LAUNCHED:
            await self._roll_back(current, force=True)
        current.phase = ABANDONED
        self._window = None
        self._save()

    def expected_seconds(self, step: ProgressStep, command: DeploymentCommand) -> float:
        last = plan_steps(command)[-1]
        return 1.0 + (self._window_seconds if step is last else 0.0)

    async def recover(self) -> Recovered | None:
        """Put the robot back as the state on disk says (see the module docstring)."""
        saved = self._state.section("launcher") if self._state is not None else {}
        current = self._current = _Deployment.from_dict(saved.get("current"))
        good = self._good = _Deployment.from_dict(saved.get("lastKnownGood"))
        process = saved.get("process") if isinstance(saved.get("process"), dict) else {}
        identity = ProcessIdentity.from_dict(process)
        running = self._deployment(saved.get("running"))

        if current is not None and current.phase in (INSTALLING, LAUNCHED):
            # The agent died before the new version proved itself (or before it even switched): the robot
            # goes back to its last-known-good version, and the deployment will be run again.
            if running is current:
                logger.warning(
                    "deployment interrupted during its health window; rolling back",
                    extra=self._log(current.command),
                )
                if identity is not None and process.get("deployment") == current.key:
                    await self._stop_unproven(current, identity)
                running = good
            current.phase = ABANDONED
        if running is None:
            running = good  # the switch was cut short between stopping one version and starting the next

        adopted = None
        if running is not None and identity is not None and process.get("deployment") == running.key:
            with contextlib.suppress(StepFailed):  # its directory is gone: it cannot be supervised
                supervisor = self._supervisor(running)
                if supervisor.adopt(identity):
                    adopted = supervisor
        await self._stop_strays(adopted.identity.pgid if adopted and adopted.identity else None)

        if adopted is not None and running is not None:
            self._app, self._app_deployment = adopted, running
            adopted.supervised = True
            self._save()
            self._report_health(running, ApplicationState.RUNNING, {})
        elif running is not None:
            await self._relaunch(running)
        else:
            self._save()
        self._prune()
        components = await self.components.recover()
        if current is None or (components is not None and components[0] > current.command.issuedAt):
            # The newer of the two is the deployment the agent's own state may be waiting on.
            return components[1] if components is not None else None
        failure = current.failure or {}
        return Recovered(
            current.command.jobId,
            current.command.attempt,
            current.phase,
            failure.get("failureCode"),
            failure.get("failureReason"),
        )

    async def _stop_unproven(self, deployment: _Deployment, identity: ProcessIdentity) -> None:
        """Stop, gracefully, a new version a previous agent had launched but not committed."""
        with contextlib.suppress(StepFailed):
            supervisor = self._supervisor(deployment)
            if supervisor.adopt(identity):
                await supervisor.stop()

    @property
    def application_pid(self) -> int | None:
        """The running application's process id (None when nothing runs)."""
        app = self._app
        return app.identity.pid if app is not None and app.running and app.identity else None

    async def close(self) -> None:
        """Stop the running application and components (the agent is stopping; it starts them again when it
        starts)."""
        await self.components.close()
        app = self._app
        if app is not None:
            await app.stop()
            self._app = None
            # The state keeps saying what should run: the next agent start relaunches it.

    # --- steps ---------------------------------------------------------------------------------------
    async def _run_step(self, step: ProgressStep, command: DeploymentCommand) -> None:
        good = self._good
        if good is not None and good.key == _key(command) and good.phase == COMMITTED:
            # The robot runs this very deployment already (its agent state was lost, not its launcher's):
            # nothing to install, and the running application must not be touched.
            if step is ProgressStep.VALIDATING:
                logger.info("deployment already installed and running", extra=self._log(command))
                self._current, self._window = good, None
            return
        if step is ProgressStep.VALIDATING:
            await self._validate(command)
        elif step is ProgressStep.EXECUTING_DOWNLOAD_CONDITION:
            await self._download_condition(command)
        elif step is ProgressStep.DOWNLOADING_EXTRACTING:
            await self._download_and_extract(command)
        elif step is ProgressStep.EXECUTING_PRE_LAUNCH:
            script = command.launchConfig.preLaunchFile if command.launchConfig else None
            await self._run_script(command, script, FailureCode.PRE_LAUNCH_FILE_FAILURE)
        elif step is ProgressStep.LAUNCHING:
            await self._launch(command)
        elif step is ProgressStep.EXECUTING_POST_LAUNCH:
            await self._post_launch(command)
        if step is plan_steps(command)[-1] and self._window is not None:
            await self._health_window(command)

    async def _validate(self, command: DeploymentCommand) -> None:
        if command.bundle is None or command.launchConfig is None:
            raise StepFailed(
                FailureCode.ENVIRONMENT_SETUP_ERROR,
                "this agent runs robot applications: the command needs a bundle and a launchConfig",
            )
        deployment = _Deployment(command)
        self._budget_end = time.monotonic() + time_budget(command, self._clock())
        self._window = None
        if self._app_deployment is not None and self._app_deployment.key == deployment.key:
            raise StepFailed(
                FailureCode.ENVIRONMENT_SETUP_ERROR,
                f"deployment {deployment.key} is the one this robot runs; it is not installed again",
            )
        directory = self._dir(deployment.key)
        try:
            if directory.exists():
                shutil.rmtree(directory)
            directory.mkdir(parents=True)
            probe = directory / ".writable"
            probe.write_bytes(b"")
            probe.unlink()
        except PermissionError as error:
            raise StepFailed(
                FailureCode.BAD_PERMISSION_ERROR, f"cannot write to work directory {directory}: {error}"
            ) from None
        except OSError as error:
            raise StepFailed(
                FailureCode.ENVIRONMENT_SETUP_ERROR, f"cannot prepare work directory {directory}: {error}"
            ) from None
        self._current = deployment
        self._save()

    async def _download_condition(self, command: DeploymentCommand) -> None:
        condition = command.downloadCondition
        assert condition is not None
        target = self._dir(_key(command)) / "download-condition.sh"
        await self._download(
            command, "downloadCondition", target, condition.etag, what="download condition file"
        )
        code, tail = await self._run(
            command,
            ["/bin/sh", str(target)],
            cwd=target.parent,
            failure=FailureCode.DOWNLOAD_CONDITION_FAILED,
        )
        if code != 0:
            raise StepFailed(
                FailureCode.DOWNLOAD_CONDITION_FAILED,
                f"the download condition script exited with status {code}{tail}",
            )

    async def _download_and_extract(self, command: DeploymentCommand) -> None:
        bundle = command.bundle
        assert bundle is not None
        directory = self._dir(_key(command))
        archive = directory / "bundle.download"
        await self._download(command, "bundle", archive, bundle.etag, what="bundle")
        partial = directory / "bundle.partial"
        await asyncio.to_thread(extract, archive, partial)
        os.replace(partial, directory / "bundle")
        archive.unlink()  # the extracted tree is what relaunches use; the archive would double the space

    async def _run_script(self, command: DeploymentCommand, script: str | None, code: FailureCode) -> None:
        assert script is not None
        what = "pre-launch" if code is FailureCode.PRE_LAUNCH_FILE_FAILURE else "post-launch"
        path = self._bundle_path(command, script)
        if not path.is_file():
            raise StepFailed(code, f"{what} file not found: {script}")
        status, tail = await self._run(
            command, _interpreted(path), cwd=self._bundle_dir(command), failure=code
        )
        if status != 0:
            raise StepFailed(code, f"the {what} script {script} exited with status {status}{tail}")

    async def _launch(self, command: DeploymentCommand) -> None:
        deployment = self._current
        assert deployment is not None and deployment.command is command
        argv = self._argv(command)
        # The switch: the old version ran until now, while the new one downloaded and ran its pre-launch.
        await self._stop_app()
        supervisor = self._supervisor(deployment)
        deployment.phase = LAUNCHED  # from here on, a failure or an abort rolls back
        self._app = supervisor  # before it starts: an abort during the start still stops it
        try:
            await supervisor.start()
        except OSError as error:
            self._app = None
            raise StepFailed(
                FailureCode.MISSING_ROBOT_DEPLOYMENT_RESOURCE, f"cannot start {argv[0]}: {error}"
            ) from None
        self._app_deployment = deployment
        started = supervisor.started_at or time.monotonic()
        seconds = self._window_seconds
        ends = started + seconds
        if self._budget_end is not None:
            # Leave the end of the time budget for the final report: a window the budget cannot hold is
            # shortened rather than turning a healthy robot into RobotDeploymentNoResponse.
            budget_left = self._budget_end - started
            latest = started + max(0.0, budget_left - min(5.0, 0.2 * budget_left))
            if latest < ends:
                logger.warning(
                    "health window shortened to fit the deployment's time budget",
                    extra=self._log(command, windowSeconds=round(latest - started, 2)),
                )
                ends = latest
        self._window = _Window(started, ends, seconds)
        self._save()

    async def _post_launch(self, command: DeploymentCommand) -> None:
        script = command.launchConfig.postLaunchFile if command.launchConfig else None
        app = self._app
        assert app is not None
        script_task = asyncio.ensure_future(
            self._run_script(command, script, FailureCode.POST_LAUNCH_FILE_FAILURE)
        )
        exit_task = asyncio.ensure_future(app.wait_exit())
        try:
            await asyncio.wait({script_task, exit_task}, return_when=asyncio.FIRST_COMPLETED)
            if exit_task.done():
                raise self._exited_in_window(command, exit_task.result(), "while its post-launch script ran")
            script_task.result()  # raises the script's StepFailed
        finally:
            for task in (script_task, exit_task):
                if not task.done():
                    task.cancel()
            await asyncio.gather(script_task, exit_task, return_exceptions=True)

    async def _health_window(self, command: DeploymentCommand) -> None:
        window, app = self._window, self._app
        assert window is not None and app is not None
        remaining = window.ends - time.monotonic()
        if not app.exited().is_set() and remaining > 0:
            logger.info("health window", extra=self._log(command, seconds=round(remaining, 2)))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(app.exited().wait(), remaining)
        if app.exited().is_set():
            raise self._exited_in_window(command, app.last_exit, "")
        self._commit()

    def _exited_in_window(self, command: DeploymentCommand, code: int | None, when: str) -> StepFailed:
        window = self._window
        lived = time.monotonic() - window.started if window is not None else 0.0
        seconds = f"{window.ends - window.started:g}" if window is not None else "?"
        status = f"status {code}" if code is not None else "an unknown status"
        log = self._dir(_key(command)) / APPLICATION_LOG
        return StepFailed(
            FailureCode.ENVIRONMENT_SETUP_ERROR,
            f"the application exited with {status} {lived:.1f} s after launch{' ' + when if when else ''}, "
            f"inside its {seconds} s health window{log_tail(log)}",
        )

    def _commit(self) -> None:
        current, app = self._current, self._app
        assert current is not None and app is not None
        current.phase = COMMITTED
        self._good = current
        self._window = None
        app.supervised = True
        self._save()
        logger.info("deployment committed: last-known-good", extra=self._log(current.command))
        self._prune()
        self._report_health(current, ApplicationState.RUNNING, {"restarts": app.restarts})

    async def _after_failure(self, failure: StepFailed) -> str:
        """Settle a failed step: record it, roll back when the switch had happened; text for the reason."""
        current = self._current
        if current is None or current.phase not in (INSTALLING, LAUNCHED):
            return ""
        suffix = ""
        if current.phase == LAUNCHED:
            suffix = await self._roll_back(current)
        current.phase = FAILED
        current.failure = {
            "failureCode": failure.code.value,
            "failureReason": (failure.reason + suffix)[:1024],
        }
        self._window = None
        self._save()
        self._prune()
        if self._app is None or not self._app.running:
            # Nothing runs on this robot now (a first deployment failed, or one run again after the state
            # was lost): the service must not go on showing it in sync with anything.
            reason = current.failure["failureReason"]
            self._report_health(current, ApplicationState.STOPPED, {"reason": reason})
        return suffix

    async def _roll_back(self, failed: _Deployment, *, force: bool = False) -> str:
        """Stop the failed version and start the last-known-good one; what runs now, for the reason."""
        command = failed.command
        if not force and command.components is not None and command.failureHandlingPolicy == "DO_NOTHING":
            app = self._app
            if app is not None and self._app_deployment is failed:
                app.supervised = True  # it stays, as the deployment asked; supervision takes over
                if app.exited().is_set():
                    app.restarts = 0
                    with contextlib.suppress(OSError):
                        await app.start()
            return "; failureHandlingPolicy DO_NOTHING: the failed version stays in place"
        if self._app is not None and (self._app_deployment is None or self._app_deployment is failed):
            await self._stop_app()  # None: it was still starting when the deployment was abandoned
        good = self._good
        if good is None or good.key == failed.key:
            return "; no earlier version to roll back to: no application runs"
        if await self._relaunch(good):
            logger.warning("rolled back to the last-known-good version", extra=self._log(good.command))
            return f"; rolled back to {good.describe()}"
        return f"; the last-known-good {good.describe()} could not be started again"

    # --- the application -------------------------------------------------------------------------
    def _supervisor(self, deployment: _Deployment) -> Supervisor:
        command = deployment.command
        directory = self._dir(deployment.key)
        log = RotatingLog(directory / APPLICATION_LOG, self._log_max_bytes, self._log_backups)

        def started(identity: ProcessIdentity) -> None:
            self._app_deployment = deployment
            self._save(process={**identity.to_dict(), "deployment": deployment.key})

        def changed(state: str, detail: dict[str, Any]) -> None:
            if self._app_deployment is deployment and deployment.phase not in (LAUNCHED, INSTALLING):
                self._report_health(deployment, ApplicationState(state), detail)

        return Supervisor(
            deployment.key,
            ProcessSpec(self._argv(command), self._bundle_dir(command), self._env(command), log.path),
            self._policy,
            on_started=started,
            on_state=changed,
            log=log,
            context=self._log(command),
        )

    async def _relaunch(self, deployment: _Deployment) -> bool:
        """Start a deployment's application from its directory (no download, no pre-launch)."""
        try:
            supervisor = self._supervisor(deployment)
            await supervisor.start()
        except (StepFailed, OSError) as error:
            reason = error.reason if isinstance(error, StepFailed) else f"cannot start it: {error}"
            logger.error("application cannot be started", extra=self._log(deployment.command, reason=reason))
            self._app, self._app_deployment = None, deployment
            self._save()
            self._report_health(deployment, ApplicationState.BROKEN, {"reason": reason})
            return False
        supervisor.supervised = True
        self._app, self._app_deployment = supervisor, deployment
        self._save()
        return True

    async def _stop_app(self) -> None:
        app, self._app = self._app, None
        self._app_deployment = None
        if app is not None:
            await app.stop()
        self._save()

    async def _stop_strays(self, keep_pgid: int | None) -> None:
        """Kill every process of this work directory that is not the adopted application's group, and wait
        until they are gone: whatever starts next never overlaps with them."""
        own = {os.getpid(), os.getpgrp()}
        killed = []
        for pid in marked_processes(MARKER_VARIABLE, self._home):
            with contextlib.suppress(ProcessLookupError):
                pgid = os.getpgid(pid)
                if pgid == keep_pgid or pid in own or pgid in own:
                    continue
                logger.warning(
                    "orphaned process of a previous agent stopped", extra={"pid": pid, "pgid": pgid}
                )
                kill_group(pgid, signal.SIGKILL)
                killed.append(pid)
        deadline = time.monotonic() + STRAY_KILL_WAIT_SECONDS
        while any(identify(pid) is not None for pid in killed) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def _report_health(
        self, deployment: _Deployment, state: ApplicationState, detail: Mapping[str, Any]
    ) -> None:
        command = deployment.command
        reason = detail.get("reason")
        report = HealthReport(
            state=state,
            jobId=command.jobId,
            attempt=command.attempt,
            application=command.application,
            applicationVersion=command.applicationVersion,
            restartCount=int(detail.get("restarts") or 0),
            exitCode=detail.get("exitCode"),
            reason=str(reason)[:1024] if reason else None,
            sentAt=self._clock(),
        )
        logger.info(
            "application health",
            extra=self._log(
                command, state=state.value, restarts=report.restartCount, exitCode=report.exitCode
            ),
        )
        try:
            self._on_health(report)
        except Exception:
            logger.exception("health report not published", extra={"robot": self.robot_name})

    # --- state on disk ------------------------------------------------------------------------------
    def _save(self, *, process: dict[str, Any] | None = None) -> None:
        if self._state is None:
            return
        previous = self._state.section("launcher").get("process")
        running = self._app_deployment
        if process is None:
            # Keep the recorded identity while it is the running deployment's process.
            keep = (
                isinstance(previous, dict)
                and running is not None
                and previous.get("deployment") == running.key
            )
            process = previous if keep else None
        section = {
            "current": self._current.to_dict() if self._current else None,
            "lastKnownGood": self._good.to_dict() if self._good else None,
            "running": running.key if running is not None else None,
            "process": process,
        }
        try:
            self._state.save("launcher", section)
        except OSError:
            logger.exception("launcher state not saved", extra={"robot": self.robot_name})

    def _deployment(self, key: Any) -> _Deployment | None:
        for deployment in (self._current, self._good):
            if deployment is not None and deployment.key == key:
                return deployment
        return None

    def _prune(self) -> None:
        keep = {d.key for d in (self._current, self._good, self._app_deployment) if d is not None}
        root = self.work_root / "deployments"
        if not root.is_dir():
            return
        for directory in root.iterdir():
            if directory.name not in keep:
                shutil.rmtree(directory, ignore_errors=True)
                logger.info(
                    "old deployment directory pruned", extra={"robot": self.robot_name, "dir": directory.name}
                )

    # --- helpers -------------------------------------------------------------------------------------
    def _dir(self, key: str) -> Path:
        return self.work_root / "deployments" / key

    def _bundle_dir(self, command: DeploymentCommand) -> Path:
        return self._dir(_key(command)) / "bundle"

    def _bundle_path(self, command: DeploymentCommand, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self._bundle_dir(command) / path

    def _argv(self, command: DeploymentCommand) -> list[str]:
        launch = command.launchConfig
        assert launch is not None
        bundle_dir = self._bundle_dir(command)
        if not bundle_dir.is_dir():
            raise StepFailed(
                FailureCode.MISSING_ROBOT_DEPLOYMENT_RESOURCE, f"the bundle directory {bundle_dir} is missing"
            )
        launch_path = _find_launch_file(bundle_dir, launch.packageName, launch.launchFile)
        if self._launch_command is None:
            if launch_path is None:
                raise StepFailed(
                    FailureCode.MISSING_ROBOT_DEPLOYMENT_RESOURCE,
                    f"launch file {launch.launchFile} of package {launch.packageName} is not in the bundle",
                )
            return _interpreted(launch_path)
        values = {
            "package": launch.packageName,
            "launch_file": launch.launchFile,
            "launch_path": str(launch_path or ""),
            "bundle_dir": str(bundle_dir),
        }
        return [part.format(**values) for part in self._launch_command]

    def _env(self, command: DeploymentCommand) -> dict[str, str]:
        launch = command.launchConfig
        env = dict(self._base_env)
        if launch is not None:
            env.update(launch.environmentVariables)
        env.update(
            {
                "FLEETWAVE_ROBOT_NAME": self.robot_name,
                "FLEETWAVE_JOB_ID": command.jobId,
                "FLEETWAVE_ATTEMPT": str(command.attempt),
                "FLEETWAVE_BUNDLE_DIR": str(self._bundle_dir(command)),
                "FLEETWAVE_APPLICATION": command.application or "",
                "FLEETWAVE_APPLICATION_VERSION": command.applicationVersion or "",
                "FLEETWAVE_PACKAGE_NAME": launch.packageName if launch else "",
                "FLEETWAVE_LAUNCH_FILE": launch.launchFile if launch else "",
                # Finds this agent's processes after a crash (stray scan in recover()).
                MARKER_VARIABLE: self._home,
            }
        )
        return env

    async def _download(
        self, command: DeploymentCommand, which: str, target: Path, etag: str | None, *, what: str
    ) -> None:
        """Download the command's ``which`` ("bundle" or "downloadCondition") into ``target``."""
        link = getattr(command, which)
        assert link is not None

        async def fresh(why: str) -> str:
            logger.info(
                "download link unusable; asking the service for a fresh one",
                extra=self._log(command, why=why),
            )
            return await self._fresh_url(command, which, what, why)

        served_etag, digest = await download(
            link.url,
            target,
            what=what,
            timeout=self._http_timeout,
            now=self._clock(),
            fresh=fresh if self._links is not None else None,
        )
        _check_etag(what, etag, served_etag, digest.hex())

    async def _fresh_url(self, command: DeploymentCommand, which: str, what: str, why: str) -> str:
        if self._links is None:
            raise StepFailed(
                FailureCode.RESOURCE_NOT_FOUND,
                f"the {what} link cannot be used ({why}) and no fresh one can be asked for",
            )
        try:
            reply = await self._links.fresh_links(command)
        except LinkError as error:
            raise StepFailed(
                FailureCode.RESOURCE_NOT_FOUND,
                f"the {what} link cannot be used ({why}); no fresh link: {error}",
            ) from None
        fresh: Bundle | DownloadCondition | None = getattr(reply, which)
        if fresh is None:
            raise StepFailed(
                FailureCode.RESOURCE_NOT_FOUND,
                f"the {what} link cannot be used ({why}); the service sent none",
            )
        return fresh.url

    async def _run(
        self, command: DeploymentCommand, argv: list[str], *, cwd: Path, failure: FailureCode
    ) -> tuple[int, str]:
        """Run a script to completion; killed (with its children) if the step is cancelled."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=self._env(command),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise StepFailed(failure, f"cannot run {argv[-1]}: {error}") from None
        try:
            output, _ = await process.communicate()
        except asyncio.CancelledError:
            kill_group(process.pid)
            await process.wait()
            raise
        kill_group(process.pid)  # whatever the script left running in its group
        with contextlib.suppress(OSError), (self._dir(_key(command)) / SCRIPTS_LOG).open("ab") as log:
            log.write(f"--- {' '.join(argv)} (exit {process.returncode})\n".encode() + output)
        lines = output.decode(errors="replace").strip().splitlines()
        tail = f": {lines[-1][:300]}" if lines else ""
        return int(process.returncode or 0), tail

    def _log(self, command: DeploymentCommand, **extra: Any) -> dict[str, Any]:
        return {"robot": self.robot_name, "jobId": command.jobId, "attempt": command.attempt, **extra}


def _key(command: DeploymentCommand) -> str:
    return f"{command.jobId}-{command.attempt}"


def _check_etag(what: str, etag: str | None, served_etag: str | None, digest: str) -> None:
    expected = _clean_etag(etag)
    if not expected:
        return
    served = _clean_etag(served_etag)
    if served and served != expected:
        raise StepFailed(
            FailureCode.ETAG_MISMATCH, f"the {what} has etag {served}, the deployment expects {expected}"
        )
    if not served and _MD5.match(expected) and digest != expected:
        raise StepFailed(
            FailureCode.ETAG_MISMATCH, f"the {what}'s MD5 is {digest}, the deployment expects {expected}"
        )


def _find_launch_file(bundle_dir: Path, package: str, launch_file: str) -> Path | None:
    for candidate in (
        bundle_dir / package / launch_file,
        bundle_dir / package / "launch" / launch_file,
        bundle_dir / launch_file,
    ):
        if candidate.is_file():
            return candidate
    return next((path for path in sorted(bundle_dir.rglob(launch_file)) if path.is_file()), None)


def _interpreted(path: Path) -> list[str]:
    """Run a file directly only when it says how (executable with a #! line); else with /bin/sh."""
    try:
        with path.open("rb") as file:
            shebang = file.read(2) == b"#!"
    except OSError:
        shebang = False
    return [str(path)] if shebang and os.access(path, os.X_OK) else ["/bin/sh", str(path)]


def _clean_etag(etag: str | None) -> str:
    return (etag or "").strip().strip('"').lower()
