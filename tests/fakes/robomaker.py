"""Givens for RoboMaker API tests: create resources through the API and return what it answered.

given = Given(api, aws)
fleet = given.fleet("warehouse")
robot = given.robot("r1", fleet=fleet)            # created and registered
version = given.application_version("nav")        # bundle uploaded to S3, app created, version "1"
job = given.job(fleet, version)                   # CreateDeploymentJob, answered 200
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

BUCKET = "fleetwave-bundles"


def list_pages(api: Any, operation: str, body: dict[str, Any], key: str) -> tuple[list[dict[str, Any]], int]:
    """Every item a List operation returns under ``key``, following nextToken: (items, pages read)."""
    items: list[dict[str, Any]] = []
    token, pages = None, 0
    while True:
        page = api.call(operation, {**body, **({"nextToken": token} if token else {})})
        assert page.status == 200, page.json
        items += page.json[key]
        pages += 1
        token = page.json.get("nextToken")
        if not token:
            return items, pages


def unique(prefix: str) -> str:
    """A name no other test uses (end-to-end tests share one `fleetwave serve` for the whole session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Given:
    """``aws`` is anything with ``client(service)``: a boto3 Session, or the embedded AWS endpoint.

    ``token_prefix`` keeps client request tokens apart when several tests share one service.
    """

    def __init__(self, api: Any, aws: Any, token_prefix: str = "token") -> None:
        self.api = api
        self.aws = aws
        self._token_prefix = token_prefix
        self._tokens = itertools.count(1)

    def ok(self, operation: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.api.call(operation, body)
        assert response.status == 200, (operation, response.status, response.json)
        return response.json

    def fleet(self, name: str = "warehouse", **extra: Any) -> dict[str, Any]:
        return self.ok("createFleet", {"name": name, **extra})

    def robot(
        self, name: str = "robot-1", architecture: str = "X86_64", fleet: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        robot = self.ok(
            "createRobot", {"name": name, "architecture": architecture, "greengrassGroupId": "gg-1"}
        )
        if fleet is not None:
            self.ok("registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})
        return robot

    def bundle(self, key: str, content: bytes = b"bundle") -> str:
        """Upload a bundle; returns its ETag (without quotes)."""
        s3 = self.aws.client("s3")
        if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=BUCKET)
        return s3.put_object(Bucket=BUCKET, Key=key, Body=content)["ETag"].strip('"')

    def application(
        self, name: str = "nav", architectures: tuple[str, ...] = ("X86_64",), **extra: Any
    ) -> dict:
        sources = []
        for architecture in architectures:
            key = f"{name}/{architecture}.tar.gz"
            self.bundle(key, f"{name}-{architecture}".encode())
            sources.append({"s3Bucket": BUCKET, "s3Key": key, "architecture": architecture})
        body = {"name": name, "sources": sources, "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"}}
        return self.ok("createRobotApplication", {**body, **extra})

    def application_version(self, name: str = "nav", **extra: Any) -> dict[str, Any]:
        application = self.application(name, **extra)
        return self.ok("createRobotApplicationVersion", {"application": application["arn"]})

    def job_request(self, fleet: dict[str, Any], version: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "clientRequestToken": f"{self._token_prefix}-{next(self._tokens)}",
            "fleet": fleet["arn"],
            "deploymentApplicationConfigs": [
                {
                    "application": version["arn"],
                    "applicationVersion": version["version"],
                    "launchConfig": {"packageName": "nav", "launchFile": "nav.launch"},
                }
            ],
            **extra,
        }

    def job(self, fleet: dict[str, Any], version: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return self.ok("createDeploymentJob", self.job_request(fleet, version, **extra))
