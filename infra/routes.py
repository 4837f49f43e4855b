"""Every route the API Lambda serves, in one table: API Gateway gets exactly these methods.

Adding an operation to the API is one edit here (plus the handler); a test compares this table with the
routes the API Lambda's resolver serves. Each route is proxied to the API Lambda and IAM-authorised;
`required_query` names query strings API Gateway must see before it invokes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    required_query: tuple[str, ...] = ()


# RoboMaker front door: `POST /<lowerCamelOperation>` with a JSON body (reference/robomaker-api.md).
ROBOMAKER_OPERATIONS: tuple[str, ...] = (
    "createFleet",
    "deleteFleet",
    "describeFleet",
    "listFleets",
    "createRobot",
    "deleteRobot",
    "describeRobot",
    "listRobots",
    "registerRobot",
    "deregisterRobot",
    "createRobotApplication",
    "createRobotApplicationVersion",
    "updateRobotApplication",
    "describeRobotApplication",
    "listRobotApplications",
    "deleteRobotApplication",
    "createDeploymentJob",
    "describeDeploymentJob",
    "listDeploymentJobs",
    "cancelDeploymentJob",
    "syncDeploymentJob",
)

ROUTES: tuple[Route, ...] = (
    *(Route("POST", f"/{operation}") for operation in ROBOMAKER_OPERATIONS),
    # Tags take any resource ARN in the path; ARNs contain '/', hence the greedy parameter.
    Route("GET", "/tags/{resourceArn+}"),
    Route("POST", "/tags/{resourceArn+}"),
    Route("DELETE", "/tags/{resourceArn+}", required_query=("tagKeys",)),
    # Greengrass V2 front door (reference/greengrass-v2.md) goes here, under /greengrass/v2/, as the API
    # Lambda starts serving it; tests/infra checks this table against the Lambda's own routes.
)
