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
    # Fleetwave extensions (docs/extensions.md), in the same style.
    "approveDeploymentWave",
    "pauseDeploymentJob",
    "resumeDeploymentJob",
    "retryDeploymentJob",
    "rollbackFleet",
)

GREENGRASS_ROUTES: tuple[Route, ...] = (
    Route("POST", "/greengrass/v2/deployments"),
    Route("GET", "/greengrass/v2/deployments"),
    Route("GET", "/greengrass/v2/deployments/{deploymentId}"),
    Route("DELETE", "/greengrass/v2/deployments/{deploymentId}"),
    Route("POST", "/greengrass/v2/deployments/{deploymentId}/cancel"),
    Route("GET", "/greengrass/v2/coreDevices"),
    Route("GET", "/greengrass/v2/coreDevices/{coreDeviceThingName}"),
    Route("GET", "/greengrass/v2/coreDevices/{coreDeviceThingName}/effectiveDeployments"),
    Route("GET", "/greengrass/v2/coreDevices/{coreDeviceThingName}/installedComponents"),
    Route("POST", "/greengrass/v2/createComponentVersion"),
    Route("GET", "/greengrass/v2/components"),
    Route("GET", "/greengrass/v2/components/{arn}"),
    Route("DELETE", "/greengrass/v2/components/{arn}"),
    Route("GET", "/greengrass/v2/components/{arn}/metadata"),
    Route("GET", "/greengrass/v2/components/{arn}/versions"),
)

ROUTES: tuple[Route, ...] = (
    *(Route("POST", f"/{operation}") for operation in ROBOMAKER_OPERATIONS),
    # Tags take any resource ARN in the path; ARNs contain '/', hence the greedy parameter.
    Route("GET", "/tags/{resourceArn+}"),
    Route("POST", "/tags/{resourceArn+}"),
    Route("DELETE", "/tags/{resourceArn+}", required_query=("tagKeys",)),
    # Greengrass V2 front door (reference/greengrass-v2.md, botocore's greengrassv2 paths).
    *GREENGRASS_ROUTES,
)
