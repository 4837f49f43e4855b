"""`fleetwave simulate`: run a simulated robot for every robot registered in a fleet.

Each simulated robot is the real `RobotAgent` driving a `SimulatedLauncher`. All of them share ONE MQTT
connection: the simulator subscribes once to ``fleetwave/robots/+/deployment`` and dispatches each command
by the robot name in its topic, and publishes every robot's reports on that robot's status topic over the
same connection. A thousand robots are a thousand small objects on one asyncio loop, not a thousand
sockets and threads (that is what lets one laptop rehearse a rollout to 10,000 robots). Real robots each
have their own connection and certificate; the broker cannot tell the difference.

With ``--mtls`` (against `fleetwave serve`) each simulated robot connects the way a real robot does: a
certificate of its own (what `fleetwave robot provision` issues, held in a temporary directory and revoked
when the robot leaves) and a connection of its own on serve's mTLS listener, confined to its own topics.

The fleet is read through the API (ListRobots with a fleetName filter, SigV4-signed) every
``--poll-seconds``: robots registered while it runs are picked up (and receive their retained command, as
a robot coming online would), robots deregistered are dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, TextIO

from fleetwave_service.engine.messages import (
    COMMAND_TOPIC_FILTER,
    LOCAL_RUNTIME_TOPIC,
    LocalRuntimeInfo,
    RobotReportStatus,
    command_topic,
    robot_from_topic,
)
from pydantic import ValidationError

from fleetwave.agent.simulated import BEHAVIOR_HELP, Behavior, RobotEvent, SimulatedFleet
from fleetwave.commands.arguments import positive_number
from fleetwave.commands.endpoint import EndpointError, add_endpoint_arguments, api_client

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
DEFAULT_POLL_SECONDS = 5.0
DEFAULT_STEP_SECONDS = 0.5


class FleetLookupError(Exception):
    """The fleet cannot be read (unknown fleet, API unreachable, credentials refused)."""


class FleetLookup(Protocol):
    def robots(self) -> list[str]:
        """Names of the robots registered in the fleet now; raises FleetLookupError."""
        ...


class ApiFleetLookup:
    """Reads a fleet's robots through the Fleetwave API (DescribeFleet, then ListRobots by fleetName)."""

    def __init__(self, client, fleet: str) -> None:  # client: fleetwave.sdk.FleetwaveClient
        self._client = client
        self.fleet_name = fleet_name_of(fleet)
        self._fleet_arn = fleet if fleet.startswith("arn:") else None
        self._checked = False

    def robots(self) -> list[str]:
        from fleetwave.sdk import FleetwaveApiError

        try:
            if not self._checked:
                self._check_fleet()
                self._checked = True
            names: list[str] = []
            token: str | None = None
            while True:
                body: dict[str, object] = {
                    "maxResults": 200,
                    "filters": [{"name": "fleetName", "values": [self.fleet_name]}],
                }
                if token:
                    body["nextToken"] = token
                page = self._client.call("listRobots", body)
                names.extend(robot["name"] for robot in page.get("robots", []))
                token = page.get("nextToken")
                if not token:
                    return names
        except FleetwaveApiError as error:
            raise FleetLookupError(f"{error.error_type}: {error.message}") from error
        except OSError as error:  # connection refused, DNS, timeouts (urllib3 errors are OSErrors)
            raise FleetLookupError(f"cannot reach the API: {error}") from error
        except Exception as error:  # urllib3's MaxRetryError and friends
            if type(error).__module__.startswith("urllib3"):
                raise FleetLookupError(f"cannot reach the API: {error}") from error
            raise

    def _check_fleet(self) -> None:
        """Fail early on a fleet that does not exist (ListRobots would just answer with no robots)."""
        if self._fleet_arn is not None:
            self._client.call("describeFleet", {"fleet": self._fleet_arn})
            return
        page = self._client.call("listFleets", {"filters": [{"name": "name", "values": [self.fleet_name]}]})
        if not any(fleet.get("name") == self.fleet_name for fleet in page.get("fleetDetails", [])):
            raise FleetLookupError(f"ResourceNotFoundException: fleet {self.fleet_name} does not exist")


def fleet_name_of(fleet: str) -> str:
    """A fleet name, from a name or a fleet ARN (``...:deployment-fleet/<name>/<millis>``)."""
    if fleet.startswith("arn:"):
        resource = fleet.split(":", 5)[-1]
        parts = resource.split("/")
        if len(parts) >= 2 and parts[0] == "deployment-fleet" and parts[1]:
            return parts[1]
        raise ValueError(f"not a fleet ARN: {fleet}")
    return fleet


class EventPrinter:
    """One compact line per robot event; with ``quiet``, only outcomes and fleet changes."""

    def __init__(self, out: TextIO, *, quiet: bool = False) -> None:
        self._out = out
        self._quiet = quiet
        self._width = 12

    def __call__(self, event: RobotEvent) -> None:
        line = self.format(event)
        if line is not None:
            self._out.write(line + "\n")
            self._out.flush()

    def format(self, event: RobotEvent) -> str | None:
        self._width = max(self._width, len(event.robot))
        robot = event.robot.ljust(self._width)
        job = f"{event.job_id} #{event.attempt}" if event.job_id else ""
        if event.kind == "report" and event.report is not None:
            report = event.report
            terminal = report.status is not RobotReportStatus.DEPLOYING
            if self._quiet and not terminal:
                return None
            text = (
                f"{robot} {job}  {report.step.value:<26} {report.percentDone:>5.1f}%  {report.status.value}"
            )
            if report.failureCode:
                text += f"  {report.failureCode}: {report.failureReason}"
            return text
        if self._quiet and event.kind in ("joined", "command", "ignored"):
            return None
        if event.kind == "joined":
            return f"{robot} joined ({event.detail})"
        if event.kind == "left":
            return f"{robot} left the fleet"
        if event.kind == "command":
            return f"{robot} {job}  received {event.detail}"
        if event.kind == "ignored":
            return f"{robot} {job}  ignored ({event.detail})"
        return None


async def run_simulation(
    lookup: FleetLookup,
    *,
    mqtt_url: str,
    fleet_label: str,
    default: Behavior,
    behaviors: Mapping[str, Behavior],
    time_scale: float | None = None,
    step_seconds: float = DEFAULT_STEP_SECONDS,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    out: TextIO = sys.stdout,
    quiet: bool = False,
    stop: asyncio.Event | None = None,
    on_fleet: Callable[[SimulatedFleet], None] | None = None,
    connect_timeout: float = 10.0,
    mtls_endpoint: str | None = None,
) -> int:
    """Simulate the fleet until ``stop`` is set; returns the exit status.

    ``time_scale`` None follows the local stack's own scale (retained by `fleetwave serve` on
    LOCAL_RUNTIME_TOPIC), or 1 when nothing says otherwise (a deployed stack).
    """
    from fleetwave.agent.mqtt_link import MqttLink

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    printer = EventPrinter(out, quiet=quiet)
    link: MqttLink | None = None

    mtls: MtlsRobots | None = None

    def publish(topic: str, payload: bytes) -> None:
        if mtls is not None:
            mtls.publish(topic, payload)
            return
        assert link is not None
        link.publish(topic, payload, qos=1)

    fleet = SimulatedFleet(
        publish,
        default=default,
        behaviors=behaviors,
        time_scale=time_scale or 1.0,
        step_seconds=step_seconds,
        on_event=printer,
    )
    runtime_info = _RuntimeInfo()

    def on_message(topic: str, payload: bytes) -> None:
        if topic == LOCAL_RUNTIME_TOPIC:
            runtime_info.receive(payload)
        else:
            fleet.deliver(topic, payload)

    if on_fleet is not None:
        on_fleet(fleet)
    try:
        names = await asyncio.to_thread(lookup.robots)
    except FleetLookupError as error:
        print(f"fleetwave simulate: cannot read fleet {fleet_label}: {error}", file=sys.stderr)
        return 1
    if mtls_endpoint is not None:
        try:
            mtls = MtlsRobots(mtls_endpoint, loop, on_message)
        except Exception as error:  # ProvisioningError: no mTLS listener, serve not reachable
            print(f"fleetwave simulate: --mtls: {error}", file=sys.stderr)
            return 1
        mqtt_url = mtls.url
        connected = [name for name in names if await _connect_robot(mtls, name, out)]
        names = connected
    else:
        subscriptions = [COMMAND_TOPIC_FILTER] + ([LOCAL_RUNTIME_TOPIC] if time_scale is None else [])
        link = MqttLink(mqtt_url, loop=loop, on_message=on_message, subscriptions=subscriptions)
        try:
            await asyncio.to_thread(link.start, connect_timeout)
        except ConnectionError as error:
            print(f"fleetwave simulate: {error}", file=sys.stderr)
            return 1
    if time_scale is None:
        # Robots are added only after this, so every launcher runs on the stack's clock.
        time_scale = await asyncio.to_thread(runtime_info.time_scale, RUNTIME_INFO_WAIT_SECONDS)
        fleet.time_scale = time_scale
    out.write(
        f"simulating {len(names)} robots of fleet {fleet_label} on {mqtt_url} "
        f"(default {default}, time scale {time_scale:g}); Ctrl-C to stop\n"
    )
    out.flush()
    # Commands that arrived before a robot was added are kept by the fleet and handed over here.
    for name in names:
        fleet.add_robot(name)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
            except TimeoutError:
                await _refresh(fleet, lookup, out, mtls)
    finally:
        await fleet.shutdown()
        if link is not None:
            link.stop()
        if mtls is not None:
            await asyncio.to_thread(mtls.close)
    out.write(f"simulator stopped ({len(fleet.robots)} robots)\n")
    out.flush()
    return 0


RUNTIME_INFO_WAIT_SECONDS = 1.0


class _RuntimeInfo:
    """The local stack's retained runtime facts, as they arrive on the MQTT thread."""

    def __init__(self) -> None:
        self._received = threading.Event()
        self._scale = 1.0

    def receive(self, payload: bytes) -> None:
        try:
            self._scale = LocalRuntimeInfo.model_validate_json(payload).timeScale
        except ValidationError:
            return
        self._received.set()

    def time_scale(self, wait_seconds: float) -> float:
        """The stack's time scale, or 1 when none is retained within ``wait_seconds`` (AWS)."""
        self._received.wait(wait_seconds)
        return self._scale


async def _refresh(
    fleet: SimulatedFleet, lookup: FleetLookup, out: TextIO, mtls: MtlsRobots | None = None
) -> None:
    try:
        current = set(await asyncio.to_thread(lookup.robots))
    except FleetLookupError as error:
        out.write(f"fleet lookup failed, keeping {len(fleet.robots)} robots: {error}\n")
        return
    for name in sorted(current - set(fleet.robots)):
        if mtls is not None and not await _connect_robot(mtls, name, out):
            continue
        fleet.add_robot(name)
    for name in sorted(set(fleet.robots) - current):
        await fleet.remove_robot(name)
        if mtls is not None:
            await asyncio.to_thread(mtls.disconnect, name)


async def _connect_robot(mtls: MtlsRobots, name: str, out: TextIO) -> bool:
    try:
        await asyncio.to_thread(mtls.connect, name)
    except (ConnectionError, OSError, RuntimeError) as error:
        out.write(f"{name}: cannot connect over mTLS, left out for now: {error}\n")
        return False
    return True


class MtlsRobots:
    """``--mtls``: one certificate and one connection per simulated robot, on serve's mTLS listener."""

    def __init__(
        self, endpoint: str, loop: asyncio.AbstractEventLoop, on_message: Callable[[str, bytes], None]
    ):
        import tempfile

        from fleetwave.provisioning import local_target

        self._target = local_target(endpoint)
        self._loop = loop
        self._on_message = on_message
        self._directory = tempfile.TemporaryDirectory(prefix="fleetwave-simulate-identities-")
        self._links: dict[str, object] = {}  # thing name -> MqttLink
        self._certificates: dict[str, str] = {}  # robot -> certificate ARN

    @property
    def url(self) -> str:
        return self._target.mqtt_url

    def connect(self, robot: str, timeout: float = 30.0) -> None:
        from fleetwave.agent.config import thing_name_of, write_identity
        from fleetwave.agent.mqtt_link import MqttLink
        from fleetwave.provisioning import issue_certificate

        thing = thing_name_of(robot)
        created = issue_certificate(self._target, thing)
        self._certificates[robot] = created["certificateArn"]
        directory = write_identity(
            Path(self._directory.name) / thing,
            {"robot": robot, "thingName": thing},
            created["certificatePem"],
            created["keyPair"]["PrivateKey"],
            self._target.ca_pem,
        )
        link = MqttLink(
            self._target.mqtt_url,
            loop=self._loop,
            on_message=self._on_message,
            subscriptions=[command_topic(thing), LOCAL_RUNTIME_TOPIC],
            client_id=thing,
            tls_files=(
                str(directory / "ca.pem"),
                str(directory / "certificate.pem"),
                str(directory / "private.key"),
            ),
        )
        link.start(timeout)
        self._links[thing] = link

    def publish(self, topic: str, payload: bytes) -> None:
        link = self._links.get(robot_from_topic(topic) or "")
        if link is not None:
            link.publish(topic, payload, qos=1)

    def disconnect(self, robot: str) -> None:
        from fleetwave.agent.config import thing_name_of
        from fleetwave.provisioning import registry

        link = self._links.pop(thing_name_of(robot), None)
        if link is not None:
            link.stop()
        arn = self._certificates.pop(robot, None)
        if arn is not None:
            # Only the certificate made for the simulation; the robot may be gone already (and it with it).
            with contextlib.suppress(Exception):
                registry(self._target).revoke_certificate(arn, thing_name_of(robot))

    def close(self) -> None:
        for robot in list(self._certificates):
            self.disconnect(robot)
        self._directory.cleanup()


# --- the command line --------------------------------------------------------------------------------
def _behavior(text: str) -> Behavior:
    try:
        return Behavior.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _robot_behavior(text: str) -> tuple[str, Behavior]:
    robot, sep, behavior = text.partition("=")
    if not sep or not robot:
        raise argparse.ArgumentTypeError(f"expected ROBOT=BEHAVIOR ({BEHAVIOR_HELP}), got {text!r}")
    return robot, _behavior(behavior)


_positive = positive_number("must be greater than zero: {text!r}", finite=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run simulated robots for a fleet (against fleetwave serve or a deployed stack)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=(
            f"Behaviours: {BEHAVIOR_HELP}. Example: fleetwave simulate --fleet demo "
            "--default-behavior ok --behavior robot-3=fail:EtagMismatch --behavior robot-4=silent"
        ),
    )
    parser.add_argument("--fleet", required=True, help="fleet name or ARN")
    parser.add_argument(
        "--mqtt-url",
        default=os.environ.get("FLEETWAVE_MQTT_URL") or DEFAULT_MQTT_URL,
        help="MQTT broker the robots connect to (default: %(default)s)",
    )
    parser.add_argument(
        "--mtls",
        action="store_true",
        help="connect every robot the way real robots do: a certificate of its own and a connection of its "
        "own on fleetwave serve's mTLS listener, confined to its own topics (--mqtt-url unused)",
    )
    parser.add_argument(
        "--behavior",
        dest="behaviors",
        action="append",
        type=_robot_behavior,
        default=[],
        metavar="ROBOT=B",
        help=f"one robot's behaviour, repeatable; B is {BEHAVIOR_HELP}",
    )
    parser.add_argument(
        "--default-behavior", type=_behavior, default=Behavior("ok"), metavar="B", help="default: ok"
    )
    parser.add_argument(
        "--time-scale",
        type=_positive,
        default=float(os.environ["FLEETWAVE_TIME_SCALE"]) if os.environ.get("FLEETWAVE_TIME_SCALE") else None,
        help=(
            "multiplies every simulated duration (default: FLEETWAVE_TIME_SCALE, else the time scale "
            "`fleetwave serve` runs at, which it retains on its broker, else 1)"
        ),
    )
    parser.add_argument(
        "--step-seconds",
        type=_positive,
        default=DEFAULT_STEP_SECONDS,
        help="how long an ok robot spends on each step, before scaling (default: %(default)s)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=_positive,
        default=DEFAULT_POLL_SECONDS,
        help="how often the fleet is re-read for new robots (default: %(default)s)",
    )
    add_endpoint_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="print only outcomes and fleet changes")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    try:
        fleet_name_of(args.fleet)
    except ValueError as error:
        print(f"fleetwave simulate: {error}", file=sys.stderr)
        return 2
    try:
        client = api_client(args)
    except EndpointError as error:
        print(f"fleetwave simulate: {error}", file=sys.stderr)
        return 1
    lookup = ApiFleetLookup(client, args.fleet)
    return asyncio.run(_main_async(lookup, args))


async def _main_async(lookup: ApiFleetLookup, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = time.monotonic()
    status = await run_simulation(
        lookup,
        mqtt_url=args.mqtt_url,
        fleet_label=lookup.fleet_name,
        default=args.default_behavior,
        behaviors=dict(args.behaviors),
        time_scale=args.time_scale,
        step_seconds=args.step_seconds,
        poll_seconds=args.poll_seconds,
        quiet=args.quiet,
        stop=stop,
        mtls_endpoint=args.endpoint if args.mtls else None,
    )
    if status == 0:
        print(f"ran for {time.monotonic() - started:.0f} s")
    return status
