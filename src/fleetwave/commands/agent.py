"""`fleetwave agent`: run ONE real robot agent (the code a robot runs), over MQTT.

It connects as the robot (client id = robot name, as IoT Core's per-thing policy requires), subscribes to
``fleetwave/robots/<robot>/deployment`` (the retained command arrives at once: offline catch-up) and runs
each deployment with the ProcessLauncher in ``--work-dir``: download, extract, scripts, launch. With
``--simulate B`` it plays a simulated behaviour instead of touching files and processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
from pathlib import Path

from fleetwave_service.engine.messages import StatusReport, command_topic, status_topic

from fleetwave.agent.simulated import BEHAVIOR_HELP, Behavior, RobotEvent

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


def _behavior(text: str) -> Behavior:
    try:
        return Behavior.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "agent",
        help="run one robot agent (real deployments, or --simulate)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--robot", required=True, help="this robot's name (its IoT thing name)")
    parser.add_argument(
        "--mqtt-url",
        default=os.environ.get("FLEETWAVE_MQTT_URL") or DEFAULT_MQTT_URL,
        help="broker URL; mqtts://<iot-endpoint>:8883 with --cert-file/--key-file for IoT Core "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--work-dir", default=None, help="where bundles are extracted (default: ~/.fleetwave/agent/<robot>)"
    )
    parser.add_argument(
        "--launch-command",
        default=None,
        help="how to launch, with {package} {launch_file} {launch_path} {bundle_dir}, "
        'e.g. "roslaunch {package} {launch_file}" (default: run the launch file)',
    )
    parser.add_argument("--ca-file", default=None)
    parser.add_argument("--cert-file", default=None)
    parser.add_argument("--key-file", default=None)
    parser.add_argument(
        "--simulate", type=_behavior, default=None, metavar="B", help=f"simulate instead: {BEHAVIOR_HELP}"
    )
    parser.add_argument("--time-scale", type=float, default=1.0, help="with --simulate: duration multiplier")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if (args.cert_file is None) != (args.key_file is None):
        print("fleetwave agent: --cert-file and --key-file go together", file=sys.stderr)
        return 2
    return asyncio.run(run_agent(args))


async def run_agent(args: argparse.Namespace) -> int:
    from fleetwave.agent.mqtt_link import MqttLink
    from fleetwave.agent.process import ProcessLauncher
    from fleetwave.agent.protocol import RobotAgent
    from fleetwave.agent.simulated import SimulatedLauncher
    from fleetwave.commands.simulate import EventPrinter

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    printer = EventPrinter(sys.stdout)
    robot = args.robot
    topic = status_topic(robot)
    if args.simulate is not None:
        launcher = SimulatedLauncher(args.simulate, time_scale=args.time_scale, step_seconds=0.5)
    else:
        work_dir = Path(args.work_dir or Path.home() / ".fleetwave" / "agent" / robot)
        command = shlex.split(args.launch_command) if args.launch_command else None
        launcher = ProcessLauncher(work_dir, robot_name=robot, launch_command=command)
    link: MqttLink | None = None

    def publish(report: StatusReport) -> None:
        assert link is not None
        link.publish(topic, report.model_dump_json(exclude_none=True).encode(), qos=1)
        printer(RobotEvent(robot, "report", report.jobId, report.attempt, report=report))

    agent = RobotAgent(robot, launcher, publish)
    link = MqttLink(
        args.mqtt_url,
        loop=loop,
        on_message=lambda _topic, payload: agent.receive(payload),
        subscriptions=[command_topic(robot)],
        client_id=robot,
        tls_files=(args.ca_file, args.cert_file, args.key_file),
    )
    try:
        await asyncio.to_thread(link.start)
    except ConnectionError as error:
        print(f"fleetwave agent: {error}", file=sys.stderr)
        return 1
    print(f"agent {robot} listening on {command_topic(robot)} at {args.mqtt_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await agent.shutdown()
        close = getattr(launcher, "close", None)
        if close is not None:
            await close()
        link.stop()
    print(f"agent {robot} stopped", flush=True)
    return 0
