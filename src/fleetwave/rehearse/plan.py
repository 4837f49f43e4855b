"""What a rehearsal runs: the simulated fleet (names, architectures, what each robot will do and for how
long), the job's deploymentConfig, the time scale. Pure: parsed, checked and sampled here, run elsewhere
(fleetwave.rehearse.run).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ARCHITECTURES = ("X86_64", "ARM64", "ARMHF")
# How many robots one rehearsal may simulate unless told otherwise (--max-robots,
# FLEETWAVE_REHEARSE_MAX_ROBOTS): 10,000 fit in 2 GiB and 10 minutes on a 2-core machine
# (docs/performance.md).
DEFAULT_MAX_ROBOTS = 10_000
MAX_ROBOTS_ENV = "FLEETWAVE_REHEARSE_MAX_ROBOTS"
DEFAULT_FAILURE_CODE = "PreLaunchFileFailure"
# A simulated deployment is never shorter than this (a normal distribution is cut here).
MIN_ROBOT_SECONDS = 0.1


class PlanError(ValueError):
    """An impossible rehearsal: says what is wrong in one line (the command exits 2 with it)."""


def max_robots(environ: dict[str, str] | None = None) -> int:
    text = (os.environ if environ is None else environ).get(MAX_ROBOTS_ENV)
    if not text:
        return DEFAULT_MAX_ROBOTS
    try:
        value = int(text)
    except ValueError:
        raise PlanError(f"{MAX_ROBOTS_ENV} must be a whole number, not {text!r}") from None
    if value < 1:
        raise PlanError(f"{MAX_ROBOTS_ENV} must be at least 1, not {value}")
    return value


@dataclass(frozen=True)
class Duration:
    """How long one robot's deployment takes, in real seconds (before the time scale): ``20`` (every robot
    20 s), ``uniform:10,30``, ``normal:20,5`` (mean, standard deviation; never under 0.1 s)."""

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Duration:
        kind, _, rest = text.strip().partition(":")
        if not rest:
            kind, rest = "fixed", kind
        try:
            numbers = [float(part) for part in rest.split(",")]
        except ValueError:
            raise PlanError(f"duration {text!r}: not a number; expected {DURATION_HELP}") from None
        if any(not math.isfinite(n) for n in numbers):
            raise PlanError(f"duration {text!r}: numbers must be finite")
        if kind == "fixed" and len(numbers) == 1:
            if numbers[0] < MIN_ROBOT_SECONDS:
                raise PlanError(f"duration {text!r}: at least {MIN_ROBOT_SECONDS} s")
            return cls("fixed", numbers[0])
        if kind == "uniform" and len(numbers) == 2:
            low, high = numbers
            if not MIN_ROBOT_SECONDS <= low <= high:
                raise PlanError(f"duration {text!r}: expected {MIN_ROBOT_SECONDS} <= low <= high")
            return cls("uniform", low, high)
        if kind == "normal" and len(numbers) == 2:
            mean, deviation = numbers
            if mean < MIN_ROBOT_SECONDS or deviation < 0:
                raise PlanError(f"duration {text!r}: mean at least {MIN_ROBOT_SECONDS} s, deviation >= 0")
            return cls("normal", mean, deviation)
        raise PlanError(f"duration {text!r}: expected {DURATION_HELP}")

    def sample(self, rng: random.Random) -> float:
        if self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        else:
            value = self.a
        return round(max(MIN_ROBOT_SECONDS, value), 3)

    def __str__(self) -> str:
        if self.kind == "uniform":
            return f"uniform {self.a:g}-{self.b:g} s"
        if self.kind == "normal":
            return f"normal, mean {self.a:g} s, sd {self.b:g} s"
        return f"{self.a:g} s each"


DURATION_HELP = "SECONDS | uniform:LOW,HIGH | normal:MEAN,SD"


def parse_architectures(text: str) -> tuple[tuple[str, float], ...]:
    """``X86_64``, or a mix in percent: ``X86_64=60,ARM64=40`` (the percentages add up to 100)."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, has_share, share = part.strip().partition("=")
        name = name.strip().upper()
        if name not in ARCHITECTURES:
            raise PlanError(f"architecture {name or part!r}: expected one of {', '.join(ARCHITECTURES)}")
        if name in shares:
            raise PlanError(f"architecture {name} given twice")
        try:
            value = float(share) if has_share else 100.0
        except ValueError:
            raise PlanError(f"architecture share {share!r}: not a number") from None
        if not 0 < value <= 100:
            raise PlanError(
                f"architecture share of {name} must be more than 0% and at most 100%, not {share}"
            )
        shares[name] = value
    total = sum(shares.values())
    if abs(total - 100) > 1e-6:
        raise PlanError(f"architecture shares add up to {total:g}%, not 100%: {text}")
    return tuple(shares.items())


def assign_architectures(count: int, shares: Sequence[tuple[str, float]]) -> list[str]:
    """``count`` architectures in those shares (largest remainders), spread evenly through the fleet so that
    every wave gets its share."""
    exact = [(name, count * share / 100) for name, share in shares]
    counts = {name: math.floor(value) for name, value in exact}
    by_remainder = sorted(exact, key=lambda item: item[1] - math.floor(item[1]), reverse=True)
    for name, _ in by_remainder[: count - sum(counts.values())]:
        counts[name] += 1
    # Interleave: the i-th robot takes the architecture furthest behind its share so far (one always is:
    # the shortfalls add up to -1 before each pick, so a full architecture is never picked).
    wanted = {name: n for name, n in counts.items() if n}
    taken = dict.fromkeys(wanted, 0)
    result = []
    for index in range(count):
        name = min(wanted, key=lambda n: (taken[n] - wanted[n] * (index + 1) / count, n))
        taken[name] += 1
        result.append(name)
    return result


def check_percent(name: str, value: float, low: float = 0.0) -> float:
    if not (low <= value <= 100) or not math.isfinite(value):
        raise PlanError(f"{name} must be between {low:g} and 100 (percent), not {value:g}")
    return value


@dataclass(frozen=True)
class RobotPlan:
    name: str
    architecture: str
    behavior: str  # fleetwave.agent.simulated.Behavior text: delay:<s> | fail:<code>:<s> | silent
    seconds: float  # how long it works before its outcome (real seconds; a silent robot never answers)

    @property
    def silent(self) -> bool:
        return self.behavior == "silent"


@dataclass(frozen=True)
class RehearsalPlan:
    robots: list[RobotPlan]
    deployment_config: dict[str, Any]
    time_scale: float
    duration: Duration | None = None  # None: durations read from --like's fleet are not sampled
    failure_rate: float = 0.0
    silence_rate: float = 0.0
    failure_code: str = DEFAULT_FAILURE_CODE
    seed: int | None = None
    fleet_name: str = "rehearsal"
    source: str = ""  # where the robots come from, for the report
    architectures: dict[str, int] = field(default_factory=dict)

    @property
    def robot_timeout(self) -> int:
        from fleetwave_service.engine.rules import DEFAULT_ROBOT_TIMEOUT_SECONDS

        return int(
            self.deployment_config.get("robotDeploymentTimeoutInSeconds") or DEFAULT_ROBOT_TIMEOUT_SECONDS
        )

    def waves(self) -> list[list[RobotPlan]]:
        """The engine's waves of these robots (robot-name order, ceil(N x percent / 100) each)."""
        from fleetwave_service.engine.rules import plan_waves, wave_size

        ordered = sorted(self.robots, key=lambda robot: robot.name)
        size = wave_size(len(ordered), self.deployment_config.get("concurrentDeploymentPercentage"))
        return plan_waves(ordered, size)  # type: ignore[arg-type]

    def wave_seconds(self, wave: list[RobotPlan]) -> float:
        """How long a wave lasts with an engine that costs nothing: its slowest robot (a silent one, or one
        slower than the robot timeout, holds it for the timeout)."""
        return max(min(self.robot_timeout, self.robot_timeout if r.silent else r.seconds) for r in wave)


def make_plan(
    robots: Sequence[tuple[str, str]],
    *,
    deployment_config: dict[str, Any],
    time_scale: float,
    duration: Duration,
    failure_rate: float = 0.0,
    silence_rate: float = 0.0,
    failure_code: str = DEFAULT_FAILURE_CODE,
    seed: int | None = None,
    fleet_name: str = "rehearsal",
    source: str = "",
    limit: int | None = None,
) -> RehearsalPlan:
    """Decide what each robot does: ``failure_rate`` % of them fail (with ``failure_code``), ``silence_rate``
    % never answer, picked at random (``seed`` repeats a draw); each robot's duration is drawn from
    ``duration``."""
    limit = max_robots() if limit is None else limit
    if not robots:
        raise PlanError("a rehearsal needs at least one robot")
    if len(robots) > limit:
        raise PlanError(
            f"{len(robots):,} robots is more than the {limit:,} a rehearsal may simulate "
            f"(--max-robots or {MAX_ROBOTS_ENV} raise it)"
        )
    check_percent("failure rate", failure_rate)
    check_percent("silence rate", silence_rate)
    if failure_rate + silence_rate > 100:
        raise PlanError(f"failure rate + silence rate is {failure_rate + silence_rate:g}%, more than 100%")
    if not 0 < time_scale <= 1:
        raise PlanError(f"time scale must be more than 0 and at most 1, not {time_scale:g}")
    rng = random.Random(seed)
    count = len(robots)
    order = list(range(count))
    rng.shuffle(order)
    failing = set(order[: round(count * failure_rate / 100)])
    silent = set(order[len(failing) : len(failing) + round(count * silence_rate / 100)])
    planned = []
    for index, (name, architecture) in enumerate(robots):
        seconds = duration.sample(rng)
        if index in silent:
            behavior = "silent"
        elif index in failing:
            behavior = f"fail:{failure_code}:{seconds:g}"
        else:
            behavior = f"delay:{seconds:g}"
        planned.append(RobotPlan(name, architecture, behavior, seconds))
    mix: dict[str, int] = {}
    for _, architecture in robots:
        mix[architecture] = mix.get(architecture, 0) + 1
    return RehearsalPlan(
        robots=planned,
        deployment_config=deployment_config,
        time_scale=time_scale,
        duration=duration,
        failure_rate=failure_rate,
        silence_rate=silence_rate,
        failure_code=failure_code,
        seed=seed,
        fleet_name=fleet_name,
        source=source,
        architectures=mix,
    )


def synthetic_fleet(
    count: int, shares: Sequence[tuple[str, float]], prefix: str = "robot"
) -> list[tuple[str, str]]:
    """``count`` robots named ``<prefix>-00001`` ... with architectures in ``shares``."""
    if count < 1:
        raise PlanError(f"a rehearsal needs at least one robot, not {count}")
    width = max(5, len(str(count)))
    return [
        (f"{prefix}-{index:0{width}d}", architecture)
        for index, architecture in enumerate(assign_architectures(count, shares), start=1)
    ]
