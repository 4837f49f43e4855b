"""`make bench` / `python -m fleetwave.bench`: what one rollout costs, on simulated fleets of 10, 100, 1,000.

Per fleet size it runs one rollout (waves of --percent, every robot the real agent with a fixed simulated
duration) with the local stack in this process and the robots in a process of their own (what `fleetwave
rehearse` runs), and prints:

- state transitions per deployment: states entered, from the execution history (Step Functions bills these);
- DynamoDB writes per robot: item writes during the job (PutItem, UpdateItem, DeleteItem, each item of a
  BatchWriteItem, each Put/Update/Delete of a TransactWriteItems), counted at moto's DynamoDB backend in
  this process, outermost call only, whichever way the request came in;
- MQTT messages per robot: messages published on the robot topics (commands down, reports up), counted
  by the embedded broker as it accepts them from their publishers;
- makespan / ideal: from job creation to the last robot's finish, divided by waves x robot time (what a
  rollout with a free engine would take), and the local engine's time per robot, (makespan - ideal) / N;
- peak resident memory of the whole local stack plus the simulated robots, during the rollout.

Then, once: API throughput, 8 concurrent signed clients (in another process) calling DescribeRobot; and
the cold import of each Lambda function's handler module (import, then the lookup of the handler's name),
and of the API function with a first request of each front door (whose routes load with it), divided by
``import boto3`` in the same round (each in a fresh interpreter, in CPU time; several paired rounds, medians).

Also one rollout with rollout control on the smallest fleet: an approval gate before every wave after the
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
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetwave.commands import arguments

DEFAULT_SIZES = (10, 100, 1000)
DEFAULT_PERCENT = 25
DEFAULT_ROBOT_SECONDS = 20.0  # simulated; x time scale = real seconds per robot
DEFAULT_TIME_SCALE = 0.05
# RoboMaker's default (5 h): a robot never times out here, whatever the machine's load.
ROBOT_TIMEOUT_SECONDS = 18000
# A cap, not an expectation: a 1,000-robot rollout takes well under a minute on a quiet laptop.
JOB_DEADLINE_SECONDS = 1800.0
API_CLIENTS = 8
API_SECONDS = 5.0
IMPORT_RUNS = 9  # paired rounds: this shared machine's speed wanders by a third from one import to the next
MIB = 1024 * 1024
WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items")
ROBOT_TOPIC_PREFIX = "fleetwave/robots/"


# --- figures (pure; tested in tests/unit/cli/test_bench.py) ----------------------------------------------
def count_state_transitions(events: Iterable[Mapping[str, Any]]) -> int:
    """States entered in an execution history (``TaskStateEntered``, ``ChoiceStateEntered``, ...)."""
    return sum(1 for event in events if str(event.get("type", "")).endswith("StateEntered"))


def transact_writes(transact_items: Sequence[Mapping[str, Any]]) -> int:
    """Writes in a TransactWriteItems call: a ConditionCheck reads, every other action writes one item."""
    return len(_written_keys("transact_write_items", (transact_items,), {}))


def row_kind(pk: str, sk: str) -> str:
    """Which kind of row a key names, for the writes-per-robot breakdown (docs/rollout.md, "Rows")."""
    if sk == "ROBOT":
        return "robot"
    if pk.startswith("JOB#"):
        if sk == "JOB":
            return "job"
        if sk.startswith("ROBOT#"):
            return "job's robot row"
        return sk.split("#", 1)[0].lower()
    return pk.split("#", 1)[0].lower()


def _written_keys(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The keys (attribute values: ``{"pk": {"S": ...}, ...}``) a moto backend write call writes."""
    if name == "transact_write_items":
        items = kwargs.get("transact_items", args[0] if args else [])
        return [
            action.get("Item") or action.get("Key") or {}
            for item in items
            for kind, action in item.items()
            if kind != "ConditionCheck"
        ]
    field = "item_attrs" if name == "put_item" else "key"
    return [kwargs.get(field, args[1] if len(args) > 1 else {})]


def _kind_of(key: Mapping[str, Any]) -> str:
    def text(attribute: str) -> str:
        value = key.get(attribute) or {}
        return str(value.get("S", "")) if isinstance(value, Mapping) else ""

    return row_kind(text("pk"), text("sk"))


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
    peak_rss: int = 0  # bytes: the local stack and the simulated robots, during the rollout

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

    @property
    def engine_ms_per_robot(self) -> float:
        """The local engine's own time per robot: (makespan - ideal) / N."""
        return (
            1000 * max(0.0, self.makespan_seconds - self.ideal_seconds) / self.robots if self.robots else 0.0
        )


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
    "engine ms/robot",
    "peak RSS MiB",
)


def table_rows(results: Iterable[BenchResult]) -> list[tuple[str, ...]]:
    return [
        (
            f"{r.robots:,}",
            str(r.waves),
            r.status,
            str(r.state_transitions),
            f"{r.writes_per_robot:.2f}",
            f"{r.messages_per_robot:.1f}",
            f"{r.makespan_seconds:.1f}",
            f"{r.ideal_seconds:.1f}",
            f"{r.makespan_ratio:.2f}",
            f"{r.engine_ms_per_robot:.1f}",
            f"{r.peak_rss / MIB:,.0f}",
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
    transaction and batch code call put_item and friends internally. ``by_row``: the same writes by the kind
    of row written (``row_kind``); ``reset`` leaves what it cleared in ``last_by_row``."""

    def __init__(self) -> None:
        self.count = 0
        self.by_row: Counter[str] = Counter()
        self.last_by_row: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._originals: dict[str, Callable[..., Any]] = {}

    def reset(self) -> int:
        with self._lock:
            value, self.count = self.count, 0
            self.last_by_row, self.by_row = self.by_row, Counter()
        return value

    def _add(self, kinds: list[str]) -> None:
        with self._lock:
            self.count += len(kinds)
            self.by_row.update(kinds)

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
                counter._add([_kind_of(key) for key in _written_keys(name, args, kwargs)])
            return result

        counted.__wrapped__ = original  # type: ignore[attr-defined]
        return counted


class MessageCounter:
    """Counts messages on the robot topics (``fleetwave/robots/...``: commands down, reports up) as the
    embedded broker accepts them from their publishers, by the topic's last level. At the broker, not as
    one more subscriber: a subscriber to every robot topic doubled the broker's deliveries and ran a client
    in the bench's process, which made the engine it measures look slower."""

    def __init__(self, broker: Any) -> None:
        self.count = 0
        self.by_topic: dict[str, int] = {}  # by the topic's last level: command, status, ...
        self._lock = threading.Lock()
        self._broker = broker
        broker.on_publish(self._published)

    def _published(self, topic: str) -> None:
        if not topic.startswith(ROBOT_TOPIC_PREFIX):
            return
        kind = topic.rsplit("/", 1)[-1]
        with self._lock:
            self.count += 1
            self.by_topic[kind] = self.by_topic.get(kind, 0) + 1

    def reset(self) -> int:
        with self._lock:
            value, self.count = self.count, 0
            self.by_topic = {}
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
        self._broker.on_publish(None)


# --- one rollout ---------------------------------------------------------------------------------------
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
    from fleetwave.rehearse.plan import Duration, make_plan, synthetic_fleet
    from fleetwave.rehearse.robots import RobotsProcess
    from fleetwave.rehearse.run import (
        PeakMemory,
        api_client,
        follow_job,
        job_id_of,
        make_version,
        read_outcome,
        seed_fleet,
        start_job,
    )

    client = api_client(runtime)
    suffix = uuid.uuid4().hex[:6]
    plan = make_plan(
        synthetic_fleet(size, [("X86_64", 100.0)], prefix=f"bench-{suffix}"),
        deployment_config={
            "concurrentDeploymentPercentage": percent,
            "robotDeploymentTimeoutInSeconds": ROBOT_TIMEOUT_SECONDS,
        },
        time_scale=time_scale,
        duration=Duration("fixed", robot_seconds),
        fleet_name=f"bench-{size}-{suffix}",
        limit=max(size, 1),
    )
    started = time.monotonic()
    fleet = seed_fleet(client, plan.fleet_name, [(r.name, r.architecture) for r in plan.robots])
    version = make_version(runtime, client, plan.fleet_name, ["X86_64"])
    progress(f"  {size:,} robots ready in {time.monotonic() - started:.1f} s")
    broker = runtime.component("mqtt")
    if broker is None:
        raise RuntimeError("make bench counts MQTT messages at the embedded broker: this stack runs none")
    messages = MessageCounter(broker)
    robots = RobotsProcess(
        plan.fleet_name, {r.name: r.behavior for r in plan.robots}, time_scale, runtime.mqtt_url
    )
    try:
        robots.wait_ready()
        with PeakMemory() as memory:
            writes.reset()
            messages.reset()
            job = start_job(client, fleet["arn"], version, plan.deployment_config)
            last_note = [0.0]

            def note(state: Any) -> None:
                if time.monotonic() - last_note[0] > 10:
                    progress(f"  {size:,} robots: {state.status}, {state.finished:,} finished")
                    last_note[0] = time.monotonic()

            follow_job(job_id_of(job), note, JOB_DEADLINE_SECONDS)
            dynamodb_writes = writes.reset()
            by_row = writes.last_by_row
            mqtt_messages = messages.settled()
    finally:
        robots.stop()
        messages.close()
    outcome = read_outcome(job_id_of(job))
    finish = makespan_seconds(outcome.created_at, (row.get("deploymentFinishTime") for row in outcome.robots))
    transitions = count_state_transitions(_history(runtime, job_id_of(job)))
    statuses = sorted({str(row.get("status")) for row in outcome.robots})
    progress(f"  {size:,} robots: job {outcome.status}, robots {statuses}")
    per_topic = ", ".join(f"{kind} {n / size:.2f}" for kind, n in sorted(messages.by_topic.items()))
    progress(f"  {size:,} robots: MQTT messages per robot by topic: {per_topic}")
    per_row = ", ".join(f"{kind} {n / size:.2f}" for kind, n in by_row.most_common())
    progress(f"  {size:,} robots: DynamoDB writes per robot by row: {per_row}")
    return BenchResult(
        robots=size,
        waves=waves_for(size, percent),
        status=outcome.status,
        state_transitions=transitions,
        dynamodb_writes=dynamodb_writes,
        mqtt_messages=mqtt_messages,
        makespan_seconds=finish,
        robot_seconds=robot_seconds * time_scale,
        peak_rss=memory.peak,
    )


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
    from fleetwave.rehearse.plan import synthetic_fleet
    from fleetwave.rehearse.robots import RobotsProcess
    from fleetwave.rehearse.run import api_client, job_id_of, make_version, seed_fleet, start_job

    client = api_client(runtime)
    name = f"bench-control-{uuid.uuid4().hex[:6]}"
    robots = synthetic_fleet(size, [("X86_64", 100.0)], prefix=name)
    fleet = seed_fleet(client, name, robots)
    version = make_version(runtime, client, name, ["X86_64"])
    simulator = RobotsProcess(
        name, {robot: f"delay:{robot_seconds:g}" for robot, _ in robots}, time_scale, runtime.mqtt_url
    )
    try:
        simulator.wait_ready()
        job = start_job(
            client,
            fleet["arn"],
            version,
            {
                "concurrentDeploymentPercentage": percent,
                "robotDeploymentTimeoutInSeconds": ROBOT_TIMEOUT_SECONDS,
                "approval": {"after": "EveryWave"},
            },
        )
        client.call("pauseDeploymentJob", {"job": job["arn"]})
        job_id = job_id_of(job)
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


# --- API throughput and cold imports ----------------------------------------------------------------------
_API_CLIENTS_SCRIPT = """
import json, sys, threading, time
from fleetwave.sdk import FleetwaveClient
url, robot, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
done, failed = [0] * clients, [0] * clients
def run(i):
    client = FleetwaveClient(url, credentials=("testing", "testing"))
    client.request("describeRobot", {"robot": robot})  # connect first
    start.wait()
    while time.monotonic() < stop:
        ok = client.request("describeRobot", {"robot": robot}).status == 200
        done[i] += ok
        failed[i] += not ok
start = threading.Event()
threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
for thread in threads:
    thread.start()
began = time.monotonic()
stop = began + seconds
start.set()
for thread in threads:
    thread.join()
print(json.dumps({"ok": sum(done), "failed": sum(failed), "seconds": time.monotonic() - began}))
"""


@dataclass(frozen=True)
class ApiThroughput:
    clients: int
    requests: int
    failed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def api_throughput(runtime: Any, clients: int = API_CLIENTS, seconds: float = API_SECONDS) -> ApiThroughput:
    """``clients`` signed clients, each on its own connection and thread, in a process of their own (so their
    signing is not the server's work), calling DescribeRobot as fast as they get answers."""
    import json
    import subprocess

    from fleetwave.rehearse.run import api_client

    robot = api_client(runtime).call(
        "createRobot",
        {"name": f"bench-api-{uuid.uuid4().hex[:6]}", "architecture": "X86_64", "greengrassGroupId": "b"},
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _API_CLIENTS_SCRIPT,
            runtime.api_url,
            robot["arn"],
            str(clients),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return ApiThroughput(clients, answer["ok"], answer["failed"], answer["seconds"])


# A first request per front door for the API function (``module.attribute+front door``): refused by the
# request's validation before any AWS call, so the child needs no AWS, and it builds what a first request of
# that front door builds (its routes, its request model, Powertools' validation of it).
FIRST_REQUESTS = {
    "robomaker": ("POST", "/createFleet", '{"name": ""}', None),
    "greengrass": ("GET", "/greengrass/v2/deployments", None, {"maxResults": "0"}),
}
_FIRST_REQUEST = """
class _Context:
    function_name = "fleetwave-api"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fleetwave-api"
    aws_request_id = "cold-start"
    def get_remaining_time_in_millis(self):
        return 30000
_method, _path, _body, _query = {request!r}
_answer = _handler({{
    "httpMethod": _method, "path": _path, "resource": "/{{proxy+}}", "body": _body, "isBase64Encoded": False,
    "headers": {{"content-type": "application/json"}}, "multiValueHeaders": {{}},
    "queryStringParameters": _query,
    "multiValueQueryStringParameters": {{k: [v] for k, v in _query.items()}} if _query else None,
    "requestContext": {{"requestId": "cold-start", "stage": "prod"}}, "pathParameters": None,
}}, _Context())
assert _answer["statusCode"] == 400, _answer
"""


def _import_child(handler: str) -> str:
    """The code a fresh interpreter runs to import ``handler`` (``boto3``, a module, or ``module.attribute``
    of a Lambda handler, looked up as the Lambda runtime does at a cold start; ``module.attribute+robomaker``:
    then the API function's first request of that front door, ``FIRST_REQUESTS``) and print its CPU time."""
    handler, _, front_door = handler.partition("+")
    module, _, attribute = handler.rpartition(".") if handler != "boto3" else (handler, "", "")
    clock = "time.process_time()"
    lines = ["import sys, time", f"t = {clock}", f"import {module}"]
    if attribute:
        lines.append(f"_handler = getattr(sys.modules[{module!r}], {attribute!r})")
    if front_door:
        lines.append(_FIRST_REQUEST.format(request=FIRST_REQUESTS[front_door]))
    lines.append(f"print({clock} - t)")
    return "\n".join(lines)


def import_seconds(handler: str) -> float:
    """One cold import of ``handler`` in a fresh interpreter (no bytecode written), in the child's CPU time:
    on a shared machine wall time wanders with the load by more than any change to the imports
    (docs/performance.md, cold import)."""
    import subprocess

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "POWERTOOLS_LOG_LEVEL": "ERROR"}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    child = subprocess.run(
        [sys.executable, "-c", _import_child(handler)], capture_output=True, text=True, check=True, env=env
    )
    return float(child.stdout)


@dataclass(frozen=True)
class ColdImport:
    """A handler's cold import against ``import boto3``: medians over paired rounds."""

    module: str
    seconds: float  # median of the handler's own runs
    ratio: float  # median of the rounds' ratios, each to the ``import boto3`` of the same round


def cold_imports(
    handlers: Mapping[str, str], runs: int = IMPORT_RUNS, measure: Callable[[str], float] = import_seconds
) -> tuple[float, dict[str, ColdImport]]:
    """``runs`` rounds; each imports boto3, then each handler followed by boto3 again, and divides a
    handler's time by the mean of the two boto3 imports either side of it (the CPU's speed, shared with
    other work, drifts within seconds; paired, the drift cancels, where medians taken a minute apart compare
    different machines). Returns the median ``import boto3`` and, per function, its median time and ratio."""
    import statistics

    boto3_times: list[float] = []
    times: dict[str, list[float]] = {name: [] for name in handlers}
    ratios: dict[str, list[float]] = {name: [] for name in handlers}
    for _ in range(runs):
        before = measure("boto3")
        boto3_times.append(before)
        for name, handler in handlers.items():
            seconds = measure(handler)
            after = measure("boto3")
            boto3_times.append(after)
            times[name].append(seconds)
            ratios[name].append(seconds / ((before + after) / 2))
            before = after
    return statistics.median(boto3_times), {
        name: ColdImport(handler, statistics.median(times[name]), statistics.median(ratios[name]))
        for name, handler in handlers.items()
    }


def handler_modules(first_requests: bool = True) -> dict[str, str]:
    """Each Lambda function and its handler, ``module.attribute`` (fleetwave_service.lambdas); and the API
    function again with a first request of each front door (its routes join the resolver with the first
    request for them, so the import alone leaves them out)."""
    from fleetwave_service.lambdas import LAMBDAS

    handlers = {function.name: function.handler for function in LAMBDAS}
    if first_requests:
        api = handlers["api"]
        handlers.update(
            {f"api + first {front_door} request": f"{api}+{front_door}" for front_door in FIRST_REQUESTS}
        )
    return handlers


def format_imports(boto3_seconds: float, imports: Mapping[str, ColdImport], runs: int = IMPORT_RUNS) -> str:
    lines = [
        f"cold import, {runs} paired rounds (each function against the import boto3 around it, medians): "
        f"import boto3 {boto3_seconds * 1000:.0f} ms"
    ]
    width = max(len(name) for name in imports)
    for name, cold in imports.items():
        figure = f"{cold.seconds * 1000:.0f} ms = {cold.ratio:.2f} x import boto3"
        lines.append(f"  {name:<{width}}  {cold.module}  {figure}")
    return "\n".join(lines)


def run_bench(
    sizes: Sequence[int],
    *,
    percent: int = DEFAULT_PERCENT,
    robot_seconds: float = DEFAULT_ROBOT_SECONDS,
    time_scale: float = DEFAULT_TIME_SCALE,
    out: Any = sys.stdout,
    extras: bool = True,
    api_seconds: float = API_SECONDS,
    import_runs: int = IMPORT_RUNS,
) -> tuple[list[BenchResult], ControlResult | None]:
    from fleetwave.local.broker import LATE_ACKNOWLEDGEMENTS
    from fleetwave.rehearse.run import local_stack

    def progress(text: str) -> None:
        print(text, file=out, flush=True)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    progress(
        f"fleetwave bench: fleets of {', '.join(f'{s:,}' for s in sizes)} robots, waves of {percent}%, "
        f"each robot {robot_seconds:g} s simulated x time scale {time_scale:g} = "
        f"{robot_seconds * time_scale:g} s; machine load {load[0]:.2f} (1 min), {os.cpu_count()} CPUs"
    )
    results = []
    control: ControlResult | None = None
    throughput: ApiThroughput | None = None
    writes = WriteCounter()
    # The broker's late-acknowledgement summaries would interleave with the progress lines: counted instead.
    with LATE_ACKNOWLEDGEMENTS.held() as late_deliveries, local_stack(time_scale) as runtime:
        # Installed once the stack serialises moto's DynamoDB: the counter is the outermost wrapper, so it
        # counts each request's writes once, whichever path (HTTP, in process, moto's own shortcuts) it took.
        writes.install()
        try:
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
        finally:
            writes.uninstall()
        if sizes:
            control = run_controlled_rollout(
                runtime,
                min(sizes),
                percent=percent,
                robot_seconds=robot_seconds,
                time_scale=time_scale,
                progress=progress,
            )
        if extras:
            throughput = api_throughput(runtime, seconds=api_seconds)
        late = late_deliveries()
    print("", file=out)
    print(format_table(results), file=out, flush=True)
    if late:
        print(
            f"local MQTT: {late:,} deliveries acknowledged after the local broker's 5 s wait (all were sent)",
            file=out,
        )
    if control is not None:
        print("", file=out)
        print(control.line(), file=out, flush=True)
    if extras and throughput is not None:
        print(
            f"\nAPI: {throughput.clients} signed clients, DescribeRobot for {throughput.seconds:.0f} s: "
            f"{throughput.per_second:,.0f} requests/s ({throughput.failed} failed)",
            file=out,
        )
        boto3_seconds, imports = cold_imports(handler_modules(), import_runs)
        print(format_imports(boto3_seconds, imports, import_runs), file=out, flush=True)
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
    parser.add_argument(
        "--api-seconds",
        type=_positive,
        default=API_SECONDS,
        help=f"how long the {API_CLIENTS} signed clients call the API (default: %(default)s)",
    )
    parser.add_argument(
        "--import-runs",
        type=_runs,
        default=IMPORT_RUNS,
        help="paired rounds of cold imports (boto3, every function, boto3), each import in a fresh "
        "interpreter; medians are printed (default: %(default)s)",
    )


_positive = arguments.positive_number("must be greater than zero, not {text}")
_percent = arguments.whole_number(1, 100, "must be 1-100, not {value}")
_runs = arguments.whole_number(1, 100, "must be 1-100, not {value}")


def run(args: argparse.Namespace) -> int:
    results, control = run_bench(
        args.sizes,
        percent=args.percent,
        robot_seconds=args.robot_seconds,
        time_scale=args.time_scale,
        api_seconds=args.api_seconds,
        import_runs=args.import_runs,
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
