"""Fleet requests and responses (CreateFleet, DeleteFleet, DescribeFleet, ListFleets)."""

from __future__ import annotations

from pydantic import Field

from fleetwave_service.core.wire import (
    Arn,
    DeploymentStatus,
    Filters,
    MaxResults,
    Name,
    PaginationToken,
    RequestModel,
    ResponseModel,
    TagMap,
)
from fleetwave_service.models.robots import RobotSummary


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
