"""`ProcessLauncher`: what a real robot does for each step, with files and processes.

- Validating: the work directory is usable, the command carries a bundle and a launch config.
- ExecutingDownloadCondition: download the condition script (etag checked), run it; exit 0 proceeds,
  anything else is ``DownloadConditionFailed``.
- DownloadingExtracting: download the bundle from its presigned URL (``ResourceNotFound`` when the URL
  does not answer 200), check its etag (``EtagMismatch``), extract the tar/tar.gz/zip
  (``ExtractingBundleFailure``; members escaping the directory are refused).
- ExecutingPreLaunch / ExecutingPostLaunch: run the script (a path inside the bundle, or absolute) with
  the launch environment; non-zero exit is ``PreLaunchFileFailure`` / ``PostLaunchFileFailure``.
- Launching: stop the application a previous deployment launched, start the new one. By default the
  launch file found in the bundle is run (directly when executable, else with /bin/sh); a ROS robot
  passes ``launch_command=["roslaunch", "{package}", "{launch_file}"]``. A launch file that is not in the
  bundle is ``MissingRobotDeploymentResource``; an application that exits non-zero within
  ``launch_grace_seconds`` is ``EnvironmentSetupError``.

Scripts and the application see the command's ``environmentVariables`` plus FLEETWAVE_ROBOT_NAME,
FLEETWAVE_JOB_ID, FLEETWAVE_ATTEMPT, FLEETWAVE_BUNDLE_DIR, FLEETWAVE_APPLICATION,
FLEETWAVE_APPLICATION_VERSION, FLEETWAVE_PACKAGE_NAME and FLEETWAVE_LAUNCH_FILE.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from fleetwave_service.engine.messages import DeploymentCommand, FailureCode, ProgressStep

from fleetwave.agent.protocol import StepFailed

logger = logging.getLogger("fleetwave.agent.process")

_MD5 = re.compile(r"^[0-9a-f]{32}$")
_CHUNK = 1 << 16


class ProcessLauncher:
    def __init__(
        self,
        work_root: str | Path,
        *,
        robot_name: str,
        launch_command: Sequence[str] | None = None,
        launch_grace_seconds: float = 2.0,
        http_timeout_seconds: float = 60.0,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.work_root = Path(work_root)
        self.robot_name = robot_name
        self._launch_command = list(launch_command) if launch_command else None
        self._grace = launch_grace_seconds
        self._http_timeout = http_timeout_seconds
        self._base_env = dict(os.environ if environment is None else environment)
        self._app: asyncio.subprocess.Process | None = None
        self._app_owner: tuple[str, int] | None = None
        self._current: tuple[str, int] | None = None

    # --- the Launcher port -------------------------------------------------------------------------
    async def run_step(self, step: ProgressStep, command: DeploymentCommand) -> None:
        self._current = (command.jobId, command.attempt)
        if step is ProgressStep.VALIDATING:
            await self._validate(command)
        elif step is ProgressStep.EXECUTING_DOWNLOAD_CONDITION:
            await self._download_condition(command)
        elif step is ProgressStep.DOWNLOADING_EXTRACTING:
            await self._download_and_extract(command)
        elif step is ProgressStep.EXECUTING_PRE_LAUNCH:
            script = command.launchConfig.preLaunchFile
            await self._run_script(command, script, FailureCode.PRE_LAUNCH_FILE_FAILURE)
        elif step is ProgressStep.LAUNCHING:
            await self._launch(command)
        elif step is ProgressStep.EXECUTING_POST_LAUNCH:
            script = command.launchConfig.postLaunchFile
            await self._run_script(command, script, FailureCode.POST_LAUNCH_FILE_FAILURE)

    async def stop(self) -> None:
        """Stop the application the current deployment launched (aborted, superseded or timed out)."""
        if self._app is not None and self._app_owner == self._current:
            await self._stop_app()

    def expected_seconds(self, step: ProgressStep, command: DeploymentCommand) -> float:
        return self._grace if step is ProgressStep.LAUNCHING else 1.0

    @property
    def application_pid(self) -> int | None:
        """The running application's process id (None when nothing runs)."""
        app = self._app
        return app.pid if app is not None and app.returncode is None else None

    async def close(self) -> None:
        """Stop the running application (agent shutdown)."""
        await self._stop_app()

    # --- steps ---------------------------------------------------------------------------------------
    async def _validate(self, command: DeploymentCommand) -> None:
        if command.bundle is None or command.launchConfig is None:
            raise StepFailed(
                FailureCode.ENVIRONMENT_SETUP_ERROR,
                "this agent runs robot applications: the command needs a bundle and a launchConfig",
            )
        directory = self._deployment_dir(command)
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

    async def _download_condition(self, command: DeploymentCommand) -> None:
        condition = command.downloadCondition
        assert condition is not None
        target = self._deployment_dir(command) / "download-condition.sh"
        await self._download(condition.url, target, condition.etag, what="download condition file")
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
        directory = self._deployment_dir(command)
        archive = directory / "bundle.download"
        await self._download(bundle.url, archive, bundle.etag, what="bundle")
        await asyncio.to_thread(_extract, archive, directory / "bundle")

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
        launch = command.launchConfig
        assert launch is not None
        bundle_dir = self._bundle_dir(command)
        launch_path = _find_launch_file(bundle_dir, launch.packageName, launch.launchFile)
        if self._launch_command is None:
            if launch_path is None:
                raise StepFailed(
                    FailureCode.MISSING_ROBOT_DEPLOYMENT_RESOURCE,
                    f"launch file {launch.launchFile} of package {launch.packageName} is not in the bundle",
                )
            argv = _interpreted(launch_path)
        else:
            values = {
                "package": launch.packageName,
                "launch_file": launch.launchFile,
                "launch_path": str(launch_path or ""),
                "bundle_dir": str(bundle_dir),
            }
            argv = [part.format(**values) for part in self._launch_command]
        await self._stop_app()
        log = (self._deployment_dir(command) / "application.log").open("ab")
        try:
            app = await asyncio.create_subprocess_exec(
                *argv,
                cwd=bundle_dir,
                env=self._env(command),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise StepFailed(
                FailureCode.MISSING_ROBOT_DEPLOYMENT_RESOURCE, f"cannot start {argv[0]}: {error}"
            ) from None
        finally:
            log.close()
        self._app, self._app_owner = app, (command.jobId, command.attempt)
        try:
            status = await asyncio.wait_for(app.wait(), self._grace)
        except TimeoutError:
            logger.info("application launched", extra={"robot": self.robot_name, "pid": app.pid})
            return
        if status != 0:
            self._app = None
            raise StepFailed(
                FailureCode.ENVIRONMENT_SETUP_ERROR,
                f"the application exited with status {status} right after launch (see application.log)",
            )

    # --- helpers -------------------------------------------------------------------------------------
    def _deployment_dir(self, command: DeploymentCommand) -> Path:
        return self.work_root / "deployments" / f"{command.jobId}-{command.attempt}"

    def _bundle_dir(self, command: DeploymentCommand) -> Path:
        return self._deployment_dir(command) / "bundle"

    def _bundle_path(self, command: DeploymentCommand, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self._bundle_dir(command) / path

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
            }
        )
        return env

    async def _download(self, url: str, target: Path, etag: str | None, *, what: str) -> None:
        try:
            served_etag, digest = await asyncio.to_thread(_fetch, url, target, self._http_timeout)
        except urllib.error.HTTPError as error:
            raise StepFailed(
                FailureCode.RESOURCE_NOT_FOUND, f"the {what} URL answered HTTP {error.code} {error.reason}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise StepFailed(FailureCode.RESOURCE_NOT_FOUND, f"cannot download the {what}: {error}") from None
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

    async def _run(
        self, command: DeploymentCommand, argv: list[str], *, cwd: Path, failure: FailureCode
    ) -> tuple[int, str]:
        """Run a script to completion; killed (with its children) if the step is cancelled."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=self._env(command),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise StepFailed(failure, f"cannot run {argv[-1]}: {error}") from None
        try:
            output, _ = await process.communicate()
        except asyncio.CancelledError:
            _kill_group(process)
            await process.wait()
            raise
        lines = output.decode(errors="replace").strip().splitlines()
        tail = f": {lines[-1][:300]}" if lines else ""
        return int(process.returncode or 0), tail

    async def _stop_app(self) -> None:
        app, self._app, self._app_owner = self._app, None, None
        if app is None or app.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(app.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(app.wait(), 5)
        except TimeoutError:
            _kill_group(app)
            await app.wait()
        logger.info("application stopped", extra={"robot": self.robot_name, "pid": app.pid})


def _fetch(url: str, target: Path, timeout: float) -> tuple[str | None, str]:
    """Stream ``url`` into ``target``; returns the served ETag and the content's MD5."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"unsupported URL scheme in {url!r}")
    digest = hashlib.md5()  # noqa: S324 - S3's etag for single-part objects, not security
    with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:  # noqa: S310
        while chunk := response.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        return response.headers.get("ETag"), digest.hexdigest()


def _extract(archive: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    try:
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                # The "data" filter refuses absolute paths, .. and links out of the directory.
                tar.extractall(destination, filter="data")
            return
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                root = destination.resolve()
                for member in bundle.namelist():
                    if not (root / member).resolve().is_relative_to(root):
                        raise StepFailed(
                            FailureCode.EXTRACTING_BUNDLE_FAILURE,
                            f"the bundle member {member} would be extracted outside the bundle directory",
                        )
                bundle.extractall(destination)
            return
    except StepFailed:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        raise StepFailed(
            FailureCode.EXTRACTING_BUNDLE_FAILURE, f"cannot extract the bundle: {error}"
        ) from None
    raise StepFailed(
        FailureCode.EXTRACTING_BUNDLE_FAILURE, "the bundle is neither a tar(.gz) nor a zip archive"
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


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
