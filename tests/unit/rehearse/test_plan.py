"""What `fleetwave rehearse` plans before anything runs: durations, architecture mixes, who fails or stays
silent, the waves and each wave's ideal time, and the impossible plans it refuses
(fleetwave.rehearse.plan)."""

from __future__ import annotations

import random

import pytest

from fleetwave.rehearse.plan import (
    DEFAULT_MAX_ROBOTS,
    MAX_ROBOTS_ENV,
    Duration,
    PlanError,
    assign_architectures,
    make_plan,
    max_robots,
    parse_architectures,
    synthetic_fleet,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20", Duration("fixed", 20.0)),
        ("uniform:10,30", Duration("uniform", 10.0, 30.0)),
        ("normal:20,5", Duration("normal", 20.0, 5.0)),
    ],
)
def test_rehearse_durations_parse(text, expected):
    assert Duration.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "fast",
        "0",
        "-1",
        "uniform:30,10",
        "uniform:5",
        "normal:-1,2",
        "normal:5,-1",
        "nan",
        "lognormal:1,2",
    ],
)
def test_rehearse_impossible_durations_say_what_is_expected(text):
    with pytest.raises(PlanError, match="duration"):
        Duration.parse(text)


def test_rehearse_durations_sample_within_their_bounds():
    rng = random.Random(3)
    uniform = [Duration("uniform", 10, 30).sample(rng) for _ in range(200)]
    assert all(10 <= value <= 30 for value in uniform)
    # A normal distribution is cut at 0.1 s: a deployment never takes no time
    normal = [Duration("normal", 1, 5).sample(rng) for _ in range(200)]
    assert min(normal) == 0.1


def test_rehearse_architecture_mix_adds_up_and_spreads_through_the_fleet():
    shares = parse_architectures("x86_64=60,ARM64=30,ARMHF=10")
    assert shares == (("X86_64", 60.0), ("ARM64", 30.0), ("ARMHF", 10.0))
    assigned = assign_architectures(100, shares)
    assert [assigned.count(name) for name in ("X86_64", "ARM64", "ARMHF")] == [60, 30, 10]
    # Every quarter of the fleet (a wave of 25%) gets its share, give or take one
    for quarter in range(4):
        part = assigned[quarter * 25 : (quarter + 1) * 25]
        assert abs(part.count("ARMHF") - 2.5) <= 1
    # Shares that do not divide the fleet are rounded by largest remainder and still add up
    assert len(assign_architectures(7, parse_architectures("X86_64=50,ARM64=50"))) == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SPARC", "expected one of"),
        ("X86_64=60,ARM64=30", "add up to 90%"),
        ("X86_64=0,ARM64=100", "more than 0%"),
        ("X86_64=150", "at most 100%"),
        ("X86_64=50,X86_64=50", "given twice"),
        ("X86_64=half,ARM64=50", "not a number"),
    ],
)
def test_rehearse_impossible_architecture_mixes(text, message):
    with pytest.raises(PlanError, match=message):
        parse_architectures(text)


def plan(count=20, **overrides):
    values = dict(
        deployment_config={"concurrentDeploymentPercentage": 25},
        time_scale=0.05,
        duration=Duration("fixed", 20),
        seed=1,
        limit=100,
    )
    return make_plan(synthetic_fleet(count, [("X86_64", 100)]), **{**values, **overrides})


def test_rehearse_plan_picks_failing_and_silent_robots_at_the_rates_and_repeats_with_a_seed():
    planned = plan(40, failure_rate=25, silence_rate=10, failure_code="DownloadConditionFailed")
    behaviors = [robot.behavior for robot in planned.robots]
    assert sum(b.startswith("fail:DownloadConditionFailed:") for b in behaviors) == 10
    assert behaviors.count("silent") == 4
    assert sum(b.startswith("delay:") for b in behaviors) == 26
    # The same seed draws the same robots; another seed others
    assert [
        r.behavior
        for r in plan(40, failure_rate=25, silence_rate=10, failure_code="DownloadConditionFailed").robots
    ] == behaviors
    assert [r.behavior for r in plan(40, failure_rate=25, silence_rate=10, seed=2).robots] != behaviors


def test_rehearse_plan_waves_and_ideal_time_follow_the_engine():
    # 10 robots in waves of 25% are 4 waves (3, 3, 3, 1), in robot-name order, as the engine plans them
    planned = plan(
        10, deployment_config={"concurrentDeploymentPercentage": 25, "robotDeploymentTimeoutInSeconds": 60}
    )
    waves = planned.waves()
    assert [len(wave) for wave in waves] == [3, 3, 3, 1]
    assert [robot.name for robot in waves[0]] == ["robot-00001", "robot-00002", "robot-00003"]
    # A wave lasts as long as its slowest robot; a silent robot holds it for the robot timeout
    assert planned.wave_seconds(waves[0]) == 20
    silent = plan(4, silence_rate=25, deployment_config={"robotDeploymentTimeoutInSeconds": 60})
    assert silent.wave_seconds(silent.waves()[0]) == 60


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"failure_rate": 101}, "failure rate must be between 0 and 100"),
        ({"silence_rate": -1}, "silence rate must be between 0 and 100"),
        ({"failure_rate": 60, "silence_rate": 50}, "more than 100%"),
        ({"time_scale": 0}, "time scale"),
        ({"time_scale": 2}, "time scale"),
        ({"limit": 10}, "more than the 10 a rehearsal may simulate"),
    ],
)
def test_rehearse_impossible_plans_are_refused(overrides, message):
    with pytest.raises(PlanError, match=message):
        plan(20, **overrides)


def test_rehearse_needs_a_robot():
    with pytest.raises(PlanError, match="at least one robot"):
        synthetic_fleet(0, [("X86_64", 100)])
    with pytest.raises(PlanError, match="at least one robot"):
        make_plan([], deployment_config={}, time_scale=1, duration=Duration("fixed", 1))


def test_rehearse_robot_limit_from_the_environment():
    assert max_robots({}) == DEFAULT_MAX_ROBOTS == 10_000
    assert max_robots({MAX_ROBOTS_ENV: "50000"}) == 50_000
    for bad in ("lots", "0"):
        with pytest.raises(PlanError, match=MAX_ROBOTS_ENV):
            max_robots({MAX_ROBOTS_ENV: bad})


def test_rehearse_prediction_scales_the_robots_time_back_up_and_keeps_the_engines():
    from fleetwave.rehearse.run import predicted_seconds

    # 4 s here at time scale 0.05 with robots that work 60 s of real time (3 s here): 1 s was the engine's
    assert predicted_seconds(4.0, 60.0, 0.05) == pytest.approx(61.0)
    # An engine that added nothing: the wall time scaled back up
    assert predicted_seconds(3.0, 60.0, 0.05) == pytest.approx(60.0)
    # A job stopped before its robots' planned time (the threshold aborted them): all of it was robots' time
    assert predicted_seconds(1.0, 60.0, 0.05) == pytest.approx(20.0)
    # At time scale 1 the prediction is the wall time
    assert predicted_seconds(75.0, 60.0, 1.0) == pytest.approx(75.0)
