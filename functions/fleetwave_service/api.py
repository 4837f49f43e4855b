"""The API Lambda: API Gateway proxy events -> one front door's route -> wire response.

It serves both front doors' routers (robomaker/routes.py: ``POST /<lowerCamelOperation>``; greengrass/
routes.py: ``/greengrass/v2/...``) and the tags operations they share under ``/tags/{resourceArn}`` (a
Greengrass ARN gets Greengrass semantics and errors). Request bodies are validated by Powertools against the
pydantic models (the seed's constraints); every error leaves through one map (core/errors.py to_wire):
status code, ``x-amzn-ErrorType`` header and ``{"message": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
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
from pydantic import ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from fleetwave_service.core import invocation
from fleetwave_service.core.arns import is_greengrass_arn
from fleetwave_service.core.body import MalformedBodyError, decode_text, is_json_content_type, parse_object
from fleetwave_service.core.errors import (
    FleetwaveError,
    InternalServerError,
    InvalidParameterError,
    MissingAuthenticationTokenError,
    ValidationError,
    to_wire,
)
from fleetwave_service.core.validation import describe_errors
from fleetwave_service.core.wire import (
    Arn,
    EmptyResponse,
    ListTagsForResourceResponse,
    TagKey,
    TagResourceRequest,
)

logger = Logger(service="fleetwave")

_GREEDY_PARAMETER = "<resourceArn>"
# UntagResource's tagKeys: 1 to 50 keys (the contract's limit, RoboMaker and Greengrass alike).
MAX_TAG_KEYS = 50


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

# A front door's routes (and the operations and request models behind them) join the resolver with the first
# request for that front door: a cold start that serves RoboMaker never builds Greengrass's, nor the reverse.
# The tags routes below are the API's own.
ROBOMAKER = "robomaker"
GREENGRASS = "greengrass"
_included: set[str] = set()
_including = threading.Lock()


def include_front_doors(*front_doors: str) -> _RestResolver:
    """The resolver with these front doors' routes (every front door's when none is named)."""
    for front_door in front_doors or (ROBOMAKER, GREENGRASS):
        if front_door in _included:
            continue
        with _including:
            if front_door in _included:
                continue
            if front_door == ROBOMAKER:
                from fleetwave_service.robomaker.routes import router
            elif front_door == GREENGRASS:
                from fleetwave_service.greengrass.routes import router
            else:
                raise ValueError(f"no front door {front_door!r}")
            app.include_router(router)
            _included.add(front_door)
    return app


def _front_door_of(path: str) -> str | None:
    """The front door whose routes a request path can match (None: the tags routes, always there)."""
    if path.startswith("/tags/"):
        return None
    return GREENGRASS if path.startswith("/greengrass/") else ROBOMAKER


_ARN = TypeAdapter(Arn, config=ConfigDict(defer_build=True))  # built by the first tags request


# --- tags -----------------------------------------------------------------------------------------


def _resource_arn(raw: str) -> str:
    # Percent-decoding is safe either way: an ARN never contains '%'.
    arn = unquote(raw)
    try:
        return _ARN.validate_python(arn)
    except PydanticValidationError as error:
        raise InvalidParameterError(f"resourceArn: {arn} is not an ARN") from error


# Greengrass ARNs (deployments, component versions) get Greengrass semantics and errors (404). Each front
# door's tag operations load with the first request for them.
@app.get("/tags/<resourceArn>")
def list_tags_for_resource(resourceArn: str) -> ListTagsForResourceResponse:  # noqa: N803 - wire name
    arn = _resource_arn(resourceArn)
    if is_greengrass_arn(arn):
        from fleetwave_service.greengrass import tags as greengrass_tags

        return ListTagsForResourceResponse(tags=greengrass_tags.list_tags(arn))
    from fleetwave_service.robomaker import tags

    return tags.list_tags(arn)


@app.post("/tags/<resourceArn>")
def tag_resource(resourceArn: str, body: TagResourceRequest) -> EmptyResponse:  # noqa: N803
    arn = _resource_arn(resourceArn)
    if is_greengrass_arn(arn):
        from fleetwave_service.greengrass import tags as greengrass_tags

        greengrass_tags.tag_resource(arn, body.tags)
    else:
        from fleetwave_service.robomaker import tags

        tags.tag_resource(arn, body.tags)
    return EmptyResponse()


@app.delete("/tags/<resourceArn>")
def untag_resource(
    resourceArn: str,  # noqa: N803
    tagKeys: Annotated[list[TagKey], Query(min_length=1, max_length=MAX_TAG_KEYS)],  # noqa: N803
) -> EmptyResponse:
    arn = _resource_arn(resourceArn)
    if is_greengrass_arn(arn):
        from fleetwave_service.greengrass import tags as greengrass_tags

        greengrass_tags.untag_resource(arn, tagKeys)
    else:
        from fleetwave_service.robomaker import tags

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


def _bad_request(path: str, message: str) -> FleetwaveError:
    """A malformed request, under the front door's own 400: Greengrass's ValidationException (its paths, and
    tags of its ARNs), RoboMaker's InvalidParameterException otherwise."""
    is_greengrass = path.startswith("/greengrass/") or (
        path.startswith("/tags/") and is_greengrass_arn(unquote(path[len("/tags/") :]))
    )
    return ValidationError(message) if is_greengrass else InvalidParameterError(message)


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    return _fleetwave_error(_bad_request(app.current_event.path, describe_errors(error.errors())))


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(error: RequestUnsupportedContentType) -> Response:
    return _fleetwave_error(_bad_request(app.current_event.path, _CONTENT_TYPE_MESSAGE))


@app.exception_handler(NotFoundError)
def _unknown_operation(error: NotFoundError) -> Response:
    # What API Gateway answers for a method and path it has no route for (before any Lambda runs): the
    # local gateway and the deployed API answer alike (docs/decisions.md).
    event = app.current_event
    logger.info("no route", extra={"method": event.http_method, "path": event.path})
    return _error_response(MissingAuthenticationTokenError("Missing Authentication Token"))


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    # The traceback goes to the log only; the caller gets a generic message.
    logger.exception("unexpected error")
    return _error_response(InternalServerError("Fleetwave could not process the request; try again."))


# --- the body, before any route sees it ----------------------------------------------------------------

_CONTENT_TYPE_MESSAGE = "Content-Type: request bodies must be application/json"


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


def _checked_body(event: dict[str, Any]) -> dict[str, Any] | FleetwaveError:
    """The event with its body checked (core/body.py) and passed on as plain JSON text, or the error."""
    body = event.get("body")
    if body is None or body == "":
        return event
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(body, validate=True)
        else:
            raw = body.encode("utf-8", "surrogatepass")
        text = decode_text(raw)
        if not text.strip():
            return {**event, "body": None, "isBase64Encoded": False}
        if not is_json_content_type(_header(event, "content-type")):
            raise MalformedBodyError(_CONTENT_TYPE_MESSAGE)
        parse_object(text)
    except (MalformedBodyError, binascii.Error, ValueError) as error:
        message = str(error) if isinstance(error, MalformedBodyError) else "request body: is not valid base64"
        return _bad_request(str(event.get("path") or ""), message)
    return {**event, "body": text, "isBase64Encoded": False}


# --- the API's own description -------------------------------------------------------------------------

OPENAPI_TITLE = "Fleetwave"
OPENAPI_VERSION = "2018-06-29"  # RoboMaker's API version; Greengrass's routes carry /greengrass/v2


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of both front doors, produced by the resolver from the routes and their models.

    Committed as docs/openapi.json (a test fails when it drifts) and served by `fleetwave serve` at
    ``/openapi.json``.
    """
    return json.loads(
        include_front_doors().get_openapi_json_schema(
            title=OPENAPI_TITLE,
            version=OPENAPI_VERSION,
            summary="The RoboMaker fleet-management API and the Greengrass V2 deployments API (SigV4)",
        )
    )


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId")
    logger.set_correlation_id(request_id)
    invocation.use_lambda_context(context)
    checked = _checked_body(event)
    if isinstance(checked, FleetwaveError):
        logger.info("request rejected", extra={"error": checked.wire_name, "reason": checked.message})
        status, headers, body = to_wire(checked)
        response: dict[str, Any] = {
            "statusCode": status,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "body": json.dumps(body),
            "isBase64Encoded": False,
        }
    else:
        front_door = _front_door_of(str(checked.get("path") or ""))
        if front_door is not None:
            include_front_doors(front_door)
        response = app.resolve(checked, context)
    if request_id:
        # botocore reads the request id of every response (and error) from this header.
        if "multiValueHeaders" in response:
            response["multiValueHeaders"]["x-amzn-RequestId"] = [request_id]
        else:
            response.setdefault("headers", {})["x-amzn-RequestId"] = request_id
    return response
