"""DeregisterRobot during a rollout: the robot that left the fleet stops deploying."""

from __future__ import annotations

from support.rollout_harness import HOLD, report


def test_deregistering_a_robot_mid_rollout_aborts_its_deployment_and_the_job_finishes(rollout):
    # Given a rollout whose one wave holds two robots deploying
    fleet = rollout.given.fleet("warehouse")
    robots = {name: rollout.given.robot(name, fleet=fleet) for name in ("r00", "r01")}
    rollout.robots.behave("r00", HOLD)
    job = rollout.start(fleet, rollout.given.application_version("nav"))
    rollout.pump_until(lambda: "r00" in rollout.robots.held, "the wave released")
    command = rollout.robots.held["r00"]

    # When r00 is deregistered from the fleet
    rollout.given.ok("deregisterRobot", {"fleet": fleet["arn"], "robot": robots["r00"]["arn"]})

    # Then its retained command becomes an abort of its attempt
    assert rollout.robots.commanded("abort") == ["r00"]
    # And its agent's answer to the abort ends its deployment at once (not at the robot timeout)
    aborted = report(
        command.jobId, command.attempt, 1, "Validating", "Failed", failureCode="RobotDeploymentAborted",
        failureReason="aborted",
    )  # fmt: skip
    rollout.robots.send("r00", aborted)
    done = rollout.wait(job)
    summary = {r["arn"].split("/")[-2]: r["status"] for r in done["robotDeploymentSummary"]}
    assert summary == {"r00": "Failed", "r01": "InSync"}


def test_deregistering_a_robot_with_no_deployment_running_sends_nothing(rollout):
    fleet = rollout.given.fleet("warehouse")
    robot = rollout.given.robot("r00", fleet=fleet)
    rollout.given.ok("deregisterRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})
    assert rollout.robots.commanded("abort") == []


def test_a_robot_deregistered_before_its_wave_gets_no_command_and_its_deployment_ends_aborted(rollout):
    # Given 4 robots in waves of 50%, held by an approval gate after the first wave
    fleet = rollout.given.fleet("warehouse")
    robots = {f"r{i:02d}": rollout.given.robot(f"r{i:02d}", fleet=fleet) for i in range(4)}
    job = rollout.start(
        fleet,
        rollout.given.application_version("nav"),
        deploymentConfig={"concurrentDeploymentPercentage": 50, "approval": {"after": "FirstWave"}},
    )
    rollout.pump_until(lambda: "waitingForApproval" in rollout.describe(job), "the gate")
    first_wave = sorted(rollout.robots.commanded("deploy"))
    [later] = sorted(set(robots) - set(first_wave))[-1:]

    # When a robot of the second wave is deregistered from the fleet, then the wave is approved
    rollout.given.ok("deregisterRobot", {"fleet": fleet["arn"], "robot": robots[later]["arn"]})
    rollout.given.ok("approveDeploymentWave", {"job": job["arn"]})
    done = rollout.wait(job)

    # Then it never received the job's command, its deployment ended at once as aborted (not at the robot
    # timeout), and every other robot deployed
    assert later not in rollout.robots.commanded("deploy")
    summary = {r["arn"].split("/")[-2]: r for r in done["robotDeploymentSummary"]}
    assert summary[later]["status"] == "Failed"
    assert summary[later]["failureCode"] == "RobotDeploymentAborted"
    assert {name: r["status"] for name, r in summary.items() if name != later} == {
        name: "InSync" for name in robots if name != later
    }
