"""Generate the botocore service model of Fleetwave's RoboMaker-compatible API from its own definitions.

The one source is the API Lambda's route table (``fleetwave_service.api.include_front_doors()``: method, path,
handler signature) and the pydantic models the handlers take and return (their JSON schemas carry the seeds'
constraints). Every route outside ``/greengrass/`` becomes an operation of the service ``robomaker``, API
version 2018-06-29, signing for ``execute-api`` (what API Gateway verifies), so a stock botocore or AWS CLI
calls Fleetwave with no signing hook. Operations that AWS RoboMaker never had (Fleetwave's extensions) live in
the same service, marked as such in their documentation (docs/decisions.md).

    python -m fleetwave.sdk.generate          # rewrite src/fleetwave/sdk/data/ (`make models`)
    python -m fleetwave.sdk.generate --check  # exit 1 when the committed files are out of date

The Greengrass V2 front door has no generated model: its contract is botocore's own ``greengrassv2``
model, which botocore ships (fleetwave.sdk.service_models derives the execute-api override from it).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from fleetwave.sdk.service_models import (
    PAGINATORS_FILE,
    ROBOMAKER,
    ROBOMAKER_API_VERSION,
    SERVICE_FILE,
    SIGNING_NAME,
)

# AWS RoboMaker's fleet-management operations (reference/robomaker-api.md): anything else a route serves
# is a Fleetwave extension.
ROBOMAKER_OPERATIONS = frozenset(
    {
        "CreateFleet", "DeleteFleet", "DescribeFleet", "ListFleets",
        "CreateRobot", "DeleteRobot", "DescribeRobot", "ListRobots", "RegisterRobot", "DeregisterRobot",
        "CreateRobotApplication", "CreateRobotApplicationVersion", "UpdateRobotApplication",
        "DescribeRobotApplication", "ListRobotApplications", "DeleteRobotApplication",
        "CreateDeploymentJob", "SyncDeploymentJob", "DescribeDeploymentJob", "ListDeploymentJobs",
        "CancelDeploymentJob", "TagResource", "UntagResource", "ListTagsForResource",
    }
)  # fmt: skip
GREENGRASS_PREFIX = "/greengrass/"
EXTENSION_NOTE = "<p>Fleetwave extension: AWS RoboMaker had no such operation.</p>"

METADATA = {
    "apiVersion": ROBOMAKER_API_VERSION,
    "endpointPrefix": ROBOMAKER,
    "jsonVersion": "1.1",
    "protocol": "rest-json",
    "protocols": ["rest-json"],
    "serviceAbbreviation": "RoboMaker",
    "serviceFullName": "Fleetwave (AWS RoboMaker fleet management)",
    "serviceId": "RoboMaker",
    "signatureVersion": "v4",
    "signingName": SIGNING_NAME,
    "uid": f"{ROBOMAKER}-{ROBOMAKER_API_VERSION}",
    "auth": ["aws.auth#sigv4"],
}
SCALARS = {"string": "String", "integer": "Integer", "number": "Double", "boolean": "Boolean"}
ARN_PATTERN = "^arn:.*$"


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]", name) if part)


class _Shapes:
    """The model's shapes: structures named after their pydantic models, constrained scalars after the
    member that first uses them, equal shapes written once."""

    def __init__(self) -> None:
        self.shapes: dict[str, dict[str, Any]] = {}

    def add(self, preferred: str, shape: dict[str, Any]) -> str:
        name = preferred
        counter = 1
        while name in self.shapes and self.shapes[name] != shape:
            counter += 1
            name = f"{preferred}{counter}"
        self.shapes[name] = shape
        return name

    def find(self, shape: dict[str, Any]) -> str | None:
        return next((name for name, known in self.shapes.items() if known == shape), None)

    def scalar(self, member: str, parent: str, shape: dict[str, Any]) -> str:
        if len(shape) == 1:  # unconstrained: one shared shape per type
            return self.add(_pascal(shape["type"]), shape)
        if shape.get("pattern") == ARN_PATTERN:
            member = "arn"
        known = self.find(shape)
        if known:
            return known
        name = _pascal(member)
        if name in self.shapes:
            name = _pascal(parent) + name
        return self.add(name, shape)

    def from_schema(self, schema: dict[str, Any], defs: dict[str, Any], member: str, parent: str) -> str:
        """The shape name for a JSON schema (as pydantic writes it) of member ``member``."""
        schema = _without_null(schema)
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return self.structure(name, defs[name], defs)
        kind = schema.get("type")
        if kind is None and {"minLength", "maxLength", "pattern"} & schema.keys():
            kind = "string"  # pydantic writes a dict's key constraints without the type
        if "enum" in schema or "const" in schema:
            values = schema.get("enum") or [schema["const"]]
            return self.scalar(member, parent, {"type": "string", "enum": list(values)})
        if kind == "string":
            shape: dict[str, Any] = {"type": "string"}
            _copy(schema, shape, {"minLength": "min", "maxLength": "max", "pattern": "pattern"})
            return self.scalar(member, parent, shape)
        if kind == "number" and schema.get("format") == "unix-time":
            return self.scalar("timestamp", parent, {"type": "timestamp"})
        if kind in ("integer", "number"):
            shape = {"type": "long" if schema.get("maximum", 0) > 2**31 - 1 else SCALARS[kind].lower()}
            _copy(schema, shape, {"minimum": "min", "maximum": "max"})
            return self.scalar(member, parent, shape)
        if kind == "boolean":
            return self.scalar("boolean", parent, {"type": "boolean"})
        if kind == "array":
            item = self.from_schema(schema.get("items", {"type": "string"}), defs, member, parent)
            shape = {"type": "list", "member": {"shape": item}}
            _copy(schema, shape, {"minItems": "min", "maxItems": "max"})
            return self.find(shape) or self.add(f"{item}List", shape)
        if kind == "object" and "properties" not in schema:
            key_schema = schema.get("propertyNames", {"type": "string"})
            key = self.from_schema(key_schema, defs, f"{member}Key", parent)
            values = schema.get("additionalProperties")
            value_schema = values if isinstance(values, dict) and values else {"type": "string"}
            value = self.from_schema(value_schema, defs, f"{member}Value", parent)
            shape = {"type": "map", "key": {"shape": key}, "value": {"shape": value}}
            _copy(schema, shape, {"minProperties": "min", "maxProperties": "max"})
            return self.find(shape) or self.add(f"{_pascal(member)}Map", shape)
        if kind == "object":
            return self.structure(_pascal(member), schema, defs)
        raise ValueError(f"{parent}.{member}: no botocore shape for the schema {schema}")

    def structure(self, name: str, schema: dict[str, Any], defs: dict[str, Any], extra=None) -> str:
        members = {}
        for member, member_schema in schema.get("properties", {}).items():
            members[member] = (extra or {}).get(member) or {
                "shape": self.from_schema(member_schema, defs, member, name)
            }
        shape: dict[str, Any] = {"type": "structure"}
        required = [member for member in schema.get("required", []) if member in members]
        if required:
            shape["required"] = required
        shape["members"] = members
        if schema.get("description"):
            shape["documentation"] = f"<p>{_html(schema['description'])}</p>"
        return self.add(name, shape)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if options:
        present = [option for option in options if option.get("type") != "null"]
        if len(present) == 1:
            return present[0]
    return schema


def _copy(schema: dict[str, Any], shape: dict[str, Any], names: dict[str, str]) -> None:
    for source, target in names.items():
        if source in schema:
            shape[target] = schema[source]


def _html(text: str) -> str:
    return " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _schema(model: Any, mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from pydantic import TypeAdapter

    schema = TypeAdapter(model).json_schema(mode=mode)
    return schema, schema.pop("$defs", {})


# --- routes -> operations -------------------------------------------------------------------------


def _routes() -> list[Any]:
    from fleetwave_service import api

    app = api.include_front_doors()
    routes = [*app._static_routes, *app._dynamic_routes]
    return [route for route in routes if not route.openapi_path.startswith(GREENGRASS_PREFIX)]


def _operation_name(route: Any) -> str:
    return _pascal(route.func.__name__)


def _unwrap_optional(annotation: Any) -> Any:
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and args:
        return args[0]
    return annotation


def _parameters(route: Any) -> tuple[Any, dict[str, Any]]:
    """(the body model or None, {name: (annotation, location)}) of a route's handler."""
    from aws_lambda_powertools.event_handler.openapi.params import Body, Query

    hints = typing.get_type_hints(route.func, include_extras=True)
    body = None
    others = {}
    path_names = set(re.findall(r"{(\w+)}", route.openapi_path))
    for name, parameter in inspect.signature(route.func).parameters.items():
        annotation = hints[name]
        annotated = typing.get_origin(annotation) is typing.Annotated
        base, *extras = typing.get_args(annotation) if annotated else (annotation,)
        if name in path_names:
            others[name] = (base, "uri", True)
        elif any(isinstance(extra, Query) for extra in extras):
            others[name] = (base, "querystring", parameter.default is inspect.Parameter.empty)
        elif name == "body" or any(isinstance(extra, Body) for extra in extras):
            body = _unwrap_optional(base)
        else:
            raise ValueError(f"{route.method} {route.openapi_path}: parameter {name} has no known location")
    return body, others


def _errors(operation: str, request: dict[str, Any]) -> list[str]:
    """The wire errors an operation answers with, read from its request's shape: every operation validates
    and may be throttled; one that names a resource may not find it; one with a client token may meet a
    mismatch and another job on the fleet; creating by name may find the name taken."""
    members = request.get("properties", {})
    names = ["InvalidParameterException", "InternalServerException", "ThrottlingException"]
    if "resourceArn" in members or any(
        _without_null(schema).get("pattern") == ARN_PATTERN for schema in members.values()
    ):
        names.append("ResourceNotFoundException")
    if "clientRequestToken" in members:
        names += ["LimitExceededException", "ConcurrentDeploymentException"]
        names.append("IdempotentParameterMismatchException")
    if operation.startswith("Create") and "name" in members:
        names += ["LimitExceededException", "ResourceAlreadyExistsException"]
    if operation.startswith("Register"):
        names.append("LimitExceededException")
    return list(dict.fromkeys(names))


def _error_shapes() -> dict[str, dict[str, Any]]:
    from fleetwave_service.core import errors

    classes = (
        errors.InvalidParameterError,
        errors.ResourceNotFoundError,
        errors.ResourceAlreadyExistsError,
        errors.ConcurrentDeploymentError,
        errors.IdempotentParameterMismatchError,
        errors.LimitExceededError,
        errors.ThrottlingError,
        errors.InternalServerError,
    )
    return {
        error.wire_name: {
            "type": "structure",
            "members": {"message": {"shape": "ErrorMessage"}},
            "error": {"httpStatusCode": error.status, "senderFault": error.status < 500},
            "exception": True,
            **({"fault": True} if error.status >= 500 else {}),
        }
        for error in classes
    }


def generate() -> dict[str, dict[str, Any]]:
    """{file name: its JSON}: the service model and its paginators."""
    shapes = _Shapes()
    operations: dict[str, Any] = {}
    paginators: dict[str, Any] = {}
    for route in sorted(_routes(), key=_operation_name):
        name = _operation_name(route)
        if name in operations:
            raise ValueError(f"two routes are named {name}: rename a handler")
        body, others = _parameters(route)
        request, request_defs = _schema(body, "validation") if body is not None else ({}, {})
        extra = {}
        for member, (annotation, location, required) in others.items():
            schema, defs = _schema(annotation, "validation")
            request_defs.update(defs)
            ref = {"shape": shapes.from_schema(schema, request_defs, member, f"{name}Request")}
            extra[member] = {**ref, "location": location, "locationName": member}
            request.setdefault("properties", {})[member] = schema
            if required:
                request.setdefault("required", []).append(member)
        input_name = shapes.structure(f"{name}Request", request, request_defs, extra)
        returned = typing.get_type_hints(route.func).get("return")
        # Validation mode: the wire models serialise through a wrap serializer, which has no schema.
        response, response_defs = _schema(returned, "validation")
        output_name = shapes.structure(f"{name}Response", response, response_defs)
        operation: dict[str, Any] = {
            "name": name,
            "http": {"method": route.method.upper(), "requestUri": route.openapi_path},
            "input": {"shape": input_name},
            "output": {"shape": output_name},
            "errors": [{"shape": error} for error in _errors(name, request)],
        }
        doc = inspect.getdoc(route.func)
        documentation = f"<p>{_html(doc)}</p>" if doc else ""
        if name not in ROBOMAKER_OPERATIONS:
            documentation = EXTENSION_NOTE + documentation
        if documentation:
            operation["documentation"] = documentation
        operations[name] = operation
        output_members = shapes.shapes[output_name]["members"]
        input_members = shapes.shapes[input_name]["members"]
        listed = [m for m, ref in output_members.items() if shapes.shapes[ref["shape"]]["type"] == "list"]
        if "nextToken" in input_members and "nextToken" in output_members and len(listed) == 1:
            paginators[name] = {
                "input_token": "nextToken",
                "output_token": "nextToken",
                **({"limit_key": "maxResults"} if "maxResults" in input_members else {}),
                "result_key": listed[0],
            }
    shapes.add("ErrorMessage", {"type": "string"})
    all_shapes = {**dict(sorted(shapes.shapes.items())), **_error_shapes()}
    service = {
        "version": "2.0",
        "metadata": METADATA,
        "operations": operations,
        "shapes": dict(sorted(all_shapes.items())),
        "documentation": (
            "<p>Fleetwave serves the AWS RoboMaker fleet-management API (fleets, robots, robot applications, "
            "deployment jobs rolled out in waves) from your own AWS account or your machine. Generated from "
            "Fleetwave's route table and request models; signs for execute-api (API Gateway).</p>"
        ),
    }
    return {SERVICE_FILE: service, PAGINATORS_FILE: {"pagination": paginators}}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    from fleetwave.sdk.service_models import source_model_dir

    parser = argparse.ArgumentParser(prog="python -m fleetwave.sdk.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed files differ")
    parser.add_argument("--out", type=Path, default=None, help="directory to write (default: the package's)")
    args = parser.parse_args(argv)
    target = args.out or source_model_dir()
    stale = []
    for file_name, document in generate().items():
        path = target / file_name
        text = render(document)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run `make models`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
