"""Rollouts as a user runs them: `fleetwave serve` and `fleetwave simulate` as subprocesses, driven over HTTP.

The session's serve runs at a small time scale (conftest: FLEETWAVE_E2E_TIME_SCALE, default 0.01), so a
robot timeout of 300 s lasts 3 s. Each test makes its own fleet (unique names) and runs its own simulator
for it. Waits poll the API with a deadline; nothing asserts on elapsed time.
"""

from __future__ import annotations

from support.rollouts import SAFE_TIMEOUT, names, robot_name, unique


def test_rollout_waves_release_each_wave_after_the_previous_one_finished(rollouts, simulate):
    # Given 8 robots in waves of 25% (2 each), robots taking different times, one silent robot in wave 2
    robots = names(unique("wave"), 8)
    fleet = rollouts.fleet(robots)
    behaviors = {name: f"delay:{(i % 3) * 20 + 5}" for i, name in enumerate(robots)}
    behaviors[robots[2]] = "silent"
    simulate(fleet, behaviors, robots=8)

    # When the version is rolled out
    job = rollouts.job(
        fleet,
        rollouts.version(),
        concurrentDeploymentPercentage=25,
        robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT,
    )
    done = rollouts.finished(job)

    # Then the job succeeded, the silent robot is NoResponse and every other robot InSync
    assert done["status"] == "Succeeded", done
    summary = {robot_name(item["arn"]): item for item in done["robotDeploymentSummary"]}
    assert summary[robots[2]]["status"] == "NoResponse"
    assert summary[robots[2]]["failureCode"] == "RobotDeploymentNoResponse"
    assert all(summary[n]["status"] == "InSync" for n in robots if n != robots[2]), summary
    # And no robot of wave k+1 started before every robot of wave k had finished or timed out
    waves = [robots[i : i + 2] for i in range(0, 8, 2)]
    for earlier, later in zip(waves, waves[1:], strict=False):
        last_finish = max(summary[n]["deploymentFinishTime"] for n in earlier)
        first_start = min(summary[n]["deploymentStartTime"] for n in later)
        assert first_start >= last_finish, (earlier, later, summary)


def test_rollout_simulate_without_a_time_scale_runs_on_the_stacks_clock(rollouts, simulate, monkeypatch):
    # Given `fleetwave serve` at a small time scale, and `fleetwave simulate` started the plain way, with
    # no --time-scale and no FLEETWAVE_TIME_SCALE, for a robot that takes 30 simulated seconds
    monkeypatch.delenv("FLEETWAVE_TIME_SCALE", raising=False)
    robots = names(unique("clock"), 1)
    fleet = rollouts.fleet(robots)
    simulator = simulate(fleet, {robots[0]: "delay:30"}, robots=1, pass_time_scale=False)
    assert f"time scale {float(rollouts.serve.time_scale):g}" in simulator.output()

    # When it is deployed with the minimum robot timeout (60 s, as scaled by the stack)
    job = rollouts.job(fleet, rollouts.version(), robotDeploymentTimeoutInSeconds=60)
    done = rollouts.finished(job)

    # Then the robot finished within its timeout on the same clock as the engine
    assert done["status"] == "Succeeded", done
    assert [item["status"] for item in done["robotDeploymentSummary"]] == ["InSync"], done


def test_rollout_threshold_breach_stops_the_job_and_releases_nobody_further(rollouts, simulate):
    # Given 4 robots in waves of one, a failure threshold of 20%, and a first robot that fails
    robots = names(unique("threshold"), 4)
    fleet = rollouts.fleet(robots)
    simulator = simulate(fleet, {robots[0]: "fail:PreLaunchFileFailure"}, robots=4)

    # When the version is rolled out
    job = rollouts.job(
        fleet,
        rollouts.version(),
        concurrentDeploymentPercentage=25,
        failureThresholdPercentage=20,
        robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT,
    )
    done = rollouts.finished(job)

    # Then the job failed on the threshold, and the later robots were never released
    assert (done["status"], done["failureCode"]) == ("Failed", "FailureThresholdBreached"), done
    summary = {robot_name(item["arn"]): item for item in done["robotDeploymentSummary"]}
    assert (summary[robots[0]]["status"], summary[robots[0]]["failureCode"]) == (
        "Failed",
        "PreLaunchFileFailure",
    )
    for name in robots[1:]:
        assert summary[name]["status"] == "Failed"
        assert summary[name]["failureCode"] == "RobotDeploymentAborted"
        assert summary[name].get("deploymentStartTime") is None, summary[name]
    assert simulator.commanded() == {robots[0]}, simulator.output()


def test_rollout_robot_reported_failure_code_shows_on_the_robot(rollouts, simulate):
    # Given two robots, one whose download condition fails
    robots = names(unique("code"), 2)
    fleet = rollouts.fleet(robots)
    simulate(fleet, {robots[1]: "fail:DownloadConditionFailed"}, robots=2)

    # When the version is rolled out to both at once
    job = rollouts.job(fleet, rollouts.version(), robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT)
    done = rollouts.finished(job)

    # Then that robot shows the code it reported, with a reason; the other is InSync
    summary = {robot_name(item["arn"]): item for item in done["robotDeploymentSummary"]}
    failed = summary[robots[1]]
    assert (failed["status"], failed["failureCode"]) == ("Failed", "DownloadConditionFailed"), failed
    assert failed["failureReason"]
    assert summary[robots[0]]["status"] == "InSync"


def test_rollout_cancel_mid_wave_ends_the_job_and_releases_nobody_further(rollouts, simulate):
    # Given 4 robots in waves of one, a first robot that never answers and the default (5 h) timeout
    robots = names(unique("cancel"), 4)
    fleet = rollouts.fleet(robots)
    simulator = simulate(fleet, {robots[0]: "silent"}, robots=4)
    job = rollouts.job(fleet, rollouts.version(), concurrentDeploymentPercentage=25)
    rollouts.wait_for(
        "the first robot to be released",
        lambda: rollouts.robots_of(job).get(robots[0], {}).get("status") == "Deploying",
    )

    # When the job is canceled while its first wave waits
    rollouts.client.call("cancelDeploymentJob", {"job": job["arn"]})

    # Then it is Canceled and every robot ends (well before the wave's timeout), nobody further released
    done = rollouts.finished(job)
    assert done["status"] == "Canceled", done
    summary = {robot_name(item["arn"]): item for item in done["robotDeploymentSummary"]}
    assert summary[robots[0]]["status"] == "Failed"
    for name in robots[1:]:
        assert summary[name]["status"] == "Failed"
        assert summary[name].get("deploymentStartTime") is None, summary[name]
    assert "received deploy" not in "".join(
        line for line in simulator.output().splitlines() if not line.startswith(robots[0])
    ), simulator.output()


def test_rollout_sync_deploys_to_new_robots_and_leaves_the_others_untouched(rollouts, simulate):
    # Given a fleet of three robots that all took a deployment
    prefix = unique("sync")
    first, later = names(prefix, 5)[:3], names(prefix, 5)[3:]
    fleet = rollouts.fleet(first)
    simulator = simulate(fleet, {}, robots=3)
    job = rollouts.job(fleet, rollouts.version(), robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT)
    assert rollouts.finished(job)["status"] == "Succeeded"

    # When two robots join and the fleet is synchronised
    for name in later:
        rollouts.add_robot(fleet, name)
    sync = rollouts.client.call(
        "syncDeploymentJob", {"clientRequestToken": unique("sync"), "fleet": fleet["arn"]}
    )
    done = rollouts.finished(sync)

    # Then only the new robots are targeted, and they are InSync with the sync job
    assert done["status"] == "Succeeded", done
    summary = {robot_name(item["arn"]): item["status"] for item in done["robotDeploymentSummary"]}
    assert summary == {name: "InSync" for name in later}
    robots = rollouts.client.call(
        "listRobots", {"filters": [{"name": "fleetName", "values": [fleet["name"]]}]}
    )["robots"]
    last_job = {robot["name"]: (robot["status"], robot.get("lastDeploymentJob")) for robot in robots}
    # And the robots that already had the deployment still show the first job
    assert last_job == {
        **{name: ("InSync", job["arn"]) for name in first},
        **{name: ("InSync", sync["arn"]) for name in later},
    }
    assert simulator.commanded() == set(first + later)


def test_rollout_to_simulated_robots_connected_over_mtls_each_with_its_own_certificate(rollouts, simulate):
    # Given simulated robots that connect as real robots do (--mtls): a certificate and a connection each
    robots = names(unique("mtls"), 3)
    fleet = rollouts.fleet(robots)
    simulator = simulate(fleet, {robots[1]: "fail:EtagMismatch"}, robots=3, extra=("--mtls",))
    assert "mqtts://" in simulator.output()
    iot = rollouts.serve.aws_client("iot")
    assert all(len(iot.list_thing_principals(thingName=name)["principals"]) == 1 for name in robots)

    # When a version is rolled out, each robot reports on its own topic
    done = rollouts.finished(
        rollouts.job(fleet, rollouts.version(), robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT)
    )
    summary = {robot_name(item["arn"]): item["status"] for item in done["robotDeploymentSummary"]}
    assert summary == {robots[0]: "InSync", robots[1]: "Failed", robots[2]: "InSync"}, done

    # And the certificates made for the simulation are revoked when it stops
    simulator.stop()
    assert all(iot.list_thing_principals(thingName=name)["principals"] == [] for name in robots)
