"""What a front door tells the engine about its rollouts: the ``RolloutPolicy`` interface.

The engine's steps (engine/steps.py) and its status path (engine/reports.py) are the same for every front
door; where a rollout of one front door differs from another's, the step asks the job's policy. RoboMaker
(robomaker/policy.py) and Greengrass (greengrass/policy.py) each provide one from their own package; the
composition root (fleetwave_service.handlers) registers them (lazily: each is imported when a job of its
front door is first seen), so the engine imports neither.

A job row names its front door in ``frontDoor``; RoboMaker's job rows predate the attribute and have none,
so RoboMaker's policy registers under ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fleetwave_service.core.dynamo import Row

if TYPE_CHECKING:  # annotations only: the composition root imports this module in every function
    from fleetwave_service.engine.messages import Bundle, DeploymentCommand, DownloadCondition, FailureCode
    from fleetwave_service.engine.ports import Ports

FRONT_DOOR_ATTRIBUTE = "frontDoor"


@dataclass(frozen=True)
class Targets:
    """Who a job targets, resolved when it is prepared (a snapshot: later changes to the fleet do not count).

    ``robots`` are all of them (N, the base of every percentage); ``releasable`` those that can be released;
    ``failed`` those that fail before release, with the code and reason; ``sources`` what release needs
    again later, stored on the job as ``resolvedSources``.
    """

    robots: list[Row]
    releasable: list[Row]
    failed: list[tuple[Row, FailureCode, str]] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Abort:
    """The job cannot start (its fleet or application is gone): it ends Failed with this code and reason."""

    code: FailureCode
    reason: str


@dataclass(frozen=True)
class Plan:
    """How the releasable robots go out: ``waves`` planned now, or a ``queue`` in release order whose
    batches are sized one at a time by ``RolloutPolicy.next_batch`` when they are due."""

    waves: list[list[str]] = field(default_factory=list)
    queue: list[str] | None = None


@dataclass(frozen=True)
class Release:
    """A wave going out: its ``members`` (``MEMBER#`` rows), the release ``attempt``, when the commands are
    ``issued_at``, and each robot's ``deadline`` and ``timeout_seconds``."""

    job: Row
    members: list[Row]
    attempt: int
    issued_at: float
    deadline: float
    timeout_seconds: int


@dataclass(frozen=True)
class Sweep:
    """What the sweep does when a wave's wait timed out: ``rows`` (robot deployment rows, from one of
    ``from_statuses``) become NoResponse with ``reason``; the wave row gets ``wave_status``, and with
    ``recount`` its counts are recounted from its rows (authoritative), else its live counters stand."""

    rows: list[Row]
    from_statuses: tuple[str, ...]
    reason: str
    recount: bool
    wave_status: str


@dataclass(frozen=True)
class Gate:
    """An approval gate before a wave: the rollout holds until the wave is approved, at most
    ``timeout_seconds`` (production seconds, before the local time scale); then the job ends as
    ``on_timeout`` says: ``"canceled"`` (Canceled) or ``"abort"`` (Failed)."""

    timeout_seconds: int
    on_timeout: str


@dataclass(frozen=True)
class WaveEnd:
    """How the policy reads a wave after a report: ``wave`` (whose token to claim), whether it is
    ``complete``, whether the failure criteria are ``breached``. Either one ends the wait."""

    wave: int
    complete: bool
    breached: bool


@dataclass(frozen=True)
class Links:
    """Fresh download links for a robot whose command's links expired (engine/robot_messages.py, link
    requests): the ``bundle`` of its architecture and the job's ``download_condition``, or the
    ``artifacts`` of the job's components (component name -> {artifact URI -> URL}); or, ``refused``, why
    there are none."""

    bundle: Bundle | None = None
    download_condition: DownloadCondition | None = None
    artifacts: dict[str, dict[str, str]] | None = None
    refused: str | None = None


class RolloutPolicy(Protocol):
    front_door: str | None
    # The job holds its fleet's lock (``activeJobId``) while it runs: readers of a robot find its deployment
    # in flight through its fleet, so a release writes nothing on the robots' own rows (engine/steps.py).
    holds_fleet_lock: bool

    def targets(self, job: Row, ports: Ports) -> Targets | Abort:
        """prepare: the robots the job targets now."""
        ...

    def plan(self, job: Row, robot_names: list[str], target_count: int) -> Plan:
        """prepare: waves of the releasable robots, in release order (or one queue)."""
        ...

    def next_batch(
        self, job: Row, batch: int, notified: int, succeeded: int, remaining: int
    ) -> dict[str, Any]:
        """evaluate, queued plans only: ``{"size": n, ...}``, the rest stored on the job with the plan."""
        ...

    def robot_timeout_seconds(self, job: Row) -> int:
        """The production per-robot timeout (before the local time scale)."""
        ...

    def wave_timeout_seconds(self, job: Row, wave: int, time_scale: float) -> int:
        """evaluate: how long the machine waits on ``wave`` before its sweep (scaled)."""
        ...

    def robot_seconds(self, job: Row, wave_timeout_seconds: int, time_scale: float) -> int:
        """release: how long each robot of the wave has (its command's timeout; its deadline from now)."""
        ...

    def breach(self, job: Row, totals: dict[str, int]) -> str | None:
        """Why the rollout must abort now (None: it goes on). ``totals``: succeeded/failed/noResponse."""
        ...

    def commands(self, release: Release, ports: Ports) -> list[tuple[str, DeploymentCommand]]:
        """release: (robot name, command) for each member of the wave."""
        ...

    def sweep(self, job: Row, wave: int, now: float, ports: Ports) -> Sweep:
        """The wave's wait timed out: who times out, and how the wave is counted."""
        ...

    def wave_end(self, job: Row, wave: int, ports: Ports) -> WaveEnd | None:
        """After a robot of ``wave`` finished: is the current wave's wait over? None: not this wave's."""
        ...

    def gate(self, job: Row, wave: int) -> Gate | None:
        """evaluate: the approval gate before ``wave`` (None: the wave goes out without one)."""
        ...

    def finished(self, job: Row, status: str, ports: Ports) -> None:
        """finalize: record the job's outcome where the front door keeps it (besides the job row)."""
        ...

    def target_arn(self, job: Row) -> str:
        """What the job deploys to, as the job status event names it."""
        ...

    def links(self, job: Row, architecture: str | None, ports: Ports) -> Links:
        """A robot of ``architecture`` (a target of ``job``) asks again for the links its command carried."""
        ...


_policies: dict[str | None, RolloutPolicy] = {}
_loaders: dict[str | None, Callable[[], RolloutPolicy]] = {}


def register(policy: RolloutPolicy) -> None:
    """Plug a front door's policy into the engine (the composition root does, once per process)."""
    _policies[policy.front_door] = policy


def register_lazily(front_door: str | None, load: Callable[[], RolloutPolicy]) -> None:
    """Plug in the policy ``load`` returns, loaded when a job of ``front_door`` is first seen: a function
    whose jobs are all of one front door never imports the other's (a cold start's import time)."""
    _loaders[front_door] = load


def policy_for(job: Row) -> RolloutPolicy:
    front_door = job.get(FRONT_DOOR_ATTRIBUTE)
    policy = _policies.get(front_door)
    if policy is not None:
        return policy
    load = _loaders.get(front_door)
    if load is None:
        raise LookupError(
            f"no rollout policy for front door {front_door!r}; fleetwave_service.handlers registers them"
        )
    policy = load()
    if policy.front_door != front_door:
        raise LookupError(f"the policy loaded for front door {front_door!r} is {policy.front_door!r}'s")
    register(policy)
    return policy
