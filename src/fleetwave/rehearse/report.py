"""What a rehearsal prints: the plan, a progress bar while it runs (rich on a terminal, a plain line every
few seconds otherwise), and the prediction."""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from fleetwave.rehearse.plan import RehearsalPlan
from fleetwave.rehearse.run import Progress, Rehearsal

MIB = 1024 * 1024


def duration_text(seconds: float) -> str:
    """``812.4 s (13 min 32 s)``; under a minute just the seconds."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    spelled = f"{hours} h {minutes} min" if hours else f"{minutes} min {rest} s"
    return f"{seconds:.1f} s ({spelled})"


def plan_lines(plan: RehearsalPlan) -> list[str]:
    mix = ", ".join(f"{name} {count:,}" for name, count in sorted(plan.architectures.items()))
    behaviour = [str(plan.duration) if plan.duration else ""]
    if plan.failure_rate:
        behaviour.append(f"{plan.failure_rate:g}% fail ({plan.failure_code})")
    if plan.silence_rate:
        behaviour.append(f"{plan.silence_rate:g}% silent")
    if plan.seed is not None:
        behaviour.append(f"seed {plan.seed}")
    waves = plan.waves()
    source = f" from {plan.source}" if plan.source else ""
    lines = [
        f"fleetwave rehearse: {len(plan.robots):,} robots ({mix}){source}",
        "  robots: " + ", ".join(part for part in behaviour if part),
        f"  deploymentConfig: {json.dumps(plan.deployment_config, sort_keys=True)}",
        f"  {len(waves)} waves of up to {max((len(w) for w in waves), default=0):,} robots; time scale "
        f"{plan.time_scale:g}: a {plan.robot_timeout:,} s robot timeout lasts "
        f"{plan.robot_timeout * plan.time_scale:g} s here",
    ]
    if plan.silence_rate and any(robot.silent for robot in plan.robots):
        lines.append(
            f"  note: a wave with a silent robot waits for the robot timeout, "
            f"{duration_text(plan.robot_timeout * plan.time_scale)} here"
        )
    return lines


class ProgressView:
    """A bar on a terminal (rich), else one plain line per change of wave and at most every few seconds."""

    def __init__(self, out: TextIO, total: int, *, interactive: bool, plain_every: float = 5.0) -> None:
        self._out = out
        self._total = total
        self._interactive = interactive
        self._plain_every = plain_every
        self._last: tuple[str, int] = ("", -1)
        self._last_time = 0.0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressView:
        if self._interactive:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=Console(file=self._out),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("preparing", total=self._total, counts="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def stage(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            self._out.write(text + "\n")
            self._out.flush()

    def update(self, progress: Progress) -> None:
        counts = (
            f"InSync {progress.succeeded:,}  Failed {progress.failed:,}  NoResponse {progress.no_response:,}"
        )
        where = f"wave {progress.wave}/{progress.waves}" if progress.waves else progress.status
        if self._bar is not None:
            self._bar.update(self._task, description=where, completed=progress.finished, counts=counts)
            return
        now = time.monotonic()
        stage = (progress.status, progress.wave)
        if stage != self._last or now - self._last_time >= self._plain_every or progress.done:
            self._last, self._last_time = stage, now
            self.stage(
                f"  {progress.status}  {where}  {progress.finished:,}/{self._total:,} finished  {counts}"
            )


def result_lines(rehearsal: Rehearsal) -> list[str]:
    plan, outcome = rehearsal.plan, rehearsal.outcome
    waves = plan.waves()
    if outcome.status == "Succeeded":
        headline = f"Result: the job would succeed, {len(outcome.released_waves)} waves"
    else:
        where = f" at wave {outcome.stopped_at_wave} of {len(waves)}" if outcome.stopped_at_wave else ""
        reason = f': "{outcome.failure_reason}"' if outcome.failure_reason else ""
        headline = f"Result: the job would end {outcome.status} ({outcome.failure_code}){where}{reason}"
    lines = [headline]
    if outcome.stopped_at_wave:
        lines.append(
            f"  the failure threshold stops it at wave {outcome.stopped_at_wave}: later waves never start"
        )
    header = ("wave", "robots", "InSync", "Failed", "NoResponse", "aborted", "not released", "predicted s")
    rows = [header]
    for wave in outcome.waves:
        predicted = rehearsal.predicted_wave_seconds(wave)
        rows.append(
            (
                str(wave.number),
                f"{wave.size:,}",
                f"{wave.in_sync:,}",
                f"{wave.failed:,}",
                f"{wave.no_response:,}",
                f"{wave.aborted:,}",
                f"{wave.not_released:,}",
                "-" if predicted is None else f"{predicted:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += [
        "  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    ]
    failed = outcome.count("failed") + outcome.failed_before_release
    lines.append(
        f"Robots: {outcome.count('in_sync'):,} InSync, {failed:,} Failed "
        f"({outcome.count('aborted'):,} of them aborted in flight, {outcome.failed_before_release:,} before "
        f"release), {outcome.count('no_response'):,} NoResponse (timed out), "
        f"{outcome.count('not_released'):,} never released"
    )
    lines.append(
        f"Predicted makespan: {duration_text(rehearsal.predicted_makespan)} in real time "
        f"(job created to job ended: the robots' time scaled back up, this machine's engine time as it was); "
        f"{duration_text(rehearsal.ideal_seconds)} with an engine that costs nothing "
        "(each wave's slowest robot)"
    )
    lines.append(
        f"This rehearsal: {rehearsal.makespan_wall:.1f} s of rollout at time scale {plan.time_scale:g} "
        f"(local engine {rehearsal.engine_ms_per_robot:.1f} ms per robot), "
        f"{rehearsal.total_seconds:.1f} s in all with {rehearsal.setup_seconds:.1f} s of setup, "
        f"peak memory {rehearsal.peak_rss / MIB:,.0f} MiB"
    )
    if rehearsal.late_deliveries:
        lines.append(
            f"Local MQTT: {rehearsal.late_deliveries:,} deliveries acknowledged after the local broker's 5 s "
            "wait (all were sent: the simulated robots' one connection and the status bridge acknowledge a "
            "wave's burst slowly)"
        )
    return lines


def as_json(rehearsal: Rehearsal) -> dict[str, Any]:
    plan, outcome = rehearsal.plan, rehearsal.outcome
    return {
        "robots": len(plan.robots),
        "architectures": plan.architectures,
        "deploymentConfig": plan.deployment_config,
        "timeScale": plan.time_scale,
        "status": outcome.status,
        "failureCode": outcome.failure_code,
        "failureReason": outcome.failure_reason,
        "stoppedAtWave": outcome.stopped_at_wave,
        "waves": [
            {
                "wave": wave.number,
                "robots": wave.size,
                "inSync": wave.in_sync,
                "failed": wave.failed,
                "noResponse": wave.no_response,
                "aborted": wave.aborted,
                "notReleased": wave.not_released,
                "predictedSeconds": rehearsal.predicted_wave_seconds(wave),
            }
            for wave in outcome.waves
        ],
        "failedBeforeRelease": outcome.failed_before_release,
        "predictedMakespanSeconds": rehearsal.predicted_makespan,
        "idealSeconds": rehearsal.ideal_seconds,
        "makespanWallSeconds": rehearsal.makespan_wall,
        "engineMsPerRobot": rehearsal.engine_ms_per_robot,
        "setupSeconds": rehearsal.setup_seconds,
        "totalSeconds": rehearsal.total_seconds,
        "peakRssBytes": rehearsal.peak_rss,
        "lateMqttDeliveries": rehearsal.late_deliveries,
    }
