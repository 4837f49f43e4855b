"""Rollouts made through the signed SDK for end-to-end tests (a fleet, a version, a job, waiting for its end);
the ``rollouts`` and ``simulate`` fixtures in tests/e2e/conftest.py hand them out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from support.waiting import wait_for

BUCKET = "fleetwave-bundles"
# Caps, not expectations: each rollout here ends in a few seconds.
DEADLINE_SECONDS = 60.0
# The wave wait, in production seconds: long enough that a loaded machine never makes an ok robot late.
SAFE_TIMEOUT = 300
FINAL_JOB = ("Succeeded", "Failed", "Canceled")
FINAL_ROBOT = ("InSync", "Failed", "NoResponse")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def robot_name(arn: str) -> str:
    return arn.split(":", 5)[-1].split("/")[1]


class Rollouts:
    """Resources made through the signed SDK (raises on any error answer), and polling helpers."""

    def __init__(self, api: Any, serve: Any) -> None:
        self.client = api.client
        self.serve = serve

    def fleet(self, robots: list[str], architecture: str = "X86_64") -> dict[str, Any]:
        fleet = self.client.call("createFleet", {"name": unique("e2e-rollout")})
        for name in robots:
            self.add_robot(fleet, name, architecture)
        return fleet

    def add_robot(self, fleet: dict[str, Any], name: str, architecture: str = "X86_64") -> dict[str, Any]:
        robot = self.client.call(
            "createRobot", {"name": name, "architecture": architecture, "greengrassGroupId": "gg-e2e"}
        )
        self.client.call("registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})
        return robot

    def version(self, of: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new application's version 1, or (``of``: a version) the next version of its application, each
        with a bundle of its own."""
        name = of["name"] if of is not None else unique("e2e-app")
        key = f"{name}/{uuid.uuid4().hex[:8]}/x86_64.tar.gz"
        self.serve.aws_client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"a bundle for " + key.encode())
        body = {
            "sources": [{"s3Bucket": BUCKET, "s3Key": key, "architecture": "X86_64"}],
            "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"},
        }
        if of is None:
            application = self.client.call("createRobotApplication", {"name": name, **body})
        else:
            application = self.client.call("updateRobotApplication", {"application": of["arn"], **body})
        return self.client.call("createRobotApplicationVersion", {"application": application["arn"]})

    def job(self, fleet: dict[str, Any], version: dict[str, Any], **deployment_config: Any) -> dict[str, Any]:
        return self.client.call(
            "createDeploymentJob",
            {
                "clientRequestToken": unique("token"),
                "fleet": fleet["arn"],
                "deploymentConfig": deployment_config,
                "deploymentApplicationConfigs": [
                    {
                        "application": version["arn"],
                        "applicationVersion": version["version"],
                        "launchConfig": {"packageName": "nav", "launchFile": "nav.launch"},
                    }
                ],
            },
        )

    def describe(self, job: dict[str, Any]) -> dict[str, Any]:
        return self.client.call("describeDeploymentJob", {"job": job["arn"]})

    def robots_of(self, job: dict[str, Any]) -> dict[str, dict[str, Any]]:
        summary = self.describe(job).get("robotDeploymentSummary") or []
        return {robot_name(item["arn"]): item for item in summary}

    def wait_for(self, what: str, check: Callable[[], Any]) -> Any:
        return wait_for(what, check, DEADLINE_SECONDS)

    def finished(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job once it ended, with every robot in a final state."""

        def ended() -> dict[str, Any] | None:
            described = self.describe(job)
            robots = described.get("robotDeploymentSummary") or []
            if described["status"] in FINAL_JOB and all(r["status"] in FINAL_ROBOT for r in robots):
                return described
            return None

        return self.wait_for(f"job {job['arn']} to end", ended)


def names(prefix: str, count: int) -> list[str]:
    """Robot names whose name order is their index order (the engine releases in name order)."""
    return [f"{prefix}-{i:02d}" for i in range(1, count + 1)]
