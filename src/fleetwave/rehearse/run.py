"""Running a rehearsal: the real engine (the same ASL and handlers as in AWS) on the local stack in this
process, a simulated copy of the fleet, the planned job; then what happened, wave by wave.

The pieces are also what ``fleetwave bench`` runs its rollouts with: ``local_stack``, ``seed_fleet``,
``make_version``, ``start_job``, ``follow_job`` and ``read_outcome``.

Robots are written in bulk (the rows CreateRobot and RegisterRobot would write, 25 a request, without their
IoT things, which a rollout does not use): 10,000 are ready in seconds, where 20,000 signed API calls took
minutes. Everything a user would do goes through the signed API: the fleet, the application and its
version, the deployment job. The rollout is followed through the engine's own rows (a job row and one row
per wave, read twice a second), not through DescribeDeploymentJob, whose answer lists every robot.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetwave.rehearse.plan import RehearsalPlan

FINAL_JOB_STATUSES = ("Succeeded", "Failed", "Canceled")
FOLLOW_EVERY_SECONDS = 1.0
FINALIZE_WAIT_SECONDS = 30.0
BUNDLE_BUCKET_KEY = "rehearsal/{name}/{architecture}.tar.gz"
ABORTED = "RobotDeploymentAborted"


class RehearsalError(RuntimeError):
    """The rehearsal itself could not run (the stack, the API): one line."""


# --- the stack and what a user makes on it ------------------------------------------------------------------
@contextmanager
def local_stack(time_scale: float) -> Iterator[Any]:
    """The local runtime in this process on free ports, handler logs at WARNING (one line per request would
    bury the figures)."""
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from fleetwave.local.runtime import LocalConfig, LocalRuntime
    from fleetwave.local.serve_process import free_port

    config = LocalConfig(port=free_port(), aws_port=free_port(), mqtt_port=free_port(), time_scale=time_scale)
    with LocalRuntime(config) as runtime:
        yield runtime


def api_client(runtime: Any) -> Any:
    from fleetwave.sdk import FleetwaveClient, local_credentials

    return FleetwaveClient(runtime.api_url, credentials=local_credentials(), timeout=300)


def seed_fleet(client: Any, fleet_name: str, robots: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """CreateFleet, then the robots (name, architecture) registered in it, written in bulk."""
    from fleetwave_service.fleet import robots as fleet_robots
    from fleetwave_service.fleet import store

    fleet = client.call("createFleet", {"name": fleet_name})
    rows = [fleet_robots.new_robot_row(name, architecture, "rehearsal") for name, architecture in robots]
    store.put_registered_robots(rows, fleet["name"], fleet["arn"])
    return dict(fleet)


def make_version(runtime: Any, client: Any, name: str, architectures: Sequence[str]) -> dict[str, Any]:
    """A robot application with a (tiny) bundle per architecture in the embedded S3, and its version 1."""
    s3 = runtime.aws.client("s3")
    bucket = runtime.config.bundle_bucket
    sources = []
    for architecture in sorted(set(architectures)):
        key = BUNDLE_BUCKET_KEY.format(name=name, architecture=architecture.lower())
        s3.put_object(Bucket=bucket, Key=key, Body=f"{name} {architecture}".encode())
        sources.append({"s3Bucket": bucket, "s3Key": key, "architecture": architecture})
    application = client.call(
        "createRobotApplication",
        {"name": name, "sources": sources, "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"}},
    )
    return dict(client.call("createRobotApplicationVersion", {"application": application["arn"]}))


def start_job(
    client: Any, fleet_arn: str, version: dict[str, Any], deployment_config: dict[str, Any]
) -> dict:
    return dict(
        client.call(
            "createDeploymentJob",
            {
                "clientRequestToken": f"rehearsal-{uuid.uuid4().hex}",
                "fleet": fleet_arn,
                "deploymentConfig": deployment_config,
                "deploymentApplicationConfigs": [
                    {
                        "application": version["arn"],
                        "applicationVersion": version["version"],
                        "launchConfig": {"packageName": "rehearsal", "launchFile": "rehearsal.launch"},
                    }
                ],
            },
        )
    )


def job_id_of(job: dict[str, Any]) -> str:
    return str(job["arn"]).rsplit("/", 1)[-1]


# --- following the rollout ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """The rollout as the engine's rows say now."""

    status: str
    wave: int
    waves: int
    targets: int
    succeeded: int
    failed: int
    no_response: int
    waiting_for_approval: int | None = None  # the wave an approval gate holds, if one does
    # Finalize has recounted the job. It writes the status with the counts, but a job canceled through the
    # API reads Canceled before its finalize has stopped and counted its robots.
    recounted: bool = False

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.no_response

    @property
    def done(self) -> bool:
        return self.status in FINAL_JOB_STATUSES


def read_progress(job_id: str) -> Progress:
    from fleetwave_service.engine.ports import get_ports

    store = get_ports().store
    job = store.get_job(job_id) or {}
    totals = {"succeededCount": 0, "failedCount": int(job.get("prepareFailedCount", 0)), "noResponseCount": 0}
    for wave in store.waves(job_id):
        if int(wave.get("wave", 0)) >= 1:
            counts = wave.get("sweptCounts") or wave
            for name in totals:
                totals[name] += int(counts.get(name, 0))
    return Progress(
        status=str(job.get("status", "Pending")),
        wave=int(job.get("currentWave", 0)),
        waves=int(job.get("waveCount", 0)),
        targets=int(job.get("targetCount", 0)),
        succeeded=totals["succeededCount"],
        failed=totals["failedCount"],
        no_response=totals["noResponseCount"],
        waiting_for_approval=int((job.get("waitingForApproval") or {}).get("wave", 0)) or None,
        recounted=job.get("notReleasedCount") is not None,
    )


def follow_job(
    job_id: str,
    on_progress: Callable[[Progress], None],
    deadline_seconds: float,
    every: float = FOLLOW_EVERY_SECONDS,
    approve: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> Progress:
    """Read the rollout's progress until the job ends; RehearsalError past ``deadline_seconds``. An
    approval gate the job reaches is passed to ``approve`` (its wave), once. ``stop`` set: KeyboardInterrupt
    (raised here, between two reads, never in the middle of a call into the stack)."""
    deadline = time.monotonic() + deadline_seconds
    approved: set[int] = set()
    stop = stop or threading.Event()
    ended_at: float | None = None
    while True:
        stopped(stop)
        progress = read_progress(job_id)
        on_progress(progress)
        gate = progress.waiting_for_approval
        if approve is not None and gate is not None and gate not in approved:
            approve(gate)
            approved.add(gate)
        if progress.done:
            # A job the API canceled reads finished before its finalize has counted it: the outcome is read
            # once finalize has (or, should finalize keep failing, FINALIZE_WAIT_SECONDS after the status).
            ended_at = time.monotonic() if ended_at is None else ended_at
            if progress.recounted or time.monotonic() - ended_at >= FINALIZE_WAIT_SECONDS:
                return progress
            stop.wait(min(every, 0.1))
            continue
        if time.monotonic() > deadline:
            raise RehearsalError(f"job {job_id} still {progress.status} after {deadline_seconds:.0f} s")
        stop.wait(every)


def stopped(stop: threading.Event | None) -> None:
    """KeyboardInterrupt when ``stop`` is set (Ctrl-C: fleetwave.commands.rehearse)."""
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt


# --- what happened ------------------------------------------------------------------------------------------
@dataclass
class WaveOutcome:
    number: int
    size: int
    released_at: float | None = None
    ended_at: float | None = None
    in_sync: int = 0
    failed: int = 0
    no_response: int = 0
    aborted: int = 0  # in flight when the job stopped: told to abort (counted as failed)
    not_released: int = 0

    @property
    def wall_seconds(self) -> float | None:
        if self.released_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.released_at)


@dataclass
class Outcome:
    """A finished job as its rows say: status, failure, robots per wave, times (epoch seconds, wall)."""

    status: str
    failure_code: str | None
    failure_reason: str | None
    created_at: float
    finished_at: float
    waves: list[WaveOutcome]
    failed_before_release: int
    last_robot_finish: float | None
    robots: list[dict[str, Any]] = field(default_factory=list)

    @property
    def released_waves(self) -> list[WaveOutcome]:
        return [wave for wave in self.waves if wave.released_at is not None]

    @property
    def stopped_at_wave(self) -> int | None:
        """The wave at which the failure threshold stopped the job (None: it did not)."""
        if self.failure_code != "FailureThresholdBreached":
            return None
        released = self.released_waves
        return released[-1].number if released else None

    def count(self, attribute: str) -> int:
        return sum(getattr(wave, attribute) for wave in self.waves)


def read_outcome(job_id: str) -> Outcome:
    from fleetwave_service.engine.ports import get_ports

    store = get_ports().store
    job = store.get_job(job_id) or {}
    rows = list(store.job_robot_deployments(job_id))
    waves = {
        int(row["wave"]): WaveOutcome(
            number=int(row["wave"]),
            size=int(row.get("size", 0)),
            released_at=row.get("releasedAt"),
            ended_at=row.get("sweptAt"),
        )
        for row in store.waves(job_id)
        if int(row.get("wave", 0)) >= 1
    }
    before_release = 0
    last_finish: float | None = None
    for row in rows:
        number = int(row.get("wave", 0))
        finish = row.get("deploymentFinishTime")
        if number < 1 or number not in waves:
            before_release += 1
            continue
        wave = waves[number]
        status, code = row.get("status"), row.get("failureCode")
        if row.get("notReleased"):
            wave.not_released += 1
            continue
        if status == "InSync":
            wave.in_sync += 1
        elif status == "NoResponse":
            wave.no_response += 1
        elif status == "Failed":
            wave.failed += 1
            wave.aborted += code == ABORTED
        if finish is not None and status in ("InSync", "Failed", "NoResponse"):
            last_finish = finish if last_finish is None else max(last_finish, finish)
            if wave.ended_at is None or (wave.ended_at < finish and code != ABORTED):
                wave.ended_at = finish
    return Outcome(
        status=str(job.get("status")),
        failure_code=job.get("failureCode"),
        failure_reason=job.get("failureReason"),
        created_at=float(job.get("createdAt", 0)),
        finished_at=float(job.get("finishedAt") or job.get("createdAt") or 0),
        waves=[waves[number] for number in sorted(waves)],
        failed_before_release=before_release,
        last_robot_finish=last_finish,
        robots=rows,
    )


# --- memory -------------------------------------------------------------------------------------------
def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def tree_rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process and every process below it (Linux /proc; 0 elsewhere)."""
    root = os.getpid() if pid is None else pid
    total, pending = 0, [root]
    while pending:
        current = pending.pop()
        total += _rss_bytes(current)
        pending.extend(_children(current))
    return total


class PeakMemory:
    """Samples the resident memory of this process and its children until stopped; ``peak`` in bytes."""

    def __init__(self, every: float = 0.5) -> None:
        self.peak = tree_rss_bytes()
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_bytes())

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, tree_rss_bytes())


# --- a rehearsal --------------------------------------------------------------------------------------------
@dataclass
class Rehearsal:
    plan: RehearsalPlan
    outcome: Outcome
    setup_seconds: float  # stack started, fleet and application made
    total_seconds: float  # everything, setup included
    peak_rss: int
    endpoints: dict[str, str]
    # MQTT deliveries the local broker (amqtt) stopped waiting 5 s for the PUBACK of; sent all the same
    late_deliveries: int = 0

    @property
    def makespan_wall(self) -> float:
        """From the job's creation to its end, on this machine."""
        return max(0.0, self.outcome.finished_at - self.outcome.created_at)

    @property
    def predicted_makespan(self) -> float:
        """The rollout in real time: the job's time on this machine, its robots' part scaled back up."""
        return predicted_seconds(self.makespan_wall, self.ideal_seconds, self.plan.time_scale)

    def predicted_wave_seconds(self, wave: WaveOutcome) -> float | None:
        """One wave in real time, the same way (its planned robots' slowest time is its robots' part)."""
        waves = self.plan.waves()
        if wave.wall_seconds is None or not 1 <= wave.number <= len(waves):
            return None
        return predicted_seconds(
            wave.wall_seconds, self.plan.wave_seconds(waves[wave.number - 1]), self.plan.time_scale
        )

    @property
    def ideal_seconds(self) -> float:
        """Real time with an engine that costs nothing: each released wave's slowest robot, one by one."""
        released = {wave.number for wave in self.outcome.released_waves}
        return sum(
            self.plan.wave_seconds(wave)
            for number, wave in enumerate(self.plan.waves(), 1)
            if number in released
        )

    @property
    def engine_ms_per_robot(self) -> float:
        """The local engine's own time per robot: (makespan - ideal) / N, both on this machine's clock."""
        extra = self.makespan_wall - self.ideal_seconds * self.plan.time_scale
        return 1000 * max(0.0, extra) / max(1, len(self.plan.robots))


def predicted_seconds(wall: float, robots_real: float, time_scale: float) -> float:
    """Real time of a stretch that took ``wall`` seconds here, in which robots worked ``robots_real`` seconds
    of real time (scaled to ``robots_real x time_scale`` here).

    The robots' part is scaled back up; what the local engine added beyond it is kept as it was, not scaled:
    the engine's own work does not get slower at time scale 1 (with 10,000 robots at time scale 0.05 it is
    minutes here, and multiplying it by 20 would predict hours). It is this machine's engine, a single
    process on shared cores; the deployed engine spreads reports over concurrent Lambdas."""
    robots_wall = robots_real * time_scale
    engine = max(0.0, wall - robots_wall)
    return (wall - engine) / time_scale + engine


def rehearse(
    plan: RehearsalPlan,
    *,
    on_progress: Callable[[Progress], None] = lambda progress: None,
    on_stage: Callable[[str], None] = lambda text: None,
    deadline_seconds: float | None = None,
    stop: threading.Event | None = None,
) -> Rehearsal:
    """Run the plan on the local stack in this process, the robots in a process of their own
    (fleetwave.rehearse.robots); returns what happened. ``stop`` set (Ctrl-C) ends it between two steps
    with KeyboardInterrupt, which stops the robots and the stack on its way out: nothing keeps running."""
    from fleetwave.local.broker import LATE_ACKNOWLEDGEMENTS
    from fleetwave.rehearse.robots import RobotsProcess

    started = time.monotonic()
    # The broker's late-acknowledgement summaries would interleave with the progress display: the count
    # goes in the result instead.
    with (
        LATE_ACKNOWLEDGEMENTS.held() as late_deliveries,
        PeakMemory() as memory,
        local_stack(plan.time_scale) as runtime,
    ):
        endpoints = {"api": runtime.api_url, "aws": runtime.aws_url, "mqtt": runtime.mqtt_url}
        on_stage(f"local stack: API {runtime.api_url}  AWS {runtime.aws_url}  MQTT {runtime.mqtt_url}")
        client = api_client(runtime)
        robots = [(robot.name, robot.architecture) for robot in plan.robots]
        fleet = seed_fleet(client, plan.fleet_name, robots)
        version = make_version(runtime, client, plan.fleet_name, [a for _, a in robots])
        setup = time.monotonic() - started
        on_stage(f"{len(robots):,} robots ready in {setup:.1f} s")
        simulator = RobotsProcess(
            plan.fleet_name,
            {robot.name: robot.behavior for robot in plan.robots},
            plan.time_scale,
            runtime.mqtt_url,
        )
        try:
            stopped(stop)
            simulator.wait_ready(stop=stop)
            stopped(stop)
            on_stage(f"{len(robots):,} simulated robots listening (process {simulator.process.pid})")
            job = start_job(client, fleet["arn"], version, plan.deployment_config)
            on_stage(f"deployment job {job_id_of(job)} created")
            limit = deadline_seconds or rehearsal_deadline(plan)

            def approve(wave: int) -> None:
                # An approval gate in the deploymentConfig: the rehearsal approves it at once, as an operator
                # who is there would; the wait it adds in real life is the operator's.
                client.call("approveDeploymentWave", {"job": job["arn"], "wave": wave})
                on_stage(f"approval gate before wave {wave}: approved at once")

            follow_job(job_id_of(job), on_progress, limit, approve=approve, stop=stop)
            outcome = read_outcome(job_id_of(job))
        finally:
            simulator.stop()
        late = late_deliveries()
    return Rehearsal(plan, outcome, setup, time.monotonic() - started, memory.peak, endpoints, late)


def rehearsal_deadline(plan: RehearsalPlan) -> float:
    """A cap on waiting for the job (never an expectation): every wave held for the robot timeout, scaled,
    plus generous room for the local engine."""
    return len(plan.waves()) * (plan.robot_timeout * plan.time_scale + 120) + 600


class StaticFleet:
    """The rehearsal's fleet as the simulator reads it: the robots it was made with (it does not change)."""

    def __init__(self, fleet_name: str, names: list[str]) -> None:
        self.fleet_name = fleet_name
        self._names = names

    def robots(self) -> list[str]:
        return list(self._names)
