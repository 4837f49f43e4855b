"""Tag requests and responses (TagResource, UntagResource, ListTagsForResource)."""

from __future__ import annotations

from fleetwave_service.core.wire import RequestModel, ResponseModel, TagMap


class TagResourceRequest(RequestModel):
    tags: TagMap


class ListTagsForResourceResponse(ResponseModel):
    tags: dict[str, str]
