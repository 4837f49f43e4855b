"""What the demo will do, decided up front: names, architectures, and which robot fails or stays silent."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass

from fleetwave.watch.view import wave_numbers

DEFAULT_ROBOTS = 20
DEFAULT_TIME_SCALE = 0.1
NEW_ROBOTS = 3
WAVE_PERCENT = 25
MIN_FAILURE_THRESHOLD_PERCENT = 25
ARCHITECTURES = ("X86_64", "ARM64", "ARMHF")
FAILURE_CODE = "PreLaunchFileFailure"


class DemoError(Exception):
    """Something did not go as the demo expects; the message says what."""


@dataclass
class DemoPlan:
    """Names, architectures and behaviours, decided up front (``seed`` makes a run repeatable)."""

    fleet: str
    robots: list[str]
    new_robots: list[str]
    architectures: dict[str, str]
    behaviors: dict[str, str]
    failing: str
    silent: str
    application: str
    time_scale: float

    @property
    def failure_threshold(self) -> int:
        """Above the two planned failures (the engine stops when failed x 100 > threshold x N)."""
        return max(MIN_FAILURE_THRESHOLD_PERCENT, math.ceil(200 / len(self.robots)))

    @classmethod
    def make(cls, robots: int, time_scale: float, seed: int | None = None) -> DemoPlan:
        if robots < 4:
            raise DemoError("the demo needs at least 4 robots (one fails, one stays silent)")
        rng = random.Random(seed)
        suffix = uuid.uuid4().hex[:6]
        width = len(str(robots + NEW_ROBOTS))
        names = [f"robot-{i:0{width}d}" for i in range(1, robots + 1)]
        new = [f"robot-{i:0{width}d}" for i in range(robots + 1, robots + NEW_ROBOTS + 1)]
        architectures = {name: ARCHITECTURES[i % len(ARCHITECTURES)] for i, name in enumerate(names + new)}
        waves = wave_numbers(names, WAVE_PERCENT)
        # The failure in the second wave and the silence in the third, so the first wave shows a clean run.
        second = [n for n in names if waves[n] == min(2, max(waves.values()))]
        failing = second[len(second) // 2]
        third = [n for n in names if waves[n] == min(3, max(waves.values())) and n != failing]
        silent = third[len(third) // 2]
        behaviors: dict[str, str] = {}
        for name in names + new:
            # Most robots take a random few simulated seconds; the rest run step by step ("ok").
            if rng.random() < 0.6:
                behaviors[name] = f"delay:{rng.uniform(5, 20):.1f}"
        behaviors[failing] = f"fail:{FAILURE_CODE}"
        behaviors[silent] = "silent"
        return cls(
            fleet=f"demo-fleet-{suffix}",
            robots=names,
            new_robots=new,
            architectures=architectures,
            behaviors=behaviors,
            failing=failing,
            silent=silent,
            application=f"hello-fleet-{suffix}",
            time_scale=time_scale,
        )
