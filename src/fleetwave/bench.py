"""`make bench` / `python -m fleetwave.bench`: what one rollout costs, on simulated fleets of 10, 100, 1,000.

Per fleet size it runs one rollout (waves of --percent, every robot the real agent with a fixed simulated
duration) on the local stack in this process, and prints:

- state transitions per deployment: states entered, from the execution history (Step Functions bills these);
- DynamoDB writes per robot: item writes during the job (PutItem, UpdateItem, DeleteItem, each item of a
  BatchWriteItem, each Put/Update/Delete of a TransactWriteItems), counted by wrapping moto's DynamoDB
  backend while the job runs;
- MQTT messages per robot: messages published on the robot topics (commands down, reports up), counted
  by a subscriber to ``fleetwave/robots/#`` on the embedded broker;
- makespan / ideal: from job creation to the last robot's finish, divided by waves x robot time (what a
  rollout with a free engine would take).

Then one rollout with rollout control on the smallest fleet: an approval gate before every wave after the
first and one pause (docs/extensions.md), driven as an operator would (pause, resume, approve each gate),
and its state transitions: 6 + 3 per wave + 3 per hold.

These are measurements to print, not assertions; nothing here is timed in the test suite. (`make bench`
prints the robot's install first: tests/dist/agent_install_report.py.)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fleetwave.commands import arguments

DEFAULT_SIZES = (10, 100, 1000)
DEFAULT_PERCENT = 25
DEFAULT_ROBOT_SECONDS = 20.0  # simulated; x time scale = real seconds per robot
DEFAULT_TIME_SCALE = 0.05
# RoboMaker's default (5 h): at 1,000 robots the local engine needs far longer than a robot to apply a
# wave's reports, and a shorter wait would turn robots that answered in time into NoResponse.
ROBOT_TIMEOUT_SECONDS = 18000
# A cap, not an expectation: a 1,000-robot rollout takes a couple of minutes on a laptop.
JOB_DEADLINE_SECONDS = 1800.0
WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items")
ROBOT_TOPIC_FILTER = "fleetwave/robots/#"


# --- figures (pure; tested in tests/unit/cli/test_bench.py) ----------------------------------------------
def count_state_transitions(events: Iterable[Mapping[str, Any]]) -> int:
    """States entered in an execution history (``TaskStateEntered``, ``ChoiceStateEntered``, ...)."""
    return sum(1 for event in events if str(event.get("type", "")).endswith("StateEntered"))


def transact_writes(transact_items: Sequence[Mapping[str, Any]]) -> int:
    """Writes in a TransactWriteItems call: a ConditionCheck reads, every other action writes one item."""
    return sum(1 for item in transact_items if next(iter(item), "ConditionCheck") != "ConditionCheck")


def waves_for(robots: int, percent: int | None) -> int:
    """The engine's wave count (docs/rollout.md): waves of ceil(N x percent / 100) robots."""
    if robots <= 0:
        return 0
    size = max(1, math.ceil(robots * (percent or 100) / 100))
    return math.ceil(robots / size)


@dataclass(frozen=True)
class BenchResult:
    robots: int
    waves: int
    status: str
    state_transitions: int
    dynamodb_writes: int
    mqtt_messages: int
    makespan_seconds: float
    robot_seconds: float  # real seconds one robot takes to deploy

    @property
    def writes_per_robot(self) -> float:
        return self.dynamodb_writes / self.robots if self.robots else 0.0

    @property
    def messages_per_robot(self) -> float:
        return self.mqtt_messages / self.robots if self.robots else 0.0

    @property
    def ideal_seconds(self) -> float:
        return self.waves * self.robot_seconds

    @property
    def makespan_ratio(self) -> float:
        return self.makespan_seconds / self.ideal_seconds if self.ideal_seconds > 0 else math.inf


def makespan_seconds(created_at: float, finish_times: Iterable[float | None]) -> float:
    """From job creation to the last robot's finish (API timestamps: epoch seconds)."""
    finishes = [value for value in finish_times if value is not None]
    return max(finishes) - created_at if finishes else 0.0


HEADERS = (
    "robots",
    "waves",
    "job",
    "state transitions",
    "DynamoDB writes/robot",
    "MQTT msgs/robot",
    "makespan s",
    "ideal s",
    "makespan/ideal",
)


def table_rows(results: Iterable[BenchResult]) -> list[tuple[str, ...]]:
    return [
        (
            f"{r.robots:,}",
            str(r.waves),
            r.status,
            str(r.state_transitions),
            f"{r.writes_per_robot:.1f}",
            f"{r.messages_per_robot:.1f}",
            f"{r.makespan_seconds:.1f}",
            f"{r.ideal_seconds:.1f}",
            f"{r.makespan_ratio:.2f}",
        )
        for r in results
    ]


def format_table(results: Iterable[BenchResult]) -> str:
    rows = [HEADERS, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


# --- counters ------------------------------------------------------------------------------------------
class WriteCounter:
    """Counts item writes at moto's DynamoDB backend (this process), outermost call only: moto's own
    transaction and batch code call put_item and friends internally."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._originals: dict[str, Callable[..., Any]] = {}

    def reset(self) -> int:
        with self._lock:
            value, self.count = self.count, 0
        return value

    def _add(self, n: int) -> None:
        with self._lock:
            self.count += n

    def install(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        for name in WRITE_METHODS:
            original = getattr(DynamoDBBackend, name)
            self._originals[name] = original
            setattr(DynamoDBBackend, name, self._wrap(name, original))

    def uninstall(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        for name, original in self._originals.items():
            setattr(DynamoDBBackend, name, original)
        self._originals.clear()

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        counter = self

        def counted(backend: Any, *args: Any, **kwargs: Any) -> Any:
            depth = getattr(counter._local, "depth", 0)
            counter._local.depth = depth + 1
            try:
                result = original(backend, *args, **kwargs)
            finally:
                counter._local.depth = depth
            if depth == 0:
                if name == "transact_write_items":
                    items = kwargs.get("transact_items", args[0] if args else [])
                    counter._add(transact_writes(items))
                else:
                    counter._add(1)
            return result

        counted.__wrapped__ = original  # type: ignore[attr-defined]
        return counted


class MessageCounter:
    """Counts messages on the robot topics, as one more MQTT client of the broker."""

    def __init__(self, mqtt_url: str) -> None:
        from urllib.parse import urlsplit

        import paho.mqtt.client as paho

        parts = urlsplit(mqtt_url)
        self.count = 0
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self._client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(ROBOT_TOPIC_FILTER, qos=1)
        self._client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self._client.loop_start()
        if not subscribed.wait(30):
            raise RuntimeError(f"cannot subscribe to {ROBOT_TOPIC_FILTER} on {mqtt_url}")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.retain:  # a retained command replayed on subscribe was counted when it was sent
            return
        with self._lock:
            self.count += 1

    def reset(self) -> int:
        with self._lock:
            value, self.count = self.count, 0
        return value

    def settled(self, quiet_seconds: float = 0.5, cap_seconds: float = 10.0) -> int:
        """The count once no message arrived for ``quiet_seconds`` (deliveries trail the job's end)."""
        deadline = time.monotonic() + cap_seconds
        last = -1
        while time.monotonic() < deadline:
            with self._lock:
                current = self.count
            if current == last:
                return current
            last = current
            time.sleep(quiet_seconds)
        return last

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# --- one rollout ---------------------------------------------------------------------------------------
@contextmanager
def local_stack(time_scale: float) -> Iterator[Any]:
    """The local runtime in this process on free ports, handler logs at WARNING."""
    from fleetwave.local.runtime import LocalConfig, LocalRuntime
    from fleetwave.local.serve_process import free_port

    config = LocalConfig(port=free_port(), aws_port=free_port(), mqtt_port=free_port(), time_scale=time_scale)
    with LocalRuntime(config) as runtime:
        yield runtime


def run_rollout(
    runtime: Any,
    writes: WriteCounter,
    size: int,
    *,
    percent: int,
    robot_seconds: float,
    time_scale: float,
    progress: Callable[[str], None],
) -> BenchResult:
    from fleetwave.sdk import FleetwaveClient, local_credentials

    client = FleetwaveClient(runtime.api_url, credentials=local_credentials(), timeout=120)
    fleet, version = _provision(runtime, client, size, progress)
    messages = MessageCounter(runtime.config.mqtt_url)
    simulator = _simulator(runtime, client, fleet, robot_seconds, time_scale)
    simulator.start()
    try:
        writes.reset()
        messages.reset()
        job = client.call("createDeploymentJob", _job_request(fleet, version, percent))
        described = _wait_for_end(client, job["arn"], progress, size)
        dynamodb_writes = writes.reset()
        mqtt_messages = messages.settled()
    finally:
        simulator.stop()
        messages.close()
    summary = described.get("robotDeploymentSummary") or []
    finish = makespan_seconds(described["createdAt"], (item.get("deploymentFinishTime") for item in summary))
    transitions = count_state_transitions(_history(runtime, job["arn"].rsplit("/", 1)[-1]))
    statuses = {item.get("status") for item in summary}
    progress(f"  {size} robots: job {described['status']}, robots {sorted(statuses)}")
    return BenchResult(
        robots=size,
        waves=waves_for(size, percent),
        status=described["status"],
        state_transitions=transitions,
        dynamodb_writes=dynamodb_writes,
        mqtt_messages=mqtt_messages,
        makespan_seconds=finish,
        robot_seconds=robot_seconds * time_scale,
    )


def _provision(
    runtime: Any, client: Any, size: int, progress: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fleet of ``size`` registered robots and an application version with an uploaded bundle."""
    import boto3

    suffix = uuid.uuid4().hex[:6]
    fleet = client.call("createFleet", {"name": f"bench-{size}-{suffix}"})
    width = len(str(size))
    started = time.monotonic()
    for i in range(1, size + 1):
        robot = client.call(
            "createRobot",
            {"name": f"bench-{suffix}-{i:0{width}d}", "architecture": "X86_64", "greengrassGroupId": "bench"},
        )
        client.call("registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})
        if i % 250 == 0:
            progress(f"  {size} robots: {i} registered")
    progress(f"  {size} robots registered in {time.monotonic() - started:.0f} s")
    s3 = boto3.client("s3", endpoint_url=runtime.aws_url, region_name="us-east-1")
    key = f"bench-{suffix}/bundle.tar.gz"
    s3.put_object(Bucket=runtime.config.bundle_bucket, Key=key, Body=b"bench bundle")
    application = client.call(
        "createRobotApplication",
        {
            "name": f"bench-{suffix}",
            "sources": [{"s3Bucket": runtime.config.bundle_bucket, "s3Key": key, "architecture": "X86_64"}],
            "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"},
        },
    )
    version = client.call("createRobotApplicationVersion", {"application": application["arn"]})
    return fleet, version


def _simulator(
    runtime: Any, client: Any, fleet: dict[str, Any], robot_seconds: float, time_scale: float
) -> Any:
    from fleetwave.local.simulator import BackgroundSimulator

    return BackgroundSimulator(
        client,
        fleet["name"],
        runtime.config.mqtt_url,
        {},
        default=f"delay:{robot_seconds:g}",
        time_scale=time_scale,
        poll_seconds=5.0,
    )


def _job_request(
    fleet: dict[str, Any], version: dict[str, Any], percent: int, **extensions: Any
) -> dict[str, Any]:
    return {
        "clientRequestToken": f"bench-{uuid.uuid4().hex[:12]}",
        "fleet": fleet["arn"],
        "deploymentConfig": {
            "concurrentDeploymentPercentage": percent,
            "robotDeploymentTimeoutInSeconds": ROBOT_TIMEOUT_SECONDS,
            **extensions,
        },
        "deploymentApplicationConfigs": [
            {
                "application": version["arn"],
                "applicationVersion": version["version"],
                "launchConfig": {"packageName": "bench", "launchFile": "bench.launch"},
            }
        ],
    }


# --- one rollout with rollout control (docs/extensions.md) ---------------------------------------------
HOLD_STATE = "Hold the rollout"


@dataclass(frozen=True)
class ControlResult:
    robots: int
    waves: int
    holds: int
    status: str
    state_transitions: int

    @property
    def expected_transitions(self) -> int:
        """docs/rollout.md: 6 + 3 per wave + 3 per hold, whatever the fleet's size."""
        return 6 + 3 * self.waves + 3 * self.holds

    def line(self) -> str:
        return (
            f"rollout control: {self.robots:,} robots, {self.waves} waves, an approval gate before every "
            f"wave after the first and one pause: job {self.status}, {self.holds} holds, "
            f"{self.state_transitions} state transitions (6 + 3 x {self.waves} waves + 3 x {self.holds} "
            f"holds = {self.expected_transitions})"
        )


def count_holds(events: Iterable[Mapping[str, Any]]) -> int:
    """How often an execution history entered the hold (an approval gate or a pause)."""
    return sum(
        1 for event in events if (event.get("stateEnteredEventDetails") or {}).get("name") == HOLD_STATE
    )


def run_controlled_rollout(
    runtime: Any,
    size: int,
    *,
    percent: int,
    robot_seconds: float,
    time_scale: float,
    progress: Callable[[str], None],
) -> ControlResult:
    """A job with a gate before every wave after the first, paused as soon as it is created; the operator
    (this loop) resumes it once the pause holds and approves each gate it reaches."""
    from fleetwave.sdk import FleetwaveClient, local_credentials

    client = FleetwaveClient(runtime.api_url, credentials=local_credentials(), timeout=120)
    fleet, version = _provision(runtime, client, size, progress)
    simulator = _simulator(runtime, client, fleet, robot_seconds, time_scale)
    simulator.start()
    try:
        job = client.call(
            "createDeploymentJob", _job_request(fleet, version, percent, approval={"after": "EveryWave"})
        )
        client.call("pauseDeploymentJob", {"job": job["arn"]})
        job_id = job["arn"].rsplit("/", 1)[-1]
        ended, deadline = 0, time.monotonic() + JOB_DEADLINE_SECONDS
        paused = True
        while True:
            described = client.call("describeDeploymentJob", {"job": job["arn"]})
            if described["status"] in ("Succeeded", "Failed", "Canceled"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"job {job['arn']} still {described['status']} after {JOB_DEADLINE_SECONDS:.0f} s"
                )
            waiting = described.get("waitingForApproval")
            if waiting:
                client.call("approveDeploymentWave", {"job": job["arn"], "wave": waiting["wave"]})
                progress(f"  rollout control: wave {waiting['wave']} approved")
                ended += 1
            elif paused and count_holds(_history(runtime, job_id)) > ended:
                # Holding, and not for an approval: the pause holds. Resume it.
                client.call("resumeDeploymentJob", {"job": job["arn"]})
                progress("  rollout control: resumed")
                paused, ended = False, ended + 1
            time.sleep(0.2)
    finally:
        simulator.stop()
    history = _history(runtime, job_id)
    return ControlResult(
        robots=size,
        waves=waves_for(size, percent),
        holds=count_holds(history),
        status=described["status"],
        state_transitions=count_state_transitions(history),
    )


def _wait_for_end(client: Any, arn: str, progress: Callable[[str], None], size: int) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    last_note = 0.0
    while True:
        described = client.call("describeDeploymentJob", {"job": arn})
        if described["status"] in ("Succeeded", "Failed", "Canceled"):
            return described
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {arn} still {described['status']} after {JOB_DEADLINE_SECONDS:.0f} s")
        if time.monotonic() - last_note > 10:
            done = sum(
                1
                for item in described.get("robotDeploymentSummary") or []
                if item.get("status") in ("InSync", "Failed", "NoResponse")
            )
            progress(f"  {size} robots: {described['status']}, {done} finished")
            last_note = time.monotonic()
        time.sleep(0.5)


def _history(runtime: Any, job_id: str) -> list[dict[str, Any]]:
    import boto3

    sfn = boto3.client("stepfunctions", endpoint_url=runtime.aws_url, region_name="us-east-1")
    machine = os.environ["FLEETWAVE_STATE_MACHINE_ARN"]
    execution = next(
        e["executionArn"]
        for e in sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]
        if e["name"] == job_id
    )
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


def run_bench(
    sizes: Sequence[int],
    *,
    percent: int = DEFAULT_PERCENT,
    robot_seconds: float = DEFAULT_ROBOT_SECONDS,
    time_scale: float = DEFAULT_TIME_SCALE,
    out: Any = sys.stdout,
) -> tuple[list[BenchResult], ControlResult | None]:
    def progress(text: str) -> None:
        print(text, file=out, flush=True)

    # Before the stack imports the handlers: their INFO lines (one per request) would bury the table.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    progress(
        f"fleetwave bench: fleets of {', '.join(f'{s:,}' for s in sizes)} robots, waves of {percent}%, "
        f"each robot {robot_seconds:g} s simulated x time scale {time_scale:g} = "
        f"{robot_seconds * time_scale:g} s"
    )
    writes = WriteCounter()
    # Installed before the stack starts, so the runtime's own wrapping (serialised moto) goes around it.
    writes.install()
    results = []
    control = None
    try:
        with local_stack(time_scale) as runtime:
            for size in sizes:
                results.append(
                    run_rollout(
                        runtime,
                        writes,
                        size,
                        percent=percent,
                        robot_seconds=robot_seconds,
                        time_scale=time_scale,
                        progress=progress,
                    )
                )
            if sizes:
                control = run_controlled_rollout(
                    runtime,
                    min(sizes),
                    percent=percent,
                    robot_seconds=robot_seconds,
                    time_scale=time_scale,
                    progress=progress,
                )
    finally:
        writes.uninstall()
    print("", file=out)
    print(format_table(results), file=out, flush=True)
    if control is not None:
        print("", file=out)
        print(control.line(), file=out, flush=True)
    return results, control


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", type=arguments.sizes, default=list(DEFAULT_SIZES), help="default: 10,100,1000"
    )
    parser.add_argument(
        "--percent", type=_percent, default=DEFAULT_PERCENT, help="wave size, %% of the fleet (default: 25)"
    )
    parser.add_argument(
        "--robot-seconds",
        type=_positive,
        default=DEFAULT_ROBOT_SECONDS,
        help="simulated seconds one robot takes to deploy (default: %(default)s)",
    )
    parser.add_argument(
        "--time-scale",
        type=_positive,
        default=DEFAULT_TIME_SCALE,
        help="multiplies every simulated duration and engine wait (default: %(default)s)",
    )


_positive = arguments.positive_number("must be greater than zero, not {text}")
_percent = arguments.whole_number(1, 100, "must be 1-100, not {value}")


def run(args: argparse.Namespace) -> int:
    results, control = run_bench(
        args.sizes, percent=args.percent, robot_seconds=args.robot_seconds, time_scale=args.time_scale
    )
    statuses = [r.status for r in results] + ([control.status] if control else [])
    return 0 if all(status == "Succeeded" for status in statuses) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fleetwave.bench", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
