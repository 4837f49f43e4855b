"""Request-validation case tables of the RoboMaker API, shared by the in-process functional tests
(tests/functional/robomaker/test_validation.py) and the end-to-end tests over HTTP
(tests/e2e/robomaker/test_validation.py).

Every case breaks exactly one constraint of the seeds/reference in an otherwise valid request; the API must
answer 400 InvalidParameterException with a message starting with the offending field (never a 500).
Validation runs before any lookup, so the ARNs here need not exist.

- ``CASES``: (operation, dotted path, value or DELETE, field), applied to ``VALID[operation]`` by
  ``apply_case``.
- ``OTHER_CASES``: (operation, whole body, field).
- ``MALFORMED_BODIES``: (raw body, exact message) for bodies that are not a JSON object.
"""

from __future__ import annotations

import copy
from typing import Any

FLEET = "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/warehouse/1"
ROBOT = "arn:aws:robomaker:us-east-1:123456789012:robot/r1/1"
APPLICATION = "arn:aws:robomaker:us-east-1:123456789012:robot-application/nav/1"
JOB = "arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-000000000000"

VALID = {
    "createFleet": {"name": "warehouse"},
    "createRobot": {"name": "r1", "architecture": "X86_64", "greengrassGroupId": "gg"},
    "createRobotApplication": {
        "name": "nav",
        "sources": [{"s3Bucket": "bundles", "s3Key": "nav.tgz", "architecture": "X86_64"}],
        "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"},
    },
    "createDeploymentJob": {
        "clientRequestToken": "token-1",
        "fleet": FLEET,
        "deploymentApplicationConfigs": [
            {
                "application": APPLICATION,
                "applicationVersion": "1",
                "launchConfig": {"packageName": "nav", "launchFile": "nav.launch"},
            }
        ],
    },
}

LAUNCH = "deploymentApplicationConfigs[0].launchConfig"


def set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with value=DELETE, remove) a dotted path like 'deploymentApplicationConfigs.0.launchConfig'."""
    target = body
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    last = parts[-1]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value


DELETE = object()
CONFIGS = "deploymentApplicationConfigs.0"

CASES = [
    # names: 1-255 [a-zA-Z0-9_-] for fleets, robots and robot applications
    ("createFleet", "name", DELETE, "name:"),
    ("createFleet", "name", "", "name:"),
    ("createFleet", "name", "n" * 256, "name:"),
    ("createFleet", "name", "bad name!", "name:"),
    ("createFleet", "name", 7, "name:"),
    ("createRobot", "name", "r" * 256, "name:"),
    ("createRobot", "name", "", "name:"),
    ("createRobot", "name", "dots.not.allowed", "name:"),
    ("createRobotApplication", "name", "a" * 256, "name:"),
    ("createRobotApplication", "name", "", "name:"),
    # tags
    ("createFleet", "tags", {f"k{i}": "v" for i in range(51)}, "tags:"),
    ("createFleet", "tags", {"": "v"}, "tags"),
    ("createFleet", "tags", {"k" * 129: "v"}, "tags"),
    ("createFleet", "tags", {"k": "v" * 257}, "tags.k:"),
    ("createFleet", "tags", {"k": "semi;colon"}, "tags.k:"),
    ("createFleet", "tags", ["not", "a", "map"], "tags:"),
    # robots
    ("createRobot", "architecture", "MIPS", "architecture:"),
    ("createRobot", "architecture", DELETE, "architecture:"),
    ("createRobot", "greengrassGroupId", DELETE, "greengrassGroupId:"),
    ("createRobot", "greengrassGroupId", "", "greengrassGroupId:"),
    # robot applications
    ("createRobotApplication", "sources", [], "sources:"),
    (
        "createRobotApplication",
        "sources",
        [
            {"s3Bucket": "bundles", "s3Key": "a.tgz", "architecture": "ARM64"},
            {"s3Bucket": "bundles", "s3Key": "b.tgz", "architecture": "ARM64"},
        ],
        "sources:",
    ),
    ("createRobotApplication", "sources.0.s3Bucket", "Upper_Case", "sources[0].s3Bucket:"),
    ("createRobotApplication", "sources.0.s3Bucket", "ab", "sources[0].s3Bucket:"),
    ("createRobotApplication", "sources.0.s3Key", "", "sources[0].s3Key:"),
    ("createRobotApplication", "sources.0.architecture", "x86", "sources[0].architecture:"),
    ("createRobotApplication", "robotSoftwareSuite.name", "ROS3", "robotSoftwareSuite.name:"),
    ("createRobotApplication", "robotSoftwareSuite.version", "Humble", "robotSoftwareSuite.version:"),
    ("createRobotApplication", "robotSoftwareSuite", DELETE, "robotSoftwareSuite:"),
    # deployment jobs: request level
    ("createDeploymentJob", "clientRequestToken", DELETE, "clientRequestToken:"),
    ("createDeploymentJob", "clientRequestToken", "", "clientRequestToken:"),
    ("createDeploymentJob", "clientRequestToken", "t" * 65, "clientRequestToken:"),
    ("createDeploymentJob", "clientRequestToken", "has space", "clientRequestToken:"),
    ("createDeploymentJob", "fleet", "warehouse", "fleet:"),
    ("createDeploymentJob", "fleet", "arn:" + "x" * 1221, "fleet:"),
    ("createDeploymentJob", "deploymentApplicationConfigs", [], "deploymentApplicationConfigs:"),
    # exactly one application config
    (
        "createDeploymentJob",
        "deploymentApplicationConfigs",
        copy.deepcopy(VALID["createDeploymentJob"]["deploymentApplicationConfigs"]) * 2,
        "deploymentApplicationConfigs:",
    ),
    # application configs
    (
        "createDeploymentJob",
        f"{CONFIGS}.applicationVersion",
        "$LATEST",
        "deploymentApplicationConfigs[0].applicationVersion:",
    ),
    (
        "createDeploymentJob",
        f"{CONFIGS}.applicationVersion",
        "",
        "deploymentApplicationConfigs[0].applicationVersion:",
    ),
    ("createDeploymentJob", f"{CONFIGS}.application", "nav", "deploymentApplicationConfigs[0].application:"),
    ("createDeploymentJob", f"{CONFIGS}.launchConfig", DELETE, f"{LAUNCH}:"),
    ("createDeploymentJob", f"{CONFIGS}.launchConfig.packageName", "bad/name", f"{LAUNCH}.packageName:"),
    ("createDeploymentJob", f"{CONFIGS}.launchConfig.packageName", DELETE, f"{LAUNCH}.packageName:"),
    ("createDeploymentJob", f"{CONFIGS}.launchConfig.launchFile", "l" * 1025, f"{LAUNCH}.launchFile:"),
    ("createDeploymentJob", f"{CONFIGS}.launchConfig.preLaunchFile", "", f"{LAUNCH}.preLaunchFile:"),
    (
        "createDeploymentJob",
        f"{CONFIGS}.launchConfig.postLaunchFile",
        "p" * 1025,
        f"{LAUNCH}.postLaunchFile:",
    ),
    (
        "createDeploymentJob",
        f"{CONFIGS}.launchConfig.environmentVariables",
        {"lower_case": "x"},
        f"{LAUNCH}.environmentVariables",
    ),
    (
        "createDeploymentJob",
        f"{CONFIGS}.launchConfig.environmentVariables",
        {"AWS_REGION": "x"},
        f"{LAUNCH}.environmentVariables:",
    ),
    (
        "createDeploymentJob",
        f"{CONFIGS}.launchConfig.environmentVariables",
        {f"VAR_{i}": "x" for i in range(21)},
        f"{LAUNCH}.environmentVariables:",
    ),
    (
        "createDeploymentJob",
        f"{CONFIGS}.launchConfig.environmentVariables",
        {"EMPTY": ""},
        f"{LAUNCH}.environmentVariables.EMPTY:",
    ),
    # deployment config
    *[
        (
            "createDeploymentJob",
            f"deploymentConfig.{field}",
            value,
            f"deploymentConfig.{field}:",
        )
        for field in ("concurrentDeploymentPercentage", "failureThresholdPercentage")
        for value in (0, 101, -5, 50.5, "50", True)
    ],
    (
        "createDeploymentJob",
        "deploymentConfig.robotDeploymentTimeoutInSeconds",
        59,
        "deploymentConfig.robotDeploymentTimeoutInSeconds:",
    ),
    (
        "createDeploymentJob",
        "deploymentConfig.robotDeploymentTimeoutInSeconds",
        7 * 24 * 3600 + 1,
        "deploymentConfig.robotDeploymentTimeoutInSeconds:",
    ),
    (
        "createDeploymentJob",
        "deploymentConfig.downloadConditionFile",
        {"bucket": "Bad_Bucket", "key": "check.sh"},
        "deploymentConfig.downloadConditionFile.bucket:",
    ),
    (
        "createDeploymentJob",
        "deploymentConfig.downloadConditionFile",
        {"bucket": "conditions"},
        "deploymentConfig.downloadConditionFile.key:",
    ),
    ("createDeploymentJob", "deploymentConfig", "fast", "deploymentConfig:"),
    ("createDeploymentJob", "tags", {"k": "v" * 257}, "tags.k:"),
    # Fleetwave extension deploymentConfig.approval (docs/extensions.md): only as documented
    *[
        ("createDeploymentJob", "deploymentConfig.approval", value, f"deploymentConfig.approval{field}:")
        for value, field in (
            ("EveryWave", ""),
            ({}, ".after"),
            ({"after": "SecondWave"}, ".after"),
            ({"after": "everyWave"}, ".after"),
            ({"after": "FirstWave", "timeoutInSeconds": 59}, ".timeoutInSeconds"),
            ({"after": "FirstWave", "timeoutInSeconds": 30 * 24 * 3600 + 1}, ".timeoutInSeconds"),
            ({"after": "FirstWave", "timeoutInSeconds": "3600"}, ".timeoutInSeconds"),
            ({"after": "FirstWave", "onTimeout": "Abort"}, ".onTimeout"),
            ({"after": "FirstWave", "timeout": 3600}, ".timeout"),
        )
    ],
]


def _case_id(case):
    operation, path, value, _ = case
    shown = "absent" if value is DELETE else repr(value)[:20]
    return f"{operation}-{path}-{shown}"


def case_id(case: tuple[str, str, Any, str]) -> str:
    operation, path, value, _ = case
    shown = "absent" if value is DELETE else repr(value)[:20]
    return f"{operation}-{path}-{shown}"


def apply_case(case: tuple[str, str, Any, str]) -> tuple[str, dict[str, Any]]:
    """The operation and its request body with the case's one constraint broken."""
    operation, path, value, _ = case
    body = copy.deepcopy(VALID[operation])
    set_path(body, path, value)
    return operation, body


OTHER_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("listFleets", {"maxResults": 0}, "maxResults:"),
    ("listFleets", {"maxResults": 201}, "maxResults:"),
    ("listRobots", {"maxResults": "10"}, "maxResults:"),
    ("listDeploymentJobs", {"nextToken": ""}, "nextToken:"),
    ("listDeploymentJobs", {"nextToken": "n" * 2049}, "nextToken:"),
    ("listRobots", {"filters": []}, "filters:"),
    (
        "listRobots",
        {"filters": [{"name": "status", "values": ["Available", "Registered"]}]},
        "filters[0].values:",
    ),
    ("listRobots", {"filters": [{"name": "status", "values": []}]}, "filters[0].values:"),
    ("listRobots", {"filters": [{"name": "status"}]}, "filters[0].values:"),
    (
        "listRobots",
        {"filters": [{"name": "status", "values": ["A"]}, {"name": "fleetName", "values": ["B"]}]},
        "filters:",
    ),
    # A status filter takes the operation's own statuses; each operation takes only its own filters
    ("listRobots", {"filters": [{"name": "status", "values": ["Bogus"]}]}, "filters[0].values[0]:"),
    ("listRobots", {"filters": [{"name": "status", "values": ["Succeeded"]}]}, "filters[0].values[0]:"),
    (
        "listDeploymentJobs",
        {"filters": [{"name": "status", "values": ["InSync"]}]},
        "filters[0].values[0]:",
    ),
    ("listDeploymentJobs", {"filters": [{"name": "name", "values": ["x"]}]}, "filters[0].name:"),
    ("listFleets", {"filters": [{"name": "status", "values": ["x"]}]}, "filters[0].name:"),
    ("listRobotApplications", {"versionQualifier": "LATEST"}, "versionQualifier:"),
    (
        "describeRobotApplication",
        {"application": APPLICATION, "applicationVersion": "v1"},
        "applicationVersion:",
    ),
    ("describeFleet", {}, "fleet:"),
    ("describeRobot", {"robot": 12}, "robot:"),
    ("describeDeploymentJob", {"job": "deployment-1"}, "job:"),
    ("registerRobot", {"fleet": FLEET}, "robot:"),
    ("syncDeploymentJob", {"fleet": FLEET}, "clientRequestToken:"),
    (
        "createRobotApplicationVersion",
        {"application": APPLICATION, "currentRevisionId": "r" * 41},
        "currentRevisionId:",
    ),
    ("updateRobotApplication", {"application": APPLICATION}, "robotSoftwareSuite:"),
    ("cancelDeploymentJob", {"job": ""}, "job:"),
    # Fleetwave extension operations (docs/extensions.md)
    ("approveDeploymentWave", {}, "job:"),
    ("approveDeploymentWave", {"job": JOB, "wave": 1}, "wave:"),
    ("approveDeploymentWave", {"job": JOB, "wave": 101}, "wave:"),
    ("approveDeploymentWave", {"job": JOB, "wave": "2"}, "wave:"),
    ("pauseDeploymentJob", {}, "job:"),
    ("resumeDeploymentJob", {"job": "deployment-1"}, "job:"),
    ("retryDeploymentJob", {"job": JOB}, "clientRequestToken:"),
    ("retryDeploymentJob", {"clientRequestToken": "t", "job": "x"}, "job:"),
    ("rollbackFleet", {"clientRequestToken": "t", "fleet": "warehouse"}, "fleet:"),
    (
        "rollbackFleet",
        {
            "clientRequestToken": "t",
            "fleet": FLEET,
            "deploymentConfig": {"concurrentDeploymentPercentage": 0},
        },
        "deploymentConfig.concurrentDeploymentPercentage:",
    ),
    (
        "rollbackFleet",
        {"clientRequestToken": "t", "fleet": FLEET, "deploymentConfig": {"approval": {"after": "Never"}}},
        "deploymentConfig.approval.after:",
    ),
]


MALFORMED_BODIES = [
    ("{not json", "request body: is not valid JSON"),
    ('["a", "list"]', "request body: must be a JSON object"),
    ('"a string"', "request body: must be a JSON object"),
    ("42", "request body: must be a JSON object"),
    ("null", "request body: must be a JSON object"),
    ('[{"name": "a"}, {"name": "b"}]', "request body: must be a JSON object"),
]
MALFORMED_BODY_IDS = ["garbled", "array", "string", "number", "null", "array-of-objects"]
