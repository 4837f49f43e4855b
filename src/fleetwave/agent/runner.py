"""`run_agent`: one robot's agent from start to stop (what ``fleetwave agent`` runs).

Order matters:

1. the lock (one agent per work directory), then the state file;
2. the robot is put back as the state says (``RobotAgent.start`` -> ``ProcessLauncher.recover``): the
   application adopted or relaunched, an interrupted deployment finished or started again. This needs no
   network: reports wait in the outbox;
3. the MQTT connection starts (it retries forever) and the retained command arrives. A command the robot
   already ran is recognised from the state and not run again.

SIGTERM/SIGINT stop the agent: the deployment in progress is abandoned (rolled back if it had switched),
the application is stopped, the agent says it goes offline and exits 0. The next start relaunches the
application and runs the abandoned deployment again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from fleetwave_service.engine.messages import (
    ComponentStatesReport,
    DeploymentCommand,
    HealthReport,
    LinkReply,
    StatusReport,
)

from fleetwave import __version__
from fleetwave.agent.backoff import Backoff
from fleetwave.agent.config import AgentConfig
from fleetwave.agent.connection import RobotConnection
from fleetwave.agent.lock import AgentLock, AgentLockedError
from fleetwave.agent.outbox import Outbox
from fleetwave.agent.process import ProcessLauncher
from fleetwave.agent.protocol import Launcher, RobotAgent
from fleetwave.agent.state import StateStore, WorkDirError
from fleetwave.agent.supervisor import RestartPolicy

logger = logging.getLogger("fleetwave.agent")

#: What the agent publishes on its status topic (presence is the connection's own).
RobotMessage = StatusReport | HealthReport | ComponentStatesReport

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_LOCKED = 3


class _Links:
    """The launcher's source of fresh links: a request over the robot's own connection."""

    def __init__(self) -> None:
        self.connection: RobotConnection | None = None

    async def fresh_links(self, command: DeploymentCommand) -> LinkReply:
        assert self.connection is not None
        return await self.connection.request_links(command)


def build_launcher(
    config: AgentConfig, state: StateStore, links: _Links, on_health: Callable[[RobotMessage], None]
) -> Launcher:
    if config.simulate is not None:
        from fleetwave.agent.simulated import Behavior, SimulatedLauncher

        return SimulatedLauncher(
            Behavior.parse(config.simulate), time_scale=config.time_scale, step_seconds=0.5
        )
    policy = RestartPolicy(
        limit=config.restart_limit,
        window_seconds=config.restart_window,
        initial_delay_seconds=config.restart_delay,
        max_delay_seconds=config.restart_max_delay,
        time_scale=config.time_scale,
    )
    return ProcessLauncher(
        config.home,
        robot_name=config.robot,
        thing_name=config.thing,
        launch_command=shlex.split(config.launch_command) if config.launch_command else None,
        health_window_seconds=config.health_window,
        restart_policy=policy,
        time_scale=config.time_scale,
        state=state,
        links=links,
        on_health=on_health,
        on_components=on_health,
        log_max_bytes=config.app_log_max_bytes,
        log_backups=config.app_log_backups,
    )


async def run_agent(
    config: AgentConfig, *, stop: asyncio.Event | None = None, out: TextIO = sys.stdout
) -> int:
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.set_exception_handler(_log_loop_error)
    robot = config.robot
    if config.simulate is not None and config.work_dir is None:
        # A rehearsal keeps nothing between runs unless asked to (--work-dir).
        with tempfile.TemporaryDirectory(prefix=f"fleetwave-agent-{robot}-") as scratch:
            return await run_agent(replace(config, work_dir=Path(scratch)), stop=stop, out=out)
    lock = AgentLock(config.home)
    try:
        lock.acquire()
    except AgentLockedError as error:
        logger.error("agent not started", extra={"robot": robot, "reason": str(error)})
        return EXIT_LOCKED
    except OSError as error:
        logger.error(
            "agent not started: work directory unusable", extra={"robot": robot, "reason": str(error)}
        )
        return EXIT_CONFIG
    try:
        try:
            state = StateStore(config.home, robot_name=robot).load()
        except WorkDirError as error:
            logger.error("agent not started", extra={"robot": robot, "reason": str(error)})
            return EXIT_CONFIG
        outbox = Outbox(config.home / "outbox")
        links = _Links()
        connection: RobotConnection | None = None

        def send(message: RobotMessage) -> None:
            assert connection is not None
            connection.publish_status(message.model_dump_json(exclude_none=True).encode())

        launcher = build_launcher(config, state, links, send)
        agent = RobotAgent(robot, launcher, send, state=state, thing_name=config.thing)
        try:
            connection = RobotConnection(
                config.mqtt_url,
                config.thing,
                loop=loop,
                on_command=lambda topic, payload: agent.receive(payload, topic),
                outbox=outbox,
                tls_files=(config.ca_file, config.cert_file, config.key_file),
                backoff=Backoff(1.0, max(1.0, config.reconnect_max_delay)),
                agent_version=__version__,
            )
        except (ValueError, OSError) as error:  # unreadable certificate or key, bad URL
            logger.error(
                "agent not started: cannot set up MQTT", extra={"robot": robot, "reason": str(error)}
            )
            return EXIT_CONFIG
        links.connection = connection
        logger.info(
            "agent starting",
            extra={
                "robot": robot,
                "workDir": str(config.home),
                "version": __version__,
                "broker": config.mqtt_url,
            },
        )
        await agent.start()
        connection.start()
        watcher = asyncio.ensure_future(watch_identity(config, connection, stop))
        print(
            f"agent {robot} listening on fleetwave/robots/{config.thing}/deployment at {config.mqtt_url}",
            file=out,
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            logger.info("agent stopping", extra={"robot": robot})
            watcher.cancel()
            await agent.shutdown()
            close = getattr(launcher, "close", None)
            if close is not None:
                await close()
            await asyncio.to_thread(connection.stop)
        print(f"agent {robot} stopped", file=out, flush=True)
        return EXIT_OK
    finally:
        lock.release()


# How often the agent looks at its certificate and key files for a rotated certificate.
IDENTITY_CHECK_SECONDS = 2.0


def _identity_stamp(config: AgentConfig) -> tuple[tuple[int, int], ...] | None:
    files = [name for name in (config.cert_file, config.key_file) if name]
    try:
        return tuple((os.stat(name).st_mtime_ns, os.stat(name).st_ino) for name in files)
    except OSError:
        return None  # being replaced right now: look again next time


async def watch_identity(config: AgentConfig, connection: RobotConnection, stop: asyncio.Event) -> None:
    """Reconnect with the robot's certificate and key when their files change (rotation), without
    restarting the agent: the application and the deployment in progress are untouched."""
    if not config.cert_file:
        return
    seen = _identity_stamp(config)
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), IDENTITY_CHECK_SECONDS)
        now = _identity_stamp(config)
        if now is None or now == seen:
            continue
        try:
            await asyncio.to_thread(connection.reload_identity)
        except (ValueError, OSError) as error:  # half written, or a key that does not match: next time
            logger.warning(
                "new certificate not usable yet", extra={"robot": config.robot, "reason": str(error)}
            )
            continue
        seen = now


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    error = context.get("exception")
    logger.error(
        "unexpected error in the agent",
        extra={"reason": context.get("message"), "error": repr(error) if error else None},
    )
