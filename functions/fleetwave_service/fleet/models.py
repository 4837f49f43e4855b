"""Robot and fleet requests and responses (CreateRobot, DeleteRobot, DescribeRobot, ListRobots,
Register/DeregisterRobot; CreateFleet, DeleteFleet, DescribeFleet, ListFleets)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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
    Timestamp,
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
    createdAt: Timestamp
    greengrassGroupId: str
    architecture: Architecture
    tags: dict[str, str] = Field(default_factory=dict)


class RobotFields(ResponseModel):
    arn: str
    name: str
    fleetArn: str | None = None
    status: RobotStatus
    greengrassGroupId: str | None = None
    createdAt: Timestamp
    architecture: Architecture
    lastDeploymentJob: str | None = None
    lastDeploymentTime: Timestamp | None = None


class RobotSummary(RobotFields):
    """A robot in ListRobots and DescribeFleet. AWS's model spelled the group id ``greenGrassGroupId`` in
    this shape (and ``greengrassGroupId`` in DescribeRobot): both are sent, so scripts written against
    either spelling read it."""

    greenGrassGroupId: str | None = None

    @model_validator(mode="after")
    def _both_spellings(self) -> RobotSummary:
        if self.greenGrassGroupId is None:
            self.greenGrassGroupId = self.greengrassGroupId
        return self


class ApplicationHealth(ResponseModel):
    """Fleetwave extension: what the robot's agent last reported of the application it runs (Running,
    Restarting, Broken, Stopped). Clients built on AWS's original model ignore it."""

    status: Literal["Running", "Restarting", "Broken", "Stopped"]
    deploymentJob: str | None = None
    application: str | None = None
    applicationVersion: str | None = None
    restartCount: int = 0
    lastExitCode: int | None = None
    reason: str | None = None
    updatedAt: Timestamp


class Connectivity(ResponseModel):
    """Fleetwave extension: whether the robot's agent is connected (its MQTT last will says when it is
    not). Clients built on AWS's original model ignore it."""

    status: Literal["Online", "Offline"]
    agentVersion: str | None = None
    updatedAt: Timestamp


class DescribeRobotResponse(RobotFields):
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
    createdAt: Timestamp
    tags: dict[str, str] = Field(default_factory=dict)


class FleetSummary(ResponseModel):
    name: str
    arn: str
    createdAt: Timestamp
    lastDeploymentStatus: DeploymentStatus | None = None
    lastDeploymentJob: str | None = None
    lastDeploymentTime: Timestamp | None = None


class DescribeFleetResponse(FleetSummary):
    robots: list[RobotSummary] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)


class ListFleetsResponse(ResponseModel):
    fleetDetails: list[FleetSummary]
    nextToken: str | None = None
