"""The API Lambda: API Gateway proxy events -> one front door's route -> wire response.

It serves both front doors' routers (robomaker/routes.py: ``POST /<lowerCamelOperation>``; greengrass/
routes.py: ``/greengrass/v2/...``) and the tags operations they share under ``/tags/{resourceArn}`` (a
Greengrass ARN gets Greengrass semantics and errors). Request bodies are validated by Powertools against the
pydantic models (the seed's constraints); every error leaves through one map (core/errors.py to_wire):
status code, ``x-amzn-ErrorType`` header and ``{"message": ...}``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from fleetwave_service.core.errors import (
    FleetwaveError,
    InternalServerError,
    InvalidParameterError,
    UnknownOperationError,
    ValidationError,
    to_wire,
)
from fleetwave_service.core.validation import describe_errors
from fleetwave_service.core.wire import Arn, EmptyResponse, TagKey
from fleetwave_service.greengrass import idempotency
from fleetwave_service.greengrass import routes as greengrass_routes
from fleetwave_service.greengrass import tags as greengrass_tags
from fleetwave_service.robomaker import routes as robomaker_routes
from fleetwave_service.robomaker import tags
from fleetwave_service.robomaker.models import ListTagsForResourceResponse, TagResourceRequest

logger = Logger(service="fleetwave")

_GREEDY_PARAMETER = "<resourceArn>"


class _RestResolver(APIGatewayRestResolver):
    """A REST resolver whose trailing ``<resourceArn>`` also matches '/'.

    ARNs contain slashes, and API Gateway passes the raw path to a ``{proxy+}`` resource, so
    ``/tags/arn:aws:robomaker:...:robot/name/123`` must route to the tags operations whether or not the
    client percent-encoded the ARN.
    """

    @staticmethod
    def _compile_regex(rule: str, base_regex: str = "^{}$") -> re.Pattern[str]:
        if rule.endswith("/" + _GREEDY_PARAMETER):
            prefix = re.escape(rule[: -len(_GREEDY_PARAMETER)])
            return re.compile(f"^{prefix}(?P<resourceArn>.+?)/*$")
        if rule.startswith("/greengrass/"):
            # botocore percent-encodes ':' in ARNs and thing names: a parameter is any one path segment.
            parts = re.split(r"<(\w+)>", rule)
            pattern = "".join(
                re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
                for index, part in enumerate(parts)
            )
            return re.compile(f"^{pattern}$")
        return APIGatewayRestResolver._compile_regex(rule)


app = _RestResolver(enable_validation=True, response_validation_error_http_code=500)
app.include_router(robomaker_routes.router)
app.include_router(greengrass_routes.router)

_ARN = TypeAdapter(Arn)


# --- tags -----------------------------------------------------------------------------------------


def _resource_arn(raw: str) -> str:
    # Percent-decoding is safe either way: an ARN never contains '%'.
    arn = unquote(raw)
    try:
        return _ARN.validate_python(arn)
    except PydanticValidationError as error:
        raise InvalidParameterError(f"resourceArn: {arn} is not an ARN") from error


# Greengrass ARNs (deployments, component versions) get Greengrass semantics and errors (404).
@app.get("/tags/<resourceArn>")
def list_tags_for_resource(resourceArn: str) -> ListTagsForResourceResponse:  # noqa: N803 - wire name
    arn = _resource_arn(resourceArn)
    if greengrass_tags.is_greengrass_arn(arn):
        return ListTagsForResourceResponse(tags=greengrass_tags.list_tags(arn))
    return tags.list_tags(arn)


@app.post("/tags/<resourceArn>")
def tag_resource(resourceArn: str, body: TagResourceRequest) -> EmptyResponse:  # noqa: N803
    arn = _resource_arn(resourceArn)
    if greengrass_tags.is_greengrass_arn(arn):
        greengrass_tags.tag_resource(arn, body.tags)
    else:
        tags.tag_resource(arn, body.tags)
    return EmptyResponse()


@app.delete("/tags/<resourceArn>")
def untag_resource(resourceArn: str, tagKeys: Annotated[list[TagKey], Query()]) -> EmptyResponse:  # noqa: N803
    arn = _resource_arn(resourceArn)
    if greengrass_tags.is_greengrass_arn(arn):
        greengrass_tags.untag_resource(arn, tagKeys)
    else:
        tags.untag_resource(arn, tagKeys)
    return EmptyResponse()


# --- errors ---------------------------------------------------------------------------------------


def _error_response(error: FleetwaveError) -> Response:
    status, headers, body = to_wire(error)
    return Response(
        status_code=status, content_type="application/json", body=json.dumps(body), headers=headers
    )


@app.exception_handler(FleetwaveError)
def _fleetwave_error(error: FleetwaveError) -> Response:
    logger.info("request rejected", extra={"error": error.wire_name, "reason": error.message})
    return _error_response(error)


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    message = describe_errors(error.errors())
    # The Greengrass front door names its 400 ValidationException; RoboMaker's is InvalidParameterException.
    path = app.current_event.path
    is_greengrass = path.startswith("/greengrass/") or (
        path.startswith("/tags/") and greengrass_tags.is_greengrass_arn(unquote(path[len("/tags/") :]))
    )
    wire_error = ValidationError(message) if is_greengrass else InvalidParameterError(message)
    logger.info("request rejected", extra={"error": wire_error.wire_name, "reason": message})
    return _error_response(wire_error)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(error: RequestUnsupportedContentType) -> Response:
    return _fleetwave_error(InvalidParameterError("Content-Type: request bodies must be application/json"))


@app.exception_handler(NotFoundError)
def _unknown_operation(error: NotFoundError) -> Response:
    event = app.current_event
    return _fleetwave_error(UnknownOperationError(f"no operation at {event.http_method} {event.path}"))


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    # The traceback goes to the log only; the caller gets a generic message.
    logger.exception("unexpected error")
    return _error_response(InternalServerError("Fleetwave could not process the request; try again."))


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId")
    logger.set_correlation_id(request_id)
    idempotency.use_lambda_context(context)
    response = app.resolve(event, context)
    if request_id:
        # botocore reads the request id of every response (and error) from this header.
        if "multiValueHeaders" in response:
            response["multiValueHeaders"]["x-amzn-RequestId"] = [request_id]
        else:
            response.setdefault("headers", {})["x-amzn-RequestId"] = request_id
    return response
