"""`fleetwave agent`: run ONE real robot agent (the code a robot runs), over MQTT.

It connects as the robot (client id = robot name, as IoT Core's per-thing policy requires), subscribes to
``fleetwave/robots/<robot>/deployment`` (the retained command arrives at once: offline catch-up) and runs
each deployment with the ProcessLauncher in ``--work-dir``: download beside the running version, scripts,
switch, health window, rollback to the last-known-good version, supervision. State survives restarts
(docs/robot-agent.md). With ``--simulate B`` it plays a simulated behaviour instead of touching files and
processes. ``fleetwave agent install-service`` writes a systemd unit that runs it.

This module imports only the standard library at module level: ``fleetwave agent --help`` works on a
robot that has only the agent's dependencies (pydantic, paho-mqtt).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
BEHAVIOR_HELP = "ok | silent | fail:<FailureCode> | delay:<seconds>"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _behavior(text: str) -> str:
    from fleetwave.agent.simulated import Behavior

    try:
        Behavior.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _add_agent_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        dest="config_file",
        default=None,
        metavar="FILE",
        help="the agent.json `fleetwave robot provision` wrote: robot, thing name, broker, certificate, key "
        "and CA (options given here override it)",
    )
    parser.add_argument(
        "--claim",
        default=None,
        metavar="FILE",
        help="fleet provisioning by claim: the claim.json of a claim certificate; on first start the agent "
        "trades it for this robot's own certificate (--robot names it) and writes --config there "
        "(default: <work dir>/identity/agent.json), then runs with it",
    )
    parser.add_argument("--robot", default=None, help="this robot's name (required without --config)")
    parser.add_argument(
        "--thing-name",
        default=None,
        help="its IoT thing name = MQTT client id and topic level (default: the robot's name; derived "
        "when the name is longer than 128 characters)",
    )
    parser.add_argument(
        "--mqtt-url",
        default=None,
        help="broker URL; mqtts://<iot-endpoint>:8883 with --cert-file/--key-file for IoT Core "
        f"(default: FLEETWAVE_MQTT_URL, else {DEFAULT_MQTT_URL})",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="state, bundles and logs (default: ~/.fleetwave/agent/<robot>; the service: "
        "/var/lib/fleetwave/<robot>; with --simulate: a temporary directory, nothing kept)",
    )
    parser.add_argument(
        "--launch-command",
        default=None,
        help="how to launch, with {package} {launch_file} {launch_path} {bundle_dir}, "
        'e.g. "roslaunch {package} {launch_file}" (default: run the launch file)',
    )
    parser.add_argument("--ca-file", default=None, help="CA certificate(s) to trust for the broker")
    parser.add_argument("--cert-file", default=None, help="this robot's X.509 certificate")
    parser.add_argument("--key-file", default=None, help="this robot's private key")
    parser.add_argument(
        "--health-window",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a new application (or Greengrass component run script) must keep running this long after "
        "launch, or the robot rolls back to its last-known-good version (default: %(default)s)",
    )
    parser.add_argument(
        "--restart-limit",
        type=int,
        default=5,
        metavar="N",
        help="application restarts allowed within --restart-window; one more and it is broken (Greengrass "
        "components: BROKEN at the third error within an hour) (default: %(default)s)",
    )
    parser.add_argument(
        "--restart-window", type=float, default=600.0, metavar="SECONDS", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--restart-delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="first restart delay, doubled each time up to --restart-max-delay (default: %(default)s)",
    )
    parser.add_argument(
        "--restart-max-delay", type=float, default=60.0, metavar="SECONDS", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--reconnect-max-delay",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait between two connection attempts to the broker (jittered; default: %(default)s)",
    )
    parser.add_argument(
        "--app-log-max-bytes", type=int, default=10 * 1024 * 1024, help="rotate application.log beyond this"
    )
    parser.add_argument("--app-log-backups", type=int, default=3, help="rotated application logs kept")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplies the health window and restart timings (and, with --simulate, every duration)",
    )
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS)
    parser.add_argument(
        "--simulate", type=_behavior, default=None, metavar="B", help=f"simulate instead: {BEHAVIOR_HELP}"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "agent",
        help="run one robot agent (real deployments, or --simulate); install it as a systemd service",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    _add_agent_options(parser)
    parser.set_defaults(handler=main, agent_parser=parser)
    actions = parser.add_subparsers(dest="agent_action", metavar="ACTION")
    install = actions.add_parser(
        "install-service",
        help="write a systemd unit that runs this agent (Restart=always, work dir under /var/lib)",
        description="Write a systemd unit running `fleetwave agent` with the options given here, and print "
        "how to enable it. The unit's work directory is /var/lib/fleetwave/<robot> unless --work-dir says "
        "otherwise.",
    )
    _add_agent_options(install)
    install.add_argument("--unit-name", default="fleetwave-agent", help="(default: %(default)s)")
    install.add_argument(
        "--unit-dir", type=Path, default=Path("/etc/systemd/system"), help="(default: %(default)s)"
    )
    install.add_argument("--user", default=None, help="run the agent as this user (default: root)")
    install.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    install.set_defaults(handler=install_service, agent_parser=install)


def config_from(args: argparse.Namespace):  # -> fleetwave.agent.config.AgentConfig
    """The configuration the options give, over the --config file's (ConfigFileError when unreadable)."""
    from fleetwave.agent.config import AgentConfig, read_config_file

    given = read_config_file(Path(args.config_file)) if args.config_file else {}

    def pick(name: str) -> str | None:
        value = getattr(args, name)
        return value if value is not None else given.get(name)

    return AgentConfig(
        robot=pick("robot") or "",
        thing_name=pick("thing_name"),
        config_file=str(Path(args.config_file).absolute()) if args.config_file else None,
        mqtt_url=pick("mqtt_url") or os.environ.get("FLEETWAVE_MQTT_URL") or DEFAULT_MQTT_URL,
        work_dir=args.work_dir.expanduser().absolute() if args.work_dir else None,
        launch_command=args.launch_command,
        ca_file=pick("ca_file"),
        cert_file=pick("cert_file"),
        key_file=pick("key_file"),
        health_window=args.health_window,
        restart_limit=args.restart_limit,
        restart_window=args.restart_window,
        restart_delay=args.restart_delay,
        restart_max_delay=args.restart_max_delay,
        reconnect_max_delay=args.reconnect_max_delay,
        app_log_max_bytes=args.app_log_max_bytes,
        app_log_backups=args.app_log_backups,
        time_scale=args.time_scale,
        log_level=args.log_level,
        simulate=args.simulate,
    )


def _checked(args: argparse.Namespace):  # -> AgentConfig | None
    from fleetwave.agent.config import ConfigFileError

    if not args.robot and not args.config_file:
        args.agent_parser.error("the following arguments are required: --robot (or --config)")
    try:
        config = config_from(args)
    except ConfigFileError as error:
        print(f"fleetwave agent: {error}", file=sys.stderr)
        return None
    problems = config.problems() if config.robot else ["--config: the file names no robot (robot)"]
    for problem in problems:
        print(f"fleetwave agent: {problem}", file=sys.stderr)
    return None if problems else config


def _claimed(args: argparse.Namespace) -> bool:
    """With --claim: make sure the robot has its own identity (claim it on first start); False on failure."""
    from fleetwave.agent.claim import ClaimError, claim_identity
    from fleetwave.agent.config import default_work_dir

    if not args.robot:
        args.agent_parser.error("--claim needs --robot (the name the operator created the robot with)")
    config_file = Path(args.config_file) if args.config_file else None
    if config_file is None:
        work_dir = args.work_dir.expanduser().absolute() if args.work_dir else default_work_dir(args.robot)
        config_file = work_dir / "identity" / "agent.json"
    args.config_file = str(config_file)
    if config_file.is_file():
        return True
    try:
        claim_identity(Path(args.claim), args.robot, config_file.parent)
    except ClaimError as error:
        print(f"fleetwave agent: claim: {error}", file=sys.stderr)
        return False
    print(f"agent {args.robot} provisioned by claim: {config_file}", flush=True)
    return True


def main(args: argparse.Namespace) -> int:
    import asyncio

    from fleetwave.agent.logs import configure_logging
    from fleetwave.agent.runner import run_agent

    configure_logging(args.log_level)
    if args.claim and not _claimed(args):
        return 2
    config = _checked(args)
    if config is None:
        return 2
    return asyncio.run(run_agent(config))


def install_service(args: argparse.Namespace) -> int:
    from fleetwave.agent.systemd import enable_instructions, render_unit

    config = _checked(args)
    if config is None:
        return 2
    if args.claim:
        config.extra_args += ["--claim", str(Path(args.claim).absolute())]
    unit = render_unit(config, user=args.user)
    if args.print:
        sys.stdout.write(unit)
        return 0
    path = args.unit_dir / f"{args.unit_name}.service"
    try:
        args.unit_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(unit)
    except OSError as error:
        print(
            f"fleetwave agent install-service: cannot write {path}: {error} (run it with sudo?)",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(enable_instructions(path, args.unit_name))
    return 0
