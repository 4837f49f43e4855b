"""`ComponentRunner`: Greengrass components on a real robot, run from their recipes (docs/greengrass.md).

A Greengrass deployment command carries the whole component set the robot must run (the deployment's
components and the dependencies the service resolved), each with its recipe in the one JSON form robots
read (``greengrass/recipes.py``) and presigned links to its S3 artifacts. Per step:

- **Validating**: for each component, the manifest of the robot's platform (the command's ``platform``; first
  match wins, as in the nucleus), its configuration (``configurationUpdate``: reset, then merge, on the
  current configuration when the version stays, else on the recipe's default), ``runWith``, and the set's
  dependencies (every ``VersionRequirement`` must hold for the deployed version; no cycles). Nothing on the
  robot changes here.
- **DownloadingExtracting**: every artifact of a component version the robot does not have yet is downloaded
  (a fresh link is asked for when the command's one has expired), its digest checked when the recipe gives
  one, unzipped when ``Unarchive: ZIP``, under
  ``greengrass/packages/artifacts[-unarchived]/<name>/<version>``.
- **Launching**: the switch. Components that are removed, change version, configuration or ``runWith`` (and
  their HARD dependents) are stopped in reverse dependency order (``shutdown`` script, then the run process
  group); then the new set starts in dependency order: ``install``, then ``startup`` (RUNNING once it exits
  0) or ``run`` (RUNNING while it runs, FINISHED when it exits 0), each with its timeout. Then the health
  window: a run script that exits non-zero inside it fails the deployment.

A failure after the switch follows ``failureHandlingPolicy``: ROLLBACK stops what the deployment started and
starts the previous set again (same versions, configuration; its artifacts are still on disk); DO_NOTHING
leaves the set as it is, the failed component BROKEN. Once committed, each run script is supervised: an exit
with a non-zero status is ERRORED and restarted; the third within the hour makes it BROKEN (as the nucleus
does), until the next deployment or agent start.

Every change of a component's lifecycle state is reported (``ComponentStatesReport``, the whole set). State
on disk: section ``greengrass`` of the agent's state file (the committed set and the last deployment's
phase); on an agent start the committed set is started again (install, then startup/run).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import getpass
import grp
import json
import logging
import os
import pwd
import re
import shutil
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fleetwave_service.core.semver import Requirement, SemverError
from fleetwave_service.engine.messages import (
    SKIPPED_REASON,
    SKIPPED_STATUS_CODE,
    ComponentSpec,
    ComponentState,
    ComponentStatesReport,
    DeploymentCommand,
    FailureCode,
    LifecycleState,
    ProgressStep,
    is_public_component,
)

from fleetwave.agent.components import (
    ConfigurationError,
    InstalledComponent,
    lookup_pointer,
    plan_components,
)
from fleetwave.agent.downloads import download, extract, log_tail
from fleetwave.agent.protocol import Recovered, StepFailed
from fleetwave.agent.state import StateStore
from fleetwave.agent.supervisor import (
    BROKEN,
    FINISHED,
    RESTARTING,
    RUNNING,
    ProcessSpec,
    RestartPolicy,
    RotatingLog,
    Supervisor,
    kill_group,
)

logger = logging.getLogger("fleetwave.agent.greengrass")

#: The nucleus's default lifecycle timeouts (seconds); a step's ``Timeout`` overrides them.
DEFAULT_TIMEOUTS = {"install": 120.0, "startup": 120.0, "shutdown": 15.0}
#: A component that errors 3 times within an hour is BROKEN (the nucleus's rule): 2 restarts, the 3rd error.
ERRORS_BEFORE_BROKEN = 3
ERROR_WINDOW_SECONDS = 3600.0
GENERIC = "aws.greengrass.generic"
SUPPORTED_LIFECYCLE = ("install", "startup", "run", "shutdown", "setenv")
DIGESTS = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512", "SHA-1": "sha1", "MD5": "md5"}
_VARIABLE = re.compile(
    r"\{(?:(?P<component>[A-Za-z0-9._-]+):)?(?P<namespace>configuration|artifacts|work|iot|kernel):"
    r"(?P<key>[^{}]*)\}"
)

_UP = (LifecycleState.RUNNING, LifecycleState.FINISHED)
_DOWN = (LifecycleState.NEW, LifecycleState.INSTALLED, LifecycleState.ERRORED, LifecycleState.BROKEN)

ComponentsListener = Callable[[ComponentStatesReport], None]

# Deployment phases on disk (as ProcessLauncher's).
INSTALLING = "installing"
LAUNCHED = "launched"
COMMITTED = "committed"
FAILED = "failed"
ABANDONED = "abandoned"


def _get(mapping: Any, key: str, default: Any = None) -> Any:
    """``mapping[key]`` read case-insensitively, as the nucleus reads recipe keys."""
    if not isinstance(mapping, dict):
        return default
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    return next((v for k, v in mapping.items() if str(k).lower() == lowered), default)


@dataclass
class Planned:
    """One component as the robot runs it: the version, the manifest it picked, its configuration."""

    name: str
    version: str
    root: bool = True
    source: str | None = None  # the deployment (job id) that brought this version
    manifest: dict[str, Any] = field(default_factory=dict)
    dependencies: dict[str, dict[str, str]] = field(default_factory=dict)
    configuration: dict[str, Any] = field(default_factory=dict)
    run_with: dict[str, Any] | None = None
    skipped: bool = False  # a public aws.greengrass.* component: accepted, not run

    def same_as(self, other: Planned) -> bool:
        """Nothing that the running process depends on differs (else it is restarted)."""
        return (self.version, self.configuration, self.run_with, self.manifest) == (
            other.version,
            other.configuration,
            other.run_with,
            other.manifest,
        )

    @classmethod
    def from_dict(cls, data: Any) -> Planned | None:
        try:
            return cls(**data)
        except TypeError:
            return None


@dataclass
class _Live:
    """What runs of one component now, and the state it is in."""

    planned: Planned
    state: LifecycleState = LifecycleState.NEW
    details: str | None = None
    codes: list[str] = field(default_factory=list)
    changed: float = field(default_factory=time.time)
    run: Supervisor | None = None
    startup_group: int | None = None  # the process group a startup script left running


class ComponentRunner:
    def __init__(
        self,
        work_root: str | Path,
        *,
        robot_name: str,
        thing_name: str | None = None,
        marker: tuple[str, str],
        restart_policy: RestartPolicy,
        health_window_seconds: float,
        http_timeout_seconds: float = 60.0,
        environment: Mapping[str, str] | None = None,
        state: StateStore | None = None,
        fresh_artifacts: Callable[[DeploymentCommand], Any] | None = None,
        on_components: ComponentsListener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(work_root) / "greengrass"
        self.robot_name = robot_name
        self.thing_name = thing_name or robot_name  # {iot:thingName}: the IoT thing, not the robot's name
        self._marker = marker
        policy = restart_policy
        self._policy = RestartPolicy(
            limit=ERRORS_BEFORE_BROKEN - 1,
            window_seconds=ERROR_WINDOW_SECONDS,
            initial_delay_seconds=policy.initial_delay_seconds,
            max_delay_seconds=policy.max_delay_seconds,
            stop_timeout_seconds=policy.stop_timeout_seconds,
            time_scale=policy.time_scale,
        )
        self._window_seconds = health_window_seconds
        self._http_timeout = http_timeout_seconds
        self._base_env = dict(os.environ if environment is None else environment)
        self._state = state
        self._fresh_artifacts = fresh_artifacts
        self._on_components = on_components or (lambda report: None)
        self._clock = clock
        self._set: dict[str, Planned] = {}  # the committed set
        self._live: dict[str, _Live] = {}
        self._plan: dict[str, Planned] | None = None
        self._deployment: dict[str, Any] | None = None  # jobId, attempt, issuedAt, phase, failure
        self._stopped_for_switch: list[str] = []
        self._started_for_switch: list[str] = []
        self._followers: set[asyncio.Task[None]] = set()
        self._follow_lock = asyncio.Lock()

    # --- the launcher's calls -------------------------------------------------------------------------
    async def run_step(self, step: ProgressStep, command: DeploymentCommand) -> None:
        try:
            if step is ProgressStep.VALIDATING:
                self._validate(command)
            elif step is ProgressStep.DOWNLOADING_EXTRACTING:
                await self._download(command)
            elif step is ProgressStep.LAUNCHING:
                await self._switch(command)
                await self._health_window(command)
                self._commit()
        except StepFailed as failure:
            suffix = await self._after_failure(command, failure)
            raise StepFailed(failure.code, failure.reason + suffix) from None

    async def stop(self) -> None:
        """Abandon the deployment in progress: if it had switched, the previous set runs again."""
        deployment = self._deployment
        if deployment is None or deployment["phase"] not in (INSTALLING, LAUNCHED):
            return
        logger.info("component deployment abandoned", extra={"robot": self.robot_name, **_ids(deployment)})
        if deployment["phase"] == LAUNCHED:
            await self._roll_back()
        deployment["phase"] = ABANDONED
        self._plan = None
        self._save()

    async def recover(self) -> tuple[float, Recovered] | None:
        """Start the committed set again (the agent starts); what became of the last deployment."""
        saved = self._state.section("greengrass") if self._state is not None else {}
        components = saved.get("set") if isinstance(saved.get("set"), dict) else {}
        self._set = {n: p for n, p in ((n, Planned.from_dict(d)) for n, d in components.items()) if p}
        deployment = saved.get("deployment")
        self._deployment = deployment if isinstance(deployment, dict) else None
        if self._deployment is not None and self._deployment.get("phase") in (INSTALLING, LAUNCHED):
            self._deployment["phase"] = ABANDONED  # run again from the start once its command arrives
        for name in _order(self._set):
            self._live[name] = _Live(self._set[name])
        if self._set:
            logger.info(
                "starting the installed components", extra={"robot": self.robot_name, "count": len(self._set)}
            )
        for name in _order(self._set):
            if self._ready_to_start(name):
                with contextlib.suppress(StepFailed):
                    await self._start(name, supervised=True)
        self._save()
        self._publish()
        if self._deployment is None:
            return None
        failure = self._deployment.get("failure") or {}
        return float(self._deployment.get("issuedAt") or 0.0), Recovered(
            str(self._deployment.get("jobId")),
            int(self._deployment.get("attempt") or 0),
            str(self._deployment.get("phase")),
            failure.get("failureCode"),
            failure.get("failureReason"),
        )

    async def close(self) -> None:
        """The agent stops: every component is stopped (shutdown scripts run); started again next time."""
        await self._cancel_followers()
        for name in reversed(_order({n: live.planned for n, live in self._live.items()})):
            await self._stop(name, publish=False)

    @property
    def states(self) -> dict[str, ComponentState]:
        return {name: self._state_of(live) for name, live in sorted(self._live.items())}

    # --- Validating -------------------------------------------------------------------------------------
    def _validate(self, command: DeploymentCommand) -> None:
        self._deployment = {
            "jobId": command.jobId,
            "attempt": command.attempt,
            "issuedAt": command.issuedAt,
            "phase": INSTALLING,
            "failure": None,
        }
        self._plan = None
        installed = {
            n: InstalledComponent(p.version, p.configuration, p.run_with) for n, p in self._set.items()
        }
        try:
            configured = plan_components(installed, command)
        except ConfigurationError as error:
            raise StepFailed(FailureCode.ENVIRONMENT_SETUP_ERROR, str(error)) from None
        plan: dict[str, Planned] = {}
        for name, spec in (command.components or {}).items():
            previous = self._set.get(name)
            plan[name] = self._planned(command, name, spec, configured[name].configuration, previous)
        _check_dependencies(plan)
        self._plan = plan
        self._save()

    def _planned(
        self,
        command: DeploymentCommand,
        name: str,
        spec: ComponentSpec,
        configuration: dict[str, Any],
        previous: Planned | None,
    ) -> Planned:
        version = spec.componentVersion
        source = previous.source if previous is not None and previous.version == version else command.jobId
        if is_public_component(name):
            return Planned(name, version, spec.root, source, configuration=configuration, skipped=True)
        recipe = spec.recipe
        if recipe is None:
            raise _fail(name, f"version {version} is not registered in this account: the robot has no recipe")
        kind = str(recipe.get("ComponentType") or GENERIC)
        if kind != GENERIC:
            raise _fail(
                name, f"component type {kind} needs the Greengrass nucleus; this agent runs {GENERIC} only"
            )
        manifest = _select_manifest(recipe.get("Manifests") or [], command.platform or {})
        if manifest is None:
            platform = json.dumps(command.platform or {}, sort_keys=True)
            raise _fail(name, f"version {version} has no manifest for this robot's platform {platform}")
        lifecycle = manifest.get("Lifecycle") or {}
        unknown = sorted(k for k in lifecycle if str(k).lower() not in SUPPORTED_LIFECYCLE)
        if unknown:
            raise _fail(
                name,
                f"lifecycle step(s) {', '.join(unknown)} are not supported by the Fleetwave agent "
                f"(it runs {', '.join(SUPPORTED_LIFECYCLE[:4])})",
            )
        run_with = spec.runWith
        _check_run_with(name, run_with, lifecycle)
        return Planned(
            name,
            version,
            spec.root,
            source,
            manifest=manifest,
            dependencies=dict(recipe.get("ComponentDependencies") or {}),
            configuration=configuration,
            run_with=run_with,
        )

    # --- DownloadingExtracting ------------------------------------------------------------------------
    async def _download(self, command: DeploymentCommand) -> None:
        assert self._plan is not None
        for name in _order(self._plan):
            planned = self._plan[name]
            artifacts = planned.manifest.get("Artifacts") or []
            if planned.skipped or not artifacts or (self._artifacts(planned) / ".complete").exists():
                continue
            links = (command.components or {})[name].artifactLinks
            await self._fetch(command, planned, artifacts, links)

    async def _fetch(
        self,
        command: DeploymentCommand,
        planned: Planned,
        artifacts: list[dict[str, Any]],
        links: dict[str, str],
    ) -> None:
        name = planned.name
        final, unarchived = self._artifacts(planned), self._unarchived(planned)
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(unarchived, ignore_errors=True)
        partial.mkdir(parents=True)
        for artifact in artifacts:
            uri = str(artifact.get("Uri"))
            if not uri.startswith("s3://"):
                raise _fail(name, f"artifact {uri} cannot be downloaded by this agent (only s3:// URIs)")
            file_name = uri.rsplit("/", 1)[-1]
            target = partial / file_name
            what = f"artifact {uri} of component {name}"
            algorithm = DIGESTS.get(str(artifact.get("Algorithm") or "SHA-256"), "sha256")

            async def fresh(why: str, uri: str = uri, what: str = what) -> str:
                return await self._fresh_link(command, name, uri, what, why)

            url = links.get(uri)
            if url is None:
                url = await fresh("the command carries no link for it")
            _, digest = await download(
                url,
                target,
                what=what,
                timeout=self._http_timeout,
                now=self._clock(),
                fresh=fresh,
                algorithm=algorithm,
            )
            expected = artifact.get("Digest")
            if expected is not None and base64.b64encode(digest).decode() != str(expected):
                raise StepFailed(
                    FailureCode.ETAG_MISMATCH,
                    f"component {name}: artifact {uri} has {artifact.get('Algorithm')} digest "
                    f"{base64.b64encode(digest).decode()}, the recipe expects {expected}",
                )
            if str(artifact.get("Unarchive") or "NONE").upper() == "ZIP":
                destination = unarchived / file_name.rsplit(".", 1)[0]
                await asyncio.to_thread(extract, target, destination, what=what, zip_only=True)
            permission = str(_get(artifact.get("Permission"), "Execute", "NONE")).upper()
            if permission in ("OWNER", "ALL"):
                target.chmod(0o755 if permission == "ALL" else 0o744)
        (partial / ".complete").write_text(command.jobId)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)

    async def _fresh_link(self, command: DeploymentCommand, name: str, uri: str, what: str, why: str) -> str:
        logger.info(
            "artifact link unusable; asking the service for a fresh one",
            extra={"robot": self.robot_name, "jobId": command.jobId, "component": name, "why": why},
        )
        if self._fresh_artifacts is None:
            raise StepFailed(FailureCode.RESOURCE_NOT_FOUND, f"the {what} link cannot be used ({why})")
        try:
            reply = await self._fresh_artifacts(command)
        except Exception as error:  # LinkError, or no connection
            raise StepFailed(
                FailureCode.RESOURCE_NOT_FOUND,
                f"the {what} link cannot be used ({why}); no fresh link: {error}",
            ) from None
        url = ((reply.artifacts or {}).get(name) or {}).get(uri)
        if url is None:
            raise StepFailed(
                FailureCode.RESOURCE_NOT_FOUND,
                f"the {what} cannot be downloaded ({why}); the service sent no link for it",
            )
        return url

    # --- Launching: the switch ------------------------------------------------------------------------
    async def _switch(self, command: DeploymentCommand) -> None:
        plan, old = self._plan, self._set
        assert plan is not None and self._deployment is not None
        await self._cancel_followers()  # the deployment decides what runs from here
        changed = {n for n, p in plan.items() if n not in old or not p.same_as(old[n])}
        # What does not run although it should (BROKEN, or waiting for a dependency that broke) starts again.
        changed |= {n for n in plan if n in self._live and self._live[n].state in _DOWN}
        restart = _with_hard_dependents(plan, changed)
        stopping = [n for n in old if n not in plan or n in restart]
        self._deployment["phase"] = LAUNCHED
        self._stopped_for_switch, self._started_for_switch = [], []
        self._save()
        for name in reversed(_order(old)):
            if name in stopping:
                await self._stop(name)
                self._stopped_for_switch.append(name)
                if name not in plan:
                    del self._live[name]  # its work directory goes once the deployment commits
                    self._publish()
        for name in _order(plan):
            if name in restart or name not in self._live:
                self._live[name] = _Live(plan[name])
                self._publish()
        failures = []
        for name in _order(plan):
            if name not in restart:
                self._live[name].planned = plan[name]  # unchanged: it keeps running, untouched
                continue
            if not self._ready_to_start(name):
                continue  # a dependency failed (DO_NOTHING): this one stays INSTALLED, as in the nucleus
            self._started_for_switch.append(name)
            try:
                await self._start(name, supervised=False)
            except StepFailed as failure:
                if command.failureHandlingPolicy != "DO_NOTHING":
                    raise
                failures.append(failure)
        if failures:
            raise failures[0]

    async def _health_window(self, command: DeploymentCommand) -> None:
        runs = {n: self._live[n].run for n in self._started_for_switch if self._live[n].run is not None}
        if not runs:
            return
        seconds = self._window_seconds
        logger.info("component health window", extra={"robot": self.robot_name, "seconds": round(seconds, 2)})
        deadline = time.monotonic() + seconds
        waits = {asyncio.ensure_future(run.exited().wait()): name for name, run in runs.items() if run}
        try:
            while waits and (remaining := deadline - time.monotonic()) > 0:
                done, _ = await asyncio.wait(
                    set(waits), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    name = waits.pop(task)
                    code = self._live[name].run.last_exit if self._live[name].run else None
                    if code == 0:
                        self._set_state(name, LifecycleState.FINISHED, None)
                        continue
                    details = self._exit_details(name, code)
                    self._set_state(name, LifecycleState.BROKEN, details, ["RUN_ERROR"])
                    raise _fail(
                        name,
                        f"its run script exited with status {code} inside its {seconds:g} s health window"
                        f"{log_tail(self._log_path(name))}",
                    )
        finally:
            for task in waits:
                task.cancel()

    def _commit(self) -> None:
        assert self._plan is not None and self._deployment is not None
        self._take_plan()
        self._plan = None
        self._deployment["phase"] = COMMITTED
        for live in self._live.values():
            if live.run is not None:
                live.run.supervised = True
                if live.state is LifecycleState.RUNNING and live.run.exited().is_set():
                    self._on_exit(live.planned.name, live.run)
        self._save()
        self._prune()
        logger.info("components committed", extra={"robot": self.robot_name, **_ids(self._deployment)})

    async def _after_failure(self, command: DeploymentCommand, failure: StepFailed) -> str:
        deployment = self._deployment
        if deployment is None or deployment["phase"] not in (INSTALLING, LAUNCHED):
            return ""
        suffix = ""
        if deployment["phase"] == LAUNCHED:
            if command.failureHandlingPolicy == "DO_NOTHING":
                suffix = self._keep_failed()
            else:
                suffix = await self._roll_back()
        deployment["phase"] = FAILED
        deployment["failure"] = {
            "failureCode": failure.code.value,
            "failureReason": (failure.reason + suffix)[:1024],
        }
        self._plan = None
        self._save()
        return suffix

    def _take_plan(self) -> None:
        """The deployed set becomes the robot's: components it removed lose their work directory."""
        assert self._plan is not None
        for removed in set(self._set) - set(self._plan):
            shutil.rmtree(self.root / "work" / removed, ignore_errors=True)
        self._set = self._plan

    def _keep_failed(self) -> str:
        """DO_NOTHING: the new set stays; what failed reads BROKEN, the rest is supervised as committed."""
        self._take_plan()
        broken = []
        for name, live in self._live.items():
            if live.state in (LifecycleState.ERRORED, LifecycleState.BROKEN):
                if live.state is LifecycleState.ERRORED:
                    self._set_state(name, LifecycleState.BROKEN, live.details, live.codes)
                broken.append(name)
            elif live.run is not None:
                live.run.supervised = True
        self._save()
        listed = ", ".join(broken)
        return f"; failureHandlingPolicy DO_NOTHING: the components stay as they are ({listed} BROKEN)"

    async def _roll_back(self) -> str:
        """Stop what the deployment started, start the previous set again; what runs now, for the reason."""
        for name in reversed(self._started_for_switch):
            await self._stop(name)
        for name in [n for n in self._live if n not in self._set]:
            self._uninstall(name)  # new in this deployment: it goes
        restart = [n for n in self._stopped_for_switch if n in self._set]
        restart += [n for n in self._started_for_switch if n in self._set and n not in restart]
        for name in _order(self._set):
            if name in restart or name not in self._live:
                self._live[name] = _Live(self._set[name])
        for name in _order(self._set):
            if name in restart and self._ready_to_start(name):
                with contextlib.suppress(StepFailed):
                    await self._start(name, supervised=True)
        self._stopped_for_switch, self._started_for_switch = [], []
        self._publish()
        if not self._set:
            return "; rolled back: no components ran before this deployment, none run now"
        listed = ", ".join(f"{n} {p.version}" for n, p in sorted(self._set.items()))
        logger.warning("components rolled back", extra={"robot": self.robot_name, "components": listed})
        return f"; rolled back to the previous components ({listed})"

    # --- one component ----------------------------------------------------------------------------------
    def _ready_to_start(self, name: str) -> bool:
        """Its HARD dependencies run (or finished); SOFT ones need only be there. Public ones need nothing."""
        for dependency, spec in self._live[name].planned.dependencies.items():
            live = self._live.get(dependency)
            if live is None:
                if not is_public_component(dependency):
                    return False
            elif spec.get("DependencyType", "HARD") == "HARD" and live.state not in _UP:
                return False
        return True

    async def _start(self, name: str, *, supervised: bool) -> None:
        live = self._live[name]
        planned = live.planned
        if planned.skipped:
            self._set_state(name, LifecycleState.FINISHED, SKIPPED_REASON, [SKIPPED_STATUS_CODE])
            return
        work = self._work(planned)
        work.mkdir(parents=True, exist_ok=True)
        user, group = _posix_identity(planned.run_with)
        if user is not None and os.geteuid() == 0:
            shutil.chown(work, user, group)  # its work path is its own, as the nucleus makes it
        lifecycle = planned.manifest.get("Lifecycle") or {}
        install = _get(lifecycle, "install")
        if install is not None:
            await self._script(name, "install", install, "INSTALL_ERROR")
        self._set_state(name, LifecycleState.INSTALLED, None)
        startup, run = _get(lifecycle, "startup"), _get(lifecycle, "run")
        if startup is None and run is None:
            self._set_state(name, LifecycleState.FINISHED, None)
            return
        self._set_state(name, LifecycleState.STARTING, None)
        if startup is not None:
            await self._script(name, "startup", startup, "STARTUP_ERROR")
            self._set_state(name, LifecycleState.RUNNING, None)
            return
        step = _step(run)
        spec = ProcessSpec(
            ["/bin/sh", "-c", self._resolve(planned, step["script"])],
            self._work(planned),
            self._env(planned, lifecycle, step),
            self._log_path(name),
            *_posix_identity(planned.run_with),
        )
        supervisor = Supervisor(
            f"{name}-{planned.version}",
            spec,
            self._policy,
            on_state=lambda state, detail, s=None: self._on_run_state(name, state, detail),
            log=RotatingLog(self._log_path(name)),
            context={"robot": self.robot_name, "component": name, "version": planned.version},
        )
        supervisor.finish_on_success = True
        live.run = supervisor
        try:
            await supervisor.start()
        except OSError as error:
            live.run = None
            self._set_state(name, LifecycleState.BROKEN, f"run could not be started: {error}", ["RUN_ERROR"])
            raise _fail(name, f"its run script could not be started: {error}") from None
        supervisor.supervised = supervised

    def _on_run_state(self, name: str, state: str, detail: dict[str, Any]) -> None:
        live = self._live.get(name)
        if live is None or live.state is LifecycleState.STOPPING:
            return
        if state == RUNNING:
            restarted = live.state is LifecycleState.ERRORED
            self._set_state(name, LifecycleState.RUNNING, None)
            if restarted:
                self._follow(self._start_dependents, name)
        elif state == FINISHED:
            self._set_state(name, LifecycleState.FINISHED, None)
        elif state == RESTARTING:
            self._set_state(
                name, LifecycleState.ERRORED, self._exit_details(name, detail.get("exitCode")), ["RUN_ERROR"]
            )
            self._follow(self._stop_dependents, name)
        elif state == BROKEN:
            reason = f"{detail.get('reason') or 'run failed'}{log_tail(self._log_path(name))}"
            self._set_state(name, LifecycleState.BROKEN, reason, ["RUN_ERROR"])

    # HARD dependents follow their dependency: stopped while it errors, started again once it runs (the
    # nucleus restarts a HARD dependent when its dependency changes state). A BROKEN dependency keeps them
    # stopped until the next deployment or agent start.
    def _follow(self, work: Callable[[str], Coroutine[Any, Any, None]], name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._serialised(work, name))
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _serialised(self, work: Callable[[str], Coroutine[Any, Any, None]], name: str) -> None:
        async with self._follow_lock:
            await work(name)

    async def _cancel_followers(self) -> None:
        tasks = list(self._followers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _hard_dependents(self, name: str) -> list[str]:
        components = {n: live.planned for n, live in self._live.items()}
        followers = _with_hard_dependents(components, {name}) - {name}
        return [n for n in _order(components) if n in followers]

    async def _stop_dependents(self, name: str) -> None:
        for dependent in reversed(self._hard_dependents(name)):
            live = self._live.get(dependent)
            if live is not None and live.state in (LifecycleState.RUNNING, LifecycleState.STARTING):
                logger.info(
                    "stopping a HARD dependent of an errored component",
                    extra={"robot": self.robot_name, "component": dependent, "dependency": name},
                )
                await self._stop(dependent)
                self._set_state(dependent, LifecycleState.INSTALLED, f"waiting for {name}, which errored")

    async def _start_dependents(self, name: str) -> None:
        for dependent in self._hard_dependents(name):
            live = self._live.get(dependent)
            if (
                live is not None
                and live.state is LifecycleState.INSTALLED
                and self._ready_to_start(dependent)
            ):
                with contextlib.suppress(StepFailed):
                    await self._start(dependent, supervised=True)

    def _on_exit(self, name: str, run: Supervisor) -> None:
        """A run script that ended before supervision began (inside the window, with status 0)."""
        self._set_state(name, LifecycleState.FINISHED if run.last_exit == 0 else LifecycleState.BROKEN, None)

    async def _stop(self, name: str, *, publish: bool = True) -> None:
        live = self._live.get(name)
        if live is None:
            return
        planned = live.planned
        was = live.state
        if publish:
            self._set_state(name, LifecycleState.STOPPING, None)
        else:
            live.state = LifecycleState.STOPPING
        lifecycle = planned.manifest.get("Lifecycle") or {}
        shutdown = _get(lifecycle, "shutdown")
        if shutdown is not None and was in (
            LifecycleState.RUNNING,
            LifecycleState.STARTING,
            LifecycleState.ERRORED,
        ):
            with contextlib.suppress(StepFailed):  # a failing shutdown script does not keep the process alive
                await self._script(name, "shutdown", shutdown, "SHUTDOWN_ERROR")
        if live.run is not None:
            await live.run.stop()
            live.run = None
        if live.startup_group is not None:
            await _stop_group(live.startup_group, self._policy.stop_timeout_seconds)
            live.startup_group = None
        if publish:
            self._set_state(name, LifecycleState.INSTALLED, None)

    def _uninstall(self, name: str) -> None:
        self._live.pop(name, None)
        shutil.rmtree(self.root / "work" / name, ignore_errors=True)
        self._publish()

    async def _script(self, name: str, phase: str, value: Any, code: str) -> None:
        """Run one lifecycle script to its end, within its timeout; StepFailed names the component."""
        planned = self._live[name].planned
        lifecycle = planned.manifest.get("Lifecycle") or {}
        step = _step(value)
        if step["skipif"] and self._skip(planned, step["skipif"]):
            logger.info(
                "lifecycle step skipped", extra={"robot": self.robot_name, "component": name, "phase": phase}
            )
            return
        timeout = float(step["timeout"] or DEFAULT_TIMEOUTS.get(phase, 120.0))
        user, group = _posix_identity(planned.run_with)
        log_path = self._log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"--- {phase}\n".encode())
            log.flush()
            try:
                process = await asyncio.create_subprocess_exec(
                    "/bin/sh",
                    "-c",
                    self._resolve(planned, step["script"]),
                    cwd=self._work(planned),
                    env=self._env(planned, lifecycle, step),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    **({"user": user} if user else {}),
                    **({"group": group} if group else {}),
                )
            except OSError as error:
                raise _fail(name, f"its {phase} script could not be started: {error}") from None
        try:
            status = await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            kill_group(process.pid)
            await process.wait()
            details = f"{phase} timed out after {timeout:g} s"
            self._set_state(name, LifecycleState.BROKEN, details, [f"{phase.upper()}_TIMEOUT"])
            raise _fail(name, f"its {phase} script timed out after {timeout:g} s") from None
        except asyncio.CancelledError:
            kill_group(process.pid)
            await process.wait()
            raise
        if phase == "startup" and status == 0:
            # What a startup script leaves running in its group is the component: stopped with it (_stop).
            self._live[name].startup_group = process.pid
        else:
            kill_group(process.pid)  # whatever the script left running in its group
        if status != 0 and phase != "shutdown":
            details = f"{phase} exited with status {status}{log_tail(self._log_path(name))}"
            self._set_state(name, LifecycleState.BROKEN, details, [code])
            raise _fail(
                name, f"its {phase} script exited with status {status}{log_tail(self._log_path(name))}"
            )

    def _skip(self, planned: Planned, skipif: str) -> bool:
        """``Skipif``: ``onpath <executable>`` or ``exists <file>`` (the nucleus's two checks)."""
        kind, _, target = self._resolve(planned, skipif).strip().partition(" ")
        target = target.strip()
        if kind.lower() == "onpath":
            return shutil.which(target, path=self._base_env.get("PATH")) is not None
        if kind.lower() == "exists":
            return Path(target).exists()
        return False

    # --- recipe variables, environment, paths ------------------------------------------------------------
    def _resolve(self, planned: Planned, text: str) -> str:
        """The recipe variables (docs/greengrass.md); one the agent cannot resolve is left as written."""

        def value(match: re.Match[str]) -> str:
            component = match.group("component")
            target = planned if component is None else self._component(component)
            namespace, key = match.group("namespace"), match.group("key")
            if target is None:
                return match.group(0)
            if namespace == "configuration":
                found, item = lookup_pointer(target.configuration, key)
                if not found:
                    return match.group(0)
                return item if isinstance(item, str) else json.dumps(item)
            if namespace == "artifacts" and key == "path":
                return str(self._artifacts(target))
            if namespace == "artifacts" and key == "decompressedPath":
                return str(self._unarchived(target))
            if namespace == "work" and key == "path":
                return str(self._work(target))
            if namespace == "iot" and key == "thingName" and component is None:
                return self.thing_name
            if namespace == "kernel" and key == "rootPath" and component is None:
                return str(self.root)
            return match.group(0)

        return _VARIABLE.sub(value, text)

    def _component(self, name: str) -> Planned | None:
        plan = self._plan or {}
        if name in plan:
            return plan[name]
        live = self._live.get(name)
        return live.planned if live is not None else None

    def _env(self, planned: Planned, lifecycle: dict[str, Any], step: dict[str, Any]) -> dict[str, str]:
        env = dict(self._base_env)
        for source in (_get(lifecycle, "Setenv") or {}, step["setenv"] or {}):
            if isinstance(source, dict):
                env.update({str(k): self._resolve(planned, str(v)) for k, v in source.items()})
        env.update(
            {
                "AWS_IOT_THING_NAME": self.thing_name,
                "FLEETWAVE_ROBOT_NAME": self.robot_name,
                "FLEETWAVE_COMPONENT_NAME": planned.name,
                "FLEETWAVE_COMPONENT_VERSION": planned.version,
                self._marker[0]: self._marker[1],  # how the agent finds its processes after a crash
            }
        )
        return env

    def _artifacts(self, planned: Planned) -> Path:
        return self.root / "packages" / "artifacts" / planned.name / planned.version

    def _unarchived(self, planned: Planned) -> Path:
        return self.root / "packages" / "artifacts-unarchived" / planned.name / planned.version

    def _work(self, planned: Planned) -> Path:
        return self.root / "work" / planned.name

    def _log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _prune(self) -> None:
        """Artifacts of versions the committed set does not use are deleted (as the nucleus does)."""
        for kind in ("artifacts", "artifacts-unarchived"):
            base = self.root / "packages" / kind
            if not base.is_dir():
                continue
            for component in base.iterdir():
                for version in component.iterdir():
                    kept = self._set.get(component.name)
                    if kept is None or kept.version != version.name:
                        shutil.rmtree(version, ignore_errors=True)
                if not any(component.iterdir()):
                    component.rmdir()

    # --- states ------------------------------------------------------------------------------------------
    def _exit_details(self, name: str, code: Any) -> str:
        return f"run exited with status {code}{log_tail(self._log_path(name))}"

    def _set_state(
        self, name: str, state: LifecycleState, details: str | None, codes: list[str] | None = None
    ) -> None:
        live = self._live.get(name)
        if live is None:
            return
        if (live.state, live.details, live.codes) == (state, details, codes or []):
            return
        live.state, live.details, live.codes, live.changed = state, details, list(codes or []), self._clock()
        logger.info(
            "component state",
            extra={
                "robot": self.robot_name,
                "component": name,
                "version": live.planned.version,
                "state": state.value,
                "details": details,
            },
        )
        self._publish()

    def _state_of(self, live: _Live) -> ComponentState:
        return ComponentState(
            componentVersion=live.planned.version,
            lifecycleState=live.state,
            lifecycleStateDetails=live.details[:1024] if live.details else None,
            lifecycleStatusCodes=live.codes,
            isRoot=live.planned.root,
            lastStatusChangeTimestamp=live.changed,
            lastInstallationSource=live.planned.source,
        )

    def _publish(self) -> None:
        report = ComponentStatesReport(components=self.states, sentAt=self._clock())
        try:
            self._on_components(report)
        except Exception:
            logger.exception("component states not published", extra={"robot": self.robot_name})

    def _save(self) -> None:
        if self._state is None:
            return
        section = {
            "set": {name: asdict(planned) for name, planned in self._set.items()},
            "deployment": copy.deepcopy(self._deployment),
        }
        try:
            self._state.save("greengrass", section)
        except OSError:
            logger.exception("component state not saved", extra={"robot": self.robot_name})


# --- pure helpers ------------------------------------------------------------------------------------------


async def _stop_group(pgid: int, timeout: float) -> None:
    """SIGTERM to a process group, SIGKILL to what is left of it after ``timeout`` seconds."""
    if not kill_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)
    kill_group(pgid, signal.SIGKILL)


def _fail(name: str, reason: str) -> StepFailed:
    return StepFailed(FailureCode.ENVIRONMENT_SETUP_ERROR, f"component {name}: {reason}")


def _ids(deployment: dict[str, Any]) -> dict[str, Any]:
    return {"jobId": deployment.get("jobId"), "attempt": deployment.get("attempt")}


def _step(value: Any) -> dict[str, Any]:
    """A lifecycle step, written as a script or as an object (Script, Setenv, Timeout, Skipif, ...)."""
    if isinstance(value, dict):
        return {
            "script": str(_get(value, "Script", "")),
            "setenv": _get(value, "Setenv"),
            "timeout": _get(value, "Timeout"),
            "skipif": _get(value, "Skipif"),
            "privileged": bool(_get(value, "RequiresPrivilege", False)),
        }
    return {"script": str(value), "setenv": None, "timeout": None, "skipif": None, "privileged": False}


def _platform_matches(wanted: dict[str, Any], platform: dict[str, str]) -> bool:
    for key, value in wanted.items():
        value = str(value)
        actual = platform.get(str(key))
        if value in ("*", "all"):
            continue
        if actual is None:
            return False
        if len(value) > 1 and value.startswith("/") and value.endswith("/"):
            if re.fullmatch(value[1:-1], actual) is None:
                return False
        elif value.lower() != actual.lower():
            return False
    return True


def _select_manifest(manifests: list[dict[str, Any]], platform: dict[str, str]) -> dict[str, Any] | None:
    """The first manifest whose Platform matches the robot's (the nucleus's order)."""
    return next((m for m in manifests if _platform_matches(m.get("Platform") or {}, platform)), None)


def _check_run_with(name: str, run_with: dict[str, Any] | None, lifecycle: dict[str, Any]) -> None:
    """``runWith`` and ``RequiresPrivilege`` as far as this robot allows; otherwise a clear refusal."""
    privileged = [
        phase for phase, value in lifecycle.items() if isinstance(value, dict) and _step(value)["privileged"]
    ]
    root = os.geteuid() == 0
    if privileged and not root:
        raise _fail(
            name,
            f"lifecycle step(s) {', '.join(privileged)} require privilege; the agent does not run as root",
        )
    if not run_with:
        return
    if run_with.get("systemResourceLimits") is not None:
        raise _fail(
            name, "runWith.systemResourceLimits is not supported by the Fleetwave agent (it sets no cgroups)"
        )
    if run_with.get("windowsUser") is not None:
        raise _fail(name, "runWith.windowsUser: this robot runs Linux")
    posix = run_with.get("posixUser")
    if not posix:
        return
    user, _, group = str(posix).partition(":")
    if not root and user != getpass.getuser():
        raise _fail(
            name, f"runWith.posixUser {posix} needs the agent to run as root (it runs as {getpass.getuser()})"
        )
    try:
        pwd.getpwnam(user)
        if group:
            grp.getgrnam(group)
    except KeyError:
        raise _fail(name, f"runWith.posixUser {posix}: no such user or group on this robot") from None


def _posix_identity(run_with: dict[str, Any] | None) -> tuple[str | None, str | None]:
    posix = (run_with or {}).get("posixUser")
    if not posix:
        return None, None
    user, _, group = str(posix).partition(":")
    if not group:
        # The user's primary group, as the nucleus does, never the agent's (root's) group.
        with contextlib.suppress(KeyError):
            group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    return user or None, group or None


def _order(components: Mapping[str, Planned]) -> list[str]:
    """Dependencies first (names sorted among equals); dependencies outside the set are ignored."""
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dependency in sorted(components[name].dependencies):
            if dependency in components:
                visit(dependency)
        ordered.append(name)

    for name in sorted(components):
        visit(name)
    return ordered


def _with_hard_dependents(components: Mapping[str, Planned], changed: set[str]) -> set[str]:
    """``changed`` plus every component that depends on one of them, HARD, directly or not."""
    restart = set(changed)
    grew = True
    while grew:
        grew = False
        for name, planned in components.items():
            if name in restart:
                continue
            if any(
                d in restart and spec.get("DependencyType", "HARD") == "HARD"
                for d, spec in planned.dependencies.items()
            ):
                restart.add(name)
                grew = True
    return restart


def _check_dependencies(plan: Mapping[str, Planned]) -> None:
    """Every requirement holds for the deployed version, and there is no cycle (names what conflicts)."""
    wanted: dict[str, list[tuple[str, str]]] = {}  # dependency -> (who requires, requirement)
    for name, planned in sorted(plan.items()):
        for dependency, spec in sorted(planned.dependencies.items()):
            if is_public_component(dependency) and dependency not in plan:
                continue  # runs inside the nucleus: nothing to check on this robot
            requirement = str(spec.get("VersionRequirement") or "*")
            wanted.setdefault(dependency, []).append((f"{name} {planned.version}", requirement))
    conflicts = []
    for dependency, requirements in sorted(wanted.items()):
        target = plan.get(dependency)
        named = [f"{who} requires {requirement}" for who, requirement in requirements]
        if target is None:
            conflicts.append(f"{dependency} is not in the deployment ({'; '.join(named)})")
            continue
        bad = [
            text
            for text, (_, req) in zip(named, requirements, strict=True)
            if not _allows(req, target.version)
        ]
        if bad:
            conflicts.append(f"{dependency} {target.version} does not satisfy: {'; '.join(bad)}")
    if conflicts:
        raise StepFailed(FailureCode.ENVIRONMENT_SETUP_ERROR, "dependency conflict: " + " | ".join(conflicts))
    cycle = _cycle(plan)
    if cycle:
        raise StepFailed(FailureCode.ENVIRONMENT_SETUP_ERROR, f"dependency cycle: {' -> '.join(cycle)}")


def _allows(requirement: str, version: str) -> bool:
    try:
        return Requirement.parse(requirement).allows(version)
    except SemverError:
        return False


def _cycle(plan: Mapping[str, Planned]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        if name in done:
            return None
        visiting.append(name)
        for dependency in sorted(plan[name].dependencies):
            if dependency in plan:
                found = visit(dependency)
                if found:
                    return found
        visiting.pop()
        done.add(name)
        return None

    for name in sorted(plan):
        found = visit(name)
        if found:
            return found
    return None
