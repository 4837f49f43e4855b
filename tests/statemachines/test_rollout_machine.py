"""The rollout state machine, executed by moto from statemachines/rollout.asl.json, every path.

Jobs are created through the API handler (which starts the execution); robots answer through the real
status handler; results are read back through DescribeDeploymentJob / DescribeFleet / DescribeRobot.
"""

from __future__ import annotations


def _fleet_of(rollout, count: int, name: str = "warehouse", architecture: str = "X86_64"):
    fleet = rollout.given.fleet(name)
    for index in range(count):
        rollout.given.robot(f"r{index:02d}", architecture=architecture, fleet=fleet)
    return fleet


def test_rollout_multi_wave_success_releases_each_wave_after_the_previous_finished(rollout):
    # Given 10 robots and waves of 30% (ceil(3) robots: 3, 3, 3, 1)
    fleet = _fleet_of(rollout, 10)
    version = rollout.given.application_version("nav")

    # When the deployment runs and every robot succeeds
    job = rollout.run(fleet, version, deploymentConfig={"concurrentDeploymentPercentage": 30})

    # Then the job succeeded and every robot is InSync, finished
    assert job["status"] == "Succeeded"
    assert "failureCode" not in job
    summary = rollout.robot_summary(job)
    assert sorted(summary) == [f"r{i:02d}" for i in range(10)]
    for robot in summary.values():
        assert robot["status"] == "InSync"
        assert robot["progressDetail"]["currentProgress"] == "Finished"
        assert robot["progressDetail"]["percentDone"] == 100.0
        assert robot["deploymentFinishTime"] >= robot["deploymentStartTime"]
    # and wave n+1 was released only after every robot of wave n had finished
    timeline = rollout.robots.timeline
    waves = [["r00", "r01", "r02"], ["r03", "r04", "r05"], ["r06", "r07", "r08"], ["r09"]]
    for earlier, later in zip(waves, waves[1:], strict=False):
        last_finish = max(timeline.index(("finished", robot)) for robot in earlier)
        first_release = min(timeline.index(("deploy", robot)) for robot in later)
        assert last_finish < first_release, (earlier, later)
    # and the fleet and its robots record the deployment
    described = rollout.given.ok("describeFleet", {"fleet": fleet["arn"]})
    assert described["lastDeploymentStatus"] == "Succeeded"
    assert described["lastDeploymentJob"] == job["arn"]
    for robot in described["robots"]:
        assert robot["status"] == "InSync"
        assert robot["lastDeploymentJob"] == job["arn"]
