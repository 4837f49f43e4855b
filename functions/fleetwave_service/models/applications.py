"""Robot application requests and responses (Create, CreateVersion, Update, Describe, List, Delete)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from fleetwave_service.core.wire import (
    Architecture,
    Arn,
    Filters,
    Name,
    PaginationToken,
    RequestModel,
    ResponseModel,
    RevisionId,
    S3Bucket,
    S3Etag,
    S3Key,
    TagMap,
    Version,
)

RobotSoftwareSuiteType = Literal["ROS", "ROS2", "General"]
RobotSoftwareSuiteVersionType = Literal["Kinetic", "Melodic", "Dashing", "Foxy"]


class RobotSoftwareSuite(RequestModel):
    name: RobotSoftwareSuiteType
    # "General" applications have no ROS distribution.
    version: RobotSoftwareSuiteVersionType | None = None


class SourceConfig(RequestModel):
    s3Bucket: S3Bucket
    s3Key: S3Key
    architecture: Architecture


def _one_source_per_architecture(sources: list[SourceConfig] | None) -> list[SourceConfig] | None:
    # Dispatch picks a robot's bundle by its architecture, so two bundles for one would be ambiguous.
    if sources is not None:
        seen = [source.architecture for source in sources]
        duplicates = sorted({arch for arch in seen if seen.count(arch) > 1})
        if duplicates:
            raise ValueError(f"at most one source per architecture; repeated: {', '.join(duplicates)}")
    return sources


Sources = Annotated[list[SourceConfig], Field(min_length=1, max_length=3)]


class CreateRobotApplicationRequest(RequestModel):
    name: Name
    sources: Sources
    robotSoftwareSuite: RobotSoftwareSuite
    tags: TagMap | None = None

    _check_sources = field_validator("sources")(_one_source_per_architecture)


class CreateRobotApplicationVersionRequest(RequestModel):
    application: Arn
    currentRevisionId: RevisionId | None = None
    # One etag per source, in the order of the application's sources: the version is only created if the
    # bundles in S3 are still the ones the caller tested.
    s3Etags: list[S3Etag] | None = None


class UpdateRobotApplicationRequest(RequestModel):
    application: Arn
    sources: Sources | None = None
    robotSoftwareSuite: RobotSoftwareSuite
    currentRevisionId: RevisionId | None = None

    _check_sources = field_validator("sources")(_one_source_per_architecture)


class RobotApplicationVersionRequest(RequestModel):
    """DescribeRobotApplication and DeleteRobotApplication."""

    application: Arn
    applicationVersion: Version | None = None


class ListRobotApplicationsRequest(RequestModel):
    versionQualifier: Literal["ALL"] | None = None
    nextToken: PaginationToken | None = None
    maxResults: Annotated[int, Field(ge=1, le=100)] | None = None
    filters: Filters | None = None


class Source(ResponseModel):
    s3Bucket: str
    s3Key: str
    etag: str | None = None
    architecture: Architecture


class RobotApplicationResponse(ResponseModel):
    """CreateRobotApplicationVersion and UpdateRobotApplication (no tags)."""

    arn: str
    name: str
    version: str
    sources: list[Source]
    robotSoftwareSuite: RobotSoftwareSuite
    lastUpdatedAt: float
    revisionId: str


class TaggedRobotApplicationResponse(RobotApplicationResponse):
    """CreateRobotApplication and DescribeRobotApplication."""

    tags: dict[str, str] = Field(default_factory=dict)


class RobotApplicationSummary(ResponseModel):
    name: str
    arn: str
    version: str
    lastUpdatedAt: float
    robotSoftwareSuite: RobotSoftwareSuite


class ListRobotApplicationsResponse(ResponseModel):
    robotApplicationSummaries: list[RobotApplicationSummary]
    nextToken: str | None = None
