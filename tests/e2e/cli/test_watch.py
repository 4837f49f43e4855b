"""`fleetwave jobs watch` and `fleetwave deployments watch` as a user runs them (subprocesses), against
`fleetwave serve` with `fleetwave simulate` robots (issue 13, item 2). Off a terminal: plain lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.rollouts import SAFE_TIMEOUT, names, unique

# A cap, not an expectation: each rollout ends within seconds at the e2e time scale.
WATCH_TIMEOUT_SECONDS = 180


def watch(*args: str, endpoint: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetwave.cli", *args, "--endpoint", endpoint, "--interval", "0.2"],
        capture_output=True,
        text=True,
        timeout=WATCH_TIMEOUT_SECONDS,
        env={**os.environ, **(env or {})},
    )


def test_jobs_watch_follows_a_job_to_success_and_names_each_failure(
    rollouts: Any, simulate: Any, serve: Any
) -> None:
    # Given a fleet of 4 where one robot fails its pre-launch script, and a job that tolerates one failure
    robots = names(unique("watch"), 4)
    fleet = rollouts.fleet(robots)
    simulate(fleet, {robots[2]: "fail:PreLaunchFileFailure"}, robots=4)
    job = rollouts.job(
        fleet,
        rollouts.version(),
        concurrentDeploymentPercentage=50,
        failureThresholdPercentage=30,
        robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT,
    )
    # When the operator watches it by its id
    result = watch("jobs", "watch", job["arn"].rsplit("/", 1)[-1], endpoint=serve.api_url)
    # Then the watch follows the waves, names the failure with its code, and ends with the outcome: exit 0
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any("wave 2 of 2" in line for line in lines)
    assert f"  {robots[2]} (wave 2): Failed PreLaunchFileFailure" in lines
    assert any("of 30% allowed" in line for line in lines)  # the threshold gauge
    assert lines[-1] == f"job {job['arn'].rsplit('/', 1)[-1]} ended Succeeded: InSync 3, Failed 1"
    assert "\x1b[" not in result.stdout  # plain lines off a terminal


def test_jobs_watch_shows_a_wave_waiting_for_approval_and_a_pause(
    rollouts: Any, simulate: Any, serve: Any, api: Any, tmp_path: Path
) -> None:
    # Given a job gated after its first wave, on a simulated fleet of 2
    robots = names(unique("watchgate"), 2)
    fleet = rollouts.fleet(robots)
    simulate(fleet, {}, robots=2)
    job = rollouts.job(
        fleet,
        rollouts.version(),
        concurrentDeploymentPercentage=50,
        robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT,
        approval={"after": "FirstWave"},
    )
    # When the operator watches it: it shows the gate; paused, it shows the pause; approved and resumed
    log = tmp_path / "watch.log"
    with log.open("w") as output, subprocess.Popen(
        [sys.executable, "-m", "fleetwave.cli", "jobs", "watch", job["arn"], "--endpoint", serve.api_url,
         "--interval", "0.2"],
        stdout=output, stderr=subprocess.STDOUT, text=True,
    ) as watching:  # fmt: skip
        rollouts.wait_for(
            "the watch to show the gate", lambda: "waiting for approval wave 2" in log.read_text()
        )
        api.client.call("pauseDeploymentJob", {"job": job["arn"]})
        rollouts.wait_for("the watch to show the pause", lambda: "paused since" in log.read_text())
        api.client.call("approveDeploymentWave", {"job": job["arn"]})
        api.client.call("resumeDeploymentJob", {"job": job["arn"]})
        watching.wait(timeout=WATCH_TIMEOUT_SECONDS)
    out = log.read_text()
    # Then the watch said why the job held, and followed it to its end
    assert watching.returncode == 0, out
    assert "waiting for approval wave 2, until" in out
    assert "approval gates before wave 2, cancel after 86400 s" in out
    assert "paused since" in out
    assert out.splitlines()[-1].endswith("ended Succeeded: InSync 2")


def test_jobs_watch_exits_1_when_the_job_fails(rollouts: Any, simulate: Any, serve: Any) -> None:
    # Given a job whose threshold the first failure breaches
    robots = names(unique("watchfail"), 2)
    fleet = rollouts.fleet(robots)
    simulate(fleet, {robots[0]: "fail:PreLaunchFileFailure"}, robots=2)
    job = rollouts.job(
        fleet, rollouts.version(), failureThresholdPercentage=10, robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT
    )
    # When the operator watches it by its ARN
    result = watch("jobs", "watch", job["arn"], endpoint=serve.api_url)
    # Then it ends Failed with the job's failure code, exit 1
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ended Failed (FailureThresholdBreached" in result.stdout.splitlines()[-1]


def test_jobs_watch_unknown_job_exits_2_with_the_apis_message(serve: Any) -> None:
    result = watch("jobs", "watch", "deployment-nosuchjob000", endpoint=serve.api_url)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "fleetwave jobs watch: ResourceNotFoundException: deployment job "
        "arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-nosuchjob000 does not exist"
    ]


def test_jobs_watch_wrong_endpoint_or_no_credentials_is_one_line(serve: Any, tmp_path: Path) -> None:
    # A port nobody listens on
    unreachable = watch("jobs", "watch", "deployment-x", endpoint=f"http://127.0.0.1:{_closed_port()}/")
    assert unreachable.returncode == 2
    assert len(unreachable.stderr.splitlines()) == 1
    assert "cannot reach the Fleetwave API at http://127.0.0.1:" in unreachable.stderr
    # The embedded AWS endpoint: something answers, but not the API
    not_api = watch("jobs", "watch", "deployment-x", endpoint=serve.aws_url)
    assert not_api.returncode == 2
    assert not_api.stderr.strip().endswith("does not answer like a Fleetwave API (HTTP 404)")
    # The API's host, but a path it has no route for (a deployed stack's URL with the wrong stage): API
    # Gateway's 403 MissingAuthenticationTokenException, which names the URL, not the credentials
    wrong_stage = watch("jobs", "watch", "deployment-x", endpoint=serve.api_url.rstrip("/") + "/prod/")
    assert wrong_stage.returncode == 2
    assert wrong_stage.stderr.splitlines() == [
        f"fleetwave jobs watch: {serve.api_url.rstrip('/')}/prod/ has no Fleetwave API at that path "
        "(HTTP 403 MissingAuthenticationTokenException); give the stack's ApiUrl output, stage included"
    ]
    # A deployed stack's URL with no credentials anywhere
    bare = {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
    }
    no_credentials = watch("jobs", "watch", "deployment-x", endpoint="https://api.example.invalid/", env=bare)
    assert no_credentials.returncode == 2
    assert no_credentials.stderr.splitlines() == [
        "fleetwave jobs watch: no credentials to sign with: Unable to locate credentials"
    ]


def test_deployments_watch_follows_a_greengrass_deployment(
    rollouts: Any, simulate: Any, serve: Any, api: Any
):
    # Given a thing group of 2 simulated robots and a Greengrass deployment to it
    robots = names(unique("ggwatch"), 2)
    fleet = rollouts.fleet(robots)
    simulate(fleet, {}, robots=2)
    deployment = api.greengrass.create_deployment(
        targetArn=f"arn:aws:iot:us-east-1:123456789012:thinggroup/{fleet['name']}",
        components={"com.example.Nav": {"componentVersion": "1.0.0"}},
    )
    # When the operator watches it
    result = watch("deployments", "watch", deployment["deploymentId"], endpoint=serve.api_url)
    # Then it ends COMPLETED with each core device's execution, exit 0
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"deployment {deployment['deploymentId']} ended COMPLETED: SUCCEEDED 2"
    )
    unknown = watch("deployments", "watch", "00000000-0000-0000-0000-000000000000", endpoint=serve.api_url)
    assert unknown.returncode == 2
    assert "ResourceNotFoundException" in unknown.stderr


def _closed_port() -> int:
    from fleetwave.local.serve_process import free_port

    return free_port()
