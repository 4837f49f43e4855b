"""Robot and fleet requests and responses (CreateRobot, DeleteRobot, DescribeRobot, ListRobots,
Register/DeregisterRobot; CreateFleet, DeleteFleet, DescribeFleet, ListFleets)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fleetwave_service.core.wire import (
    Architecture,
    Arn,
    DeploymentStatus,
    Filters,
    Id,
    MaxResults,
    Name,
    PaginationToken,
    RequestModel,
    ResponseModel,
    RobotStatus,
    TagMap,
)


class CreateRobotRequest(RequestModel):
    name: Name
    architecture: Architecture
    greengrassGroupId: Id
    tags: TagMap | None = None


class RobotRequest(RequestModel):
    """DeleteRobot and DescribeRobot: the robot's ARN."""

    robot: Arn


class RobotMembershipRequest(RequestModel):
    """RegisterRobot and DeregisterRobot."""

    fleet: Arn
    robot: Arn


class ListRobotsRequest(RequestModel):
    nextToken: PaginationToken | None = None
    maxResults: MaxResults | None = None
    filters: Filters | None = None


class CreateRobotResponse(ResponseModel):
    arn: str
    name: str
    createdAt: float
    greengrassGroupId: str
    architecture: Architecture
    tags: dict[str, str] = Field(default_factory=dict)


class RobotSummary(ResponseModel):
    arn: str
    name: str
    fleetArn: str | None = None
    status: RobotStatus
    greengrassGroupId: str | None = None
    createdAt: float
    architecture: Architecture
    lastDeploymentJob: str | None = None
    lastDeploymentTime: float | None = None


class ApplicationHealth(ResponseModel):
    """Fleetwave's addition: what the robot's agent last said of the application it runs.

    Clients built on the original API model (botocore's ``robomaker``) ignore members they do not know.
    """

    status: Literal["Running", "Restarting", "Broken", "Stopped"]
    deploymentJob: str | None = None
    application: str | None = None
    applicationVersion: str | None = None
    restartCount: int = 0
    lastExitCode: int | None = None
    reason: str | None = None
    updatedAt: float


class Connectivity(ResponseModel):
    """Fleetwave's addition: whether the robot's agent is connected (its last will says when it is not)."""

    status: Literal["Online", "Offline"]
    agentVersion: str | None = None
    updatedAt: float


class DescribeRobotResponse(RobotSummary):
    tags: dict[str, str] = Field(default_factory=dict)
    applicationHealth: ApplicationHealth | None = None
    connectivity: Connectivity | None = None


class ListRobotsResponse(ResponseModel):
    robots: list[RobotSummary]
    nextToken: str | None = None


class RobotMembershipResponse(ResponseModel):
    fleet: str
    robot: str


# --- fleets -----------------------------------------------------------------------------------------


class CreateFleetRequest(RequestModel):
    name: Name
    tags: TagMap | None = None


class FleetRequest(RequestModel):
    """DeleteFleet and DescribeFleet: the fleet's ARN."""

    fleet: Arn


class ListFleetsRequest(RequestModel):
    nextToken: PaginationToken | None = None
    maxResults: MaxResults | None = None
    filters: Filters | None = None


class CreateFleetResponse(ResponseModel):
    arn: str
    name: str
    createdAt: float
    tags: dict[str, str] = Field(default_factory=dict)


class FleetSummary(ResponseModel):
    name: str
    arn: str
    createdAt: float
    lastDeploymentStatus: DeploymentStatus | None = None
    lastDeploymentJob: str | None = None
    lastDeploymentTime: float | None = None


class DescribeFleetResponse(FleetSummary):
    robots: list[RobotSummary] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)


class ListFleetsResponse(ResponseModel):
    fleetDetails: list[FleetSummary]
    nextToken: str | None = None
