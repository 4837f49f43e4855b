"""Showing rollouts: a live view while one runs (rich on a terminal, plain lines otherwise) and the demo's
summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fleetwave.watch.view import FAILED_ROBOT_STATUSES, JobView


def make_console() -> Any:
    from rich.console import Console

    # Off a terminal (make, CI, a pipe) rich would wrap at 80 columns: wide enough for the tables instead.
    if sys.stdout.isatty():
        return Console()
    return Console(width=160, no_color=True)


class ProgressDisplay:
    """A live rich view on a terminal; periodic plain lines otherwise (make, CI, a pipe)."""

    def __init__(self, console: Any, architectures: Mapping[str, str], plain_every: float = 2.0) -> None:
        self.console = console
        self.architectures = architectures
        self.interactive = bool(console.is_terminal)
        self._plain_every = plain_every
        self._last_line = ""
        self._last_stage: tuple[str, int] = ("", 0)
        self._last_print = 0.0
        self._reported: set[str] = set()
        self._live: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self.interactive:
            from rich.live import Live

            self._live = Live(console=self.console, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, view: JobView) -> None:
        if self._live is not None:
            self._live.update(self.render(view))
            return
        self._plain(view)

    def render(self, view: JobView) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        total = len(view.robots)
        header = Text.assemble(
            (f"{view.label} ", "bold"),
            f"{view.arn.rsplit('/', 1)[-1]}  ",
            ("status ", "dim"),
            (view.status, _status_style(view.status)),
            ("  wave ", "dim") if view.wave_count else "",
            f"{view.current_wave} of {view.wave_count}" if view.wave_count else "",
        )
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=max(total, 1), completed=view.finished, width=40),
            Text(f"{view.finished}/{total} robots finished"),
        )
        facts = _facts(view)
        if facts:
            bar.add_row(Text(""), Text(facts, "dim"))
        table = Table(show_edge=False, pad_edge=False, expand=False)
        for column in ("robot", "arch", "wave", "status", "currentProgress", "percentDone"):
            table.add_column(column, justify="right" if column in ("wave", "percentDone") else "left")
        for robot in view.robots:
            detail = robot["currentProgress"] or ""
            if robot["failureCode"]:
                detail = robot["failureCode"]
            percent = robot["percentDone"]
            table.add_row(
                robot["name"],
                self.architectures.get(robot["name"], "?"),
                str(robot["wave"]),
                Text(robot["status"], _status_style(robot["status"])),
                detail,
                "" if percent is None else f"{percent:.0f}%",
            )
        return Group(header, bar, table)

    def _plain(self, view: JobView) -> None:
        for robot in view.robots:
            key = f"{view.arn}/{robot['name']}"
            if robot["status"] in FAILED_ROBOT_STATUSES and key not in self._reported:
                self._reported.add(key)
                code = robot["failureCode"] or ""
                where = f" (wave {robot['wave']})" if robot["wave"] else ""
                self._print(f"  {robot['name']}{where}: {robot['status']} {code}".rstrip())
        wave = f"wave {view.current_wave} of {view.wave_count}  " if view.wave_count else ""
        counts = ", ".join(f"{status} {number}" for status, number in view.counts().items())
        facts = _facts(view)
        line = (
            f"{view.label}: {view.status}  {wave}"
            f"{_bar(view.finished, len(view.robots))} {view.finished}/{len(view.robots)} finished"
            + (f"  ({counts})" if counts else "")
            + (f"  {facts}" if facts else "")
        )
        now = time.monotonic()
        moved = (view.status, view.current_wave) != self._last_stage
        if line != self._last_line and (moved or now - self._last_print >= self._plain_every):
            self._last_stage = (view.status, view.current_wave)
            self._print(line)
            deploying = [
                f"{r['name']} {r['currentProgress'] or 'released'} {r['percentDone'] or 0:.0f}%"
                for r in view.robots
                if r["status"] in ("Deploying", "IN_PROGRESS")
            ]
            if deploying and not view.done:
                self._print("    deploying: " + ", ".join(deploying))
            self._last_line, self._last_print = line, now

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _facts(view: JobView) -> str:
    """The failure threshold gauge, the ETA, and any detail an extension adds to the job."""
    parts = []
    if view.threshold is not None:
        parts.append(f"failed {view.failed_percent:.0f}% of {view.threshold}% allowed")
    if view.eta_seconds is not None and not view.done:
        parts.append(f"ETA {view.eta_seconds} s")
    parts += [f"{key} {value}" for key, value in view.details.items() if isinstance(value, str | int | bool)]
    return "  ".join(parts)


def outcome_line(view: JobView) -> str:
    """The last line of a watch: how the rollout ended."""
    failure = f" ({view.failure_code}: {view.failure_reason})" if view.failure_code else ""
    if not failure and view.failure_reason:  # a job an approval gate canceled says why, without a code
        failure = f" ({view.failure_reason})"
    counts = ", ".join(f"{status} {number}" for status, number in view.counts().items())
    return f"{view.label} {view.arn.rsplit('/', 1)[-1]} ended {view.status}{failure}" + (
        f": {counts}" if counts else ""
    )


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _status_style(status: str) -> str:
    return {
        "InSync": "green",
        "Succeeded": "green",
        "Failed": "red",
        "NoResponse": "yellow",
        "Canceled": "yellow",
        "Deploying": "cyan",
        "InProgress": "cyan",
        "COMPLETED": "green",
        "SUCCEEDED": "green",
        "FAILED": "red",
        "TIMED_OUT": "yellow",
        "CANCELED": "yellow",
        "IN_PROGRESS": "cyan",
        "ACTIVE": "cyan",
    }.get(status, "")


def summary_tables(views: Sequence[JobView], architectures: Mapping[str, str]) -> list[Any]:
    from rich.table import Table

    jobs = Table(title="Deployment jobs", title_justify="left")
    for column in ("job", "id", "status", "failureCode", "failureReason", "robots", "InSync", "Failed",
                   "NoResponse"):  # fmt: skip
        jobs.add_column(column, overflow="fold")
    for view in views:
        jobs.add_row(
            view.label,
            view.arn.rsplit("/", 1)[-1],
            view.status,
            view.failure_code or "-",
            view.failure_reason or "-",
            str(len(view.robots)),
            str(view.count("InSync")),
            str(view.count("Failed")),
            str(view.count("NoResponse")),
        )
    robots = Table(title="Robots (final status per job)", title_justify="left")
    robots.add_column("robot")
    robots.add_column("arch")
    for view in views:
        robots.add_column(view.label)
    names = sorted(architectures)
    for name in names:
        cells = []
        for view in views:
            match = next((r for r in view.robots if r["name"] == name), None)
            if match is None:
                cells.append("-")
            else:
                cells.append(f"{match['status']} {match['failureCode'] or ''}".strip())
        robots.add_row(name, architectures[name], *cells)
    return [jobs, robots]
