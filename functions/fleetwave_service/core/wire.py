"""Building blocks of the RoboMaker wire shapes: base models and the constrained scalar types.

Constraints are the original API's (seeds 000/001, reference/robomaker-api.md). Patterns are anchored
because pydantic matches a ``pattern`` anywhere in the string.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

# --- base models ----------------------------------------------------------------------------------


class WireModel(BaseModel):
    """Serialises without absent optional members: the original API omits them, it never sends null."""

    # defer_build: a model's validator and serializer are built when it is first used, not at import. The
    # API function loads every operation's models but a request uses one or two; the rollout steps and the
    # status function import some of these modules and use none of their models (docs/performance.md).
    model_config = ConfigDict(populate_by_name=True, extra="ignore", defer_build=True)

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: Any) -> Any:
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class RequestModel(WireModel):
    """A request body: strict types (a string where a number belongs is a 400, not a coercion).

    Unknown members are ignored, as AWS services do, so newer clients keep working.
    """

    model_config = ConfigDict(strict=True, extra="ignore")


class ResponseModel(WireModel):
    """A response: built from stored rows, whose extra (engine-only) attributes are dropped."""


class EmptyResponse(ResponseModel):
    """The ``{}`` body of operations that return nothing (DeleteFleet, TagResource, ...)."""


# --- scalar types ---------------------------------------------------------------------------------

Arn = Annotated[str, Field(min_length=1, max_length=1224, pattern=r"^arn:.*$")]
Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9_\-]*$")]
Id = Annotated[str, Field(min_length=1, max_length=1224, pattern=r"^.*$")]
ClientRequestToken = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_\-=]*$")]
PaginationToken = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[a-zA-Z0-9_.\-/+=]*$")]
MaxResults = Annotated[int, Field(ge=1, le=200)]
# The seed's tag pattern, plus '+', which the original also accepted.
TagKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9 _.\-/+=:]*$")]
TagValue = Annotated[str, Field(min_length=0, max_length=256, pattern=r"^[a-zA-Z0-9 _.\-/+=:]*$")]
TagMap = Annotated[dict[TagKey, TagValue], Field(max_length=50)]
MAX_TAGS = 50

Architecture = Literal["X86_64", "ARM64", "ARMHF"]
RobotStatus = Literal[
    "Available", "Registered", "PendingNewDeployment", "Deploying", "Failed", "InSync", "NoResponse"
]
DeploymentStatus = Literal["Pending", "Preparing", "InProgress", "Failed", "Succeeded", "Canceled"]
ACTIVE_JOB_STATUSES = ("Pending", "Preparing", "InProgress")

Version = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^(\$LATEST|[0-9]*)$")]
DeploymentVersion = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[0-9]*$")]
RevisionId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-zA-Z0-9_.\-]*$")]
S3Bucket = Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")]
S3Key = Annotated[str, Field(min_length=1, max_length=1024)]
S3Etag = Annotated[str, Field(max_length=1024)]
# Epoch seconds (fractions allowed), the way botocore reads a rest-json timestamp. The schema's format marks
# it, so the generated service models (fleetwave.sdk.generate) type it as a timestamp, not a float.
Timestamp = Annotated[float, Field(json_schema_extra={"format": "unix-time"})]


# --- list filters ---------------------------------------------------------------------------------


class Filter(RequestModel):
    """``{"name": "status", "values": ["InProgress"]}``: one complete value per filter, as the original."""

    name: Name
    values: Annotated[list[Name], Field(min_length=1, max_length=1)]


Filters = Annotated[list[Filter], Field(min_length=1, max_length=1)]


# --- tags (both front doors: the API's /tags routes) -----------------------------------------------------


class TagResourceRequest(RequestModel):
    tags: TagMap


class ListTagsForResourceResponse(ResponseModel):
    tags: dict[str, str]
