"""A fuzzer for the API as AWS describes it: requests generated from botocore service models, signed, sent.

Two descriptions drive it:
- AWS's own RoboMaker API description (botocore's robomaker 2018-06-29 service-2.json, Apache-2.0, cut to
  the operations Fleetwave serves: tests/data/aws/, committed: nothing downloads at test time);
- the installed botocore's greengrassv2 model (the operations Fleetwave serves).

Each case is one operation with an input generated from the operation's shapes: usually within the model's
constraints (min/max, enums, patterns, required members), often with one or more mutations (a wrong type,
a value out of range, a member missing or unknown, huge numbers, deep nesting, odd Unicode), and sometimes
broken on the wire (a body that is not a JSON object, invalid UTF-8 or UTF-16, another content type).
Requests are serialized the rest-json way (uri / querystring / header / body locations), signed with SigV4
and sent over HTTP.

The property, per response: no 5xx; an error carries an error type the operation's model lists (or one the
gateway itself answers with: 403 on a route that does not exist, 413 on a body over the limit); no Python
traceback anywhere in the response. After a run the server must still answer a plain call.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.credentials import Credentials
from botocore.model import OperationModel, ServiceModel, Shape

from fleetwave.sdk.client import sign_request

# AWS's historic RoboMaker model, cut to the operations Fleetwave serves (tests/data/aws/README.md).
ROBOMAKER_MODEL = Path(__file__).resolve().parents[1] / "data/aws/robomaker/2018-06-29/service-2.json"
# Errors the gateway answers itself, before any operation (API Gateway's, and the local gateway's).
GATEWAY_ERRORS = {
    403: {"MissingAuthenticationTokenException"},
    413: {"RequestEntityTooLargeException"},
}
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")
_TEMPLATE = re.compile(r"\{(\w+)(\+?)\}")


def robomaker_model() -> ServiceModel:
    return ServiceModel(json.loads(ROBOMAKER_MODEL.read_text()), service_name="robomaker")


def greengrass_model() -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model("greengrassv2")


def served_operations(model: ServiceModel, openapi: dict[str, Any]) -> list[OperationModel]:
    """The model's operations Fleetwave serves: same method and path template as a route of its OpenAPI."""
    routes = {
        (method.upper(), re.sub(r"\{\w+\}", "{}", path))
        for path, methods in openapi["paths"].items()
        for method in methods
    }
    served = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        uri = operation.http["requestUri"].split("?")[0]
        if (operation.http["method"], _TEMPLATE.sub("{}", uri)) in routes:
            served.append(operation)
    return served


# --- values ---------------------------------------------------------------------------------------------

_WEIRD_STRINGS = [
    "",
    " ",
    "\u0000",
    "\ud7ff\ue000",
    "ℌ𝔢𝔩𝔩𝔬",
    "😀" * 40,
    "../../etc/passwd",
    "%00%ff",
    "' OR 1=1 --",
    "${jndi:ldap://x}",
    "\\",
    '"',
    "a" * 5000,
    "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/x/1",
    "arn:aws:greengrass:us-east-1:123456789012:components:c:versions:1.0.0",
    "arn:aws:iot:us-east-1:123456789012:thinggroup/g",
]
_HUGE_NUMBERS = [2**63, -(2**63) - 1, 10**30, 10**400, 1e308, -1, 0, 2**31]


@dataclass
class Generator:
    rng: random.Random
    mutation_rate: float = 0.15
    # ARNs of resources that exist on the server: half the ARNs generated are one of them, so operations
    # get past "not found" and into their logic.
    known_arns: list[str] = field(default_factory=list)

    def value(self, shape: Shape, depth: int = 0) -> Any:
        if self.rng.random() < self.mutation_rate / (1 + depth):
            return self.mutant(shape)
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, depth)
        if kind == "list":
            low, high = self._bounds(shape, 0, 4)
            return [
                self.value(shape.member, depth + 1) for _ in range(self.rng.randint(low, min(high, low + 4)))
            ]
        if kind == "map":
            low, high = self._bounds(shape, 0, 4)
            count = self.rng.randint(low, min(high, low + 4))
            return {
                str(self.value(shape.key, depth + 1)): self.value(shape.value, depth + 1)
                for _ in range(count)
            }
        if kind == "string":
            return self.string(shape)
        if kind in ("integer", "long"):
            low, high = self._bounds(shape, -5, 10_000)
            return self.rng.randint(int(low), int(high))
        if kind in ("float", "double"):
            low, high = self._bounds(shape, 0, 100)
            return self.rng.uniform(float(low), float(high))
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "timestamp":
            return self.rng.choice([time.time(), 0, 1e12, "2024-01-01T00:00:00Z"])
        if kind == "blob":
            return "".join(self.rng.choice(string.ascii_letters) for _ in range(self.rng.randint(0, 40)))
        return None

    def structure(self, shape: Shape, depth: int) -> dict[str, Any]:
        required = set(shape.required_members)
        result: dict[str, Any] = {}
        for name, member in shape.members.items():
            if name in required or self.rng.random() < 0.6:
                result[name] = self.value(member, depth + 1)
        if self.rng.random() < self.mutation_rate:
            mutation = self.rng.choice(["drop", "extra", "null"])
            if mutation == "drop" and result:
                result.pop(self.rng.choice(sorted(result)))
            elif mutation == "extra":
                result[self.rng.choice(["unknownMember", "__proto__", "x" * 300])] = self.rng.choice(
                    [1, "x", None, [], {}]
                )
            elif result:
                result[self.rng.choice(sorted(result))] = None
        return result

    def string(self, shape: Shape) -> str:
        enum = shape.enum
        if enum:
            return self.rng.choice(enum)
        low, high = self._bounds(shape, 1, 64)
        pattern = shape.metadata.get("pattern")
        alphabet = string.ascii_letters + string.digits
        if pattern and "arn" in pattern:
            if self.known_arns and self.rng.random() < 0.5:
                return self.rng.choice(self.known_arns)
            return self.rng.choice(
                [
                    "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/f/1",
                    "arn:aws:robomaker:us-east-1:123456789012:robot/r/1",
                    "arn:aws:robomaker:us-east-1:123456789012:robot-application/a/1",
                    "arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-000000000000",
                ]
            )
        if pattern and "-_" in pattern.replace("\\", ""):
            alphabet += "-_"
        length = self.rng.randint(int(low), int(min(high, low + 30)))
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def mutant(self, shape: Shape) -> Any:
        choice = self.rng.randrange(9)
        if choice == 0:
            return self.rng.choice(_WEIRD_STRINGS)
        if choice == 1:
            return self.rng.choice(_HUGE_NUMBERS)
        if choice == 2:
            return self.rng.choice([None, True, [], {}, [1, 2], {"a": "b"}])
        if choice == 3:
            low, high = self._bounds(shape, 1, 64)
            return "x" * int(min(high + 1, 300_000)) if shape.type_name == "string" else [0] * 1000
        if choice == 4:
            nested: Any = "deep"
            for _ in range(self.rng.choice([40, 200, 500])):
                nested = [nested] if self.rng.random() < 0.5 else {"a": nested}
            return nested
        if choice == 5 and shape.type_name in ("list", "map"):
            count = self.rng.choice([51, 101, 1000])
            if shape.type_name == "list":
                return ["k" + str(i) for i in range(count)]
            return {f"k{i}": "v" for i in range(count)}
        if choice == 6:
            return self.rng.choice(["-1", "1e999", "NaN", "0x10", "１２３"])
        if choice == 7:
            return -self.rng.randint(1, 10**6)
        return self.rng.random() * 10 ** self.rng.randint(0, 300)

    @staticmethod
    def _bounds(shape: Shape, low: float, high: float) -> tuple[float, float]:
        metadata = shape.metadata
        low = metadata.get("min", low)
        high = metadata.get("max", max(high, low))
        return low, max(high, low)


# --- requests -------------------------------------------------------------------------------------------


@dataclass
class Case:
    operation: str
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    wire_mutation: str | None = None


def build_case(operation: OperationModel, params: Any, rng: random.Random, wire_rate: float = 0.05) -> Case:
    """Serialize ``params`` the rest-json way (uri, querystring, header, body), then maybe break the wire."""
    shape = operation.input_shape
    uri = operation.http["requestUri"]
    path_template, _, fixed_query = uri.partition("?")
    body: dict[str, Any] = {}
    query: list[tuple[str, str]] = [
        tuple(p.split("=", 1)) if "=" in p else (p, "") for p in fixed_query.split("&") if p
    ]  # type: ignore[misc]
    headers = {"Content-Type": "application/json"}
    labels: dict[str, str] = {}
    members = shape.members if shape is not None else {}
    if not isinstance(params, dict):
        params = {"_": params}
    for name, value in params.items():
        member = members.get(name)
        location = member.serialization.get("location") if member is not None else None
        wire_name = member.serialization.get("name", name) if member is not None else name
        if location == "uri":
            labels[wire_name] = _scalar(value)
        elif location == "querystring":
            values = value if isinstance(value, list) else [value]
            query.extend((wire_name, _scalar(v)) for v in values)
        elif location == "header":
            headers[wire_name] = _scalar(value)[:200].encode("ascii", "replace").decode("ascii")
        else:
            body[wire_name] = value
    for label, _greedy in _TEMPLATE.findall(path_template):
        labels.setdefault(label, "x" if rng.random() < 0.9 else "")

    def fill(match: re.Match[str]) -> str:
        value = labels.get(match.group(1), "")
        return quote(value, safe="/" if match.group(2) else "")

    path = _TEMPLATE.sub(fill, path_template)
    encoded = (
        json.dumps(body, default=str).encode("utf-8") if (body or operation.http["method"] == "POST") else b""
    )
    case = Case(operation.name, operation.http["method"], path, query, headers, encoded)
    if rng.random() < wire_rate:
        _break_wire(case, body, rng)
    return case


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _break_wire(case: Case, body: dict[str, Any], rng: random.Random) -> None:
    kind = rng.choice(
        ["array", "utf16", "invalid-utf8", "content-type", "deep", "huge-int", "truncated", "scalar"]
    )
    case.wire_mutation = kind
    text = json.dumps(body, default=str)
    if kind == "array":
        case.body = json.dumps([body, body], default=str).encode()
    elif kind == "utf16":
        case.body = text.encode("utf-16")
    elif kind == "invalid-utf8":
        case.body = text.encode()[:-1] + b"\xff\xfe\x80}"
    elif kind == "content-type":
        case.headers["Content-Type"] = rng.choice(
            [
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/xml",
            ]
        )
        case.body = b"a=1&b=2"
    elif kind == "deep":
        depth = rng.choice([100, 1000, 5000])
        case.body = ('{"a":' + "[" * depth + "]" * depth + "}").encode()
    elif kind == "huge-int":
        case.body = ('{"maxResults": ' + "9" * rng.choice([25, 5000, 20000]) + "}").encode()
    elif kind == "truncated":
        case.body = text.encode()[: max(1, len(text) // 2)]
    else:
        case.body = rng.choice([b"null", b"42", b'"x"', b"true"])


def generate(
    models: list[tuple[ServiceModel, list[OperationModel]]], seed: int, known_arns: list[str] | None = None
) -> Iterator[Case]:
    rng = random.Random(seed)
    generator = Generator(rng, known_arns=list(known_arns or []))
    operations = [operation for _, served in models for operation in served]
    while True:
        operation = rng.choice(operations)
        params = generator.value(operation.input_shape) if operation.input_shape is not None else {}
        yield build_case(operation, params, rng)


# --- from the API's own OpenAPI document ----------------------------------------------------------------


@dataclass
class OpenApiGenerator:
    """Requests for every route of the API's OpenAPI document, from its JSON schemas (parameters and bodies),
    within their constraints most of the time and mutated the rest (as ``Generator`` does for shapes)."""

    document: dict[str, Any]
    rng: random.Random
    known_arns: list[str] = field(default_factory=list)
    mutation_rate: float = 0.15

    def routes(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (method.upper(), path, operation)
            for path, methods in self.document["paths"].items()
            for method, operation in methods.items()
        ]

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def value(self, schema: dict[str, Any], depth: int = 0) -> Any:
        schema = self._resolve(schema)
        if self.rng.random() < self.mutation_rate / (1 + depth):
            return self.rng.choice(_WEIRD_STRINGS + _HUGE_NUMBERS + [None, [], {}, True])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.value(self.rng.choice(schema[key]), depth)
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        kind = schema.get("type", "object")
        if kind == "object":
            properties = schema.get("properties", {})
            required = set(schema.get("required", []))
            result = {
                name: self.value(sub, depth + 1)
                for name, sub in properties.items()
                if name in required or self.rng.random() < 0.6
            }
            if not properties and "maxProperties" in schema:
                result = {f"k{i}": "v" for i in range(self.rng.randint(0, 3))}
            return result
        if kind == "array":
            low = schema.get("minItems", 0)
            high = min(schema.get("maxItems", low + 3), low + 3)
            return [
                self.value(schema.get("items", {}), depth + 1) for _ in range(self.rng.randint(low, high))
            ]
        if kind == "string":
            if self.known_arns and "arn" in schema.get("pattern", "") and self.rng.random() < 0.5:
                return self.rng.choice(self.known_arns)
            low = schema.get("minLength", 1)
            high = min(schema.get("maxLength", low + 20), low + 20)
            alphabet = string.ascii_letters + string.digits + "-_"
            return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(low, high)))
        if kind in ("integer", "number"):
            low = schema.get("minimum", schema.get("exclusiveMinimum", -5))
            high = schema.get("maximum", schema.get("exclusiveMaximum", 10_000))
            number = self.rng.uniform(low, min(high, low + 10_000))
            return int(number) if kind == "integer" else number
        if kind == "boolean":
            return self.rng.random() < 0.5
        return None

    def case(self) -> Case:
        method, template, operation = self.rng.choice(self.routes())
        labels: dict[str, str] = {}
        query: list[tuple[str, str]] = []
        for parameter in operation.get("parameters", []):
            if not parameter.get("required") and self.rng.random() < 0.5:
                continue
            value = self.value(parameter.get("schema", {}))
            if parameter["in"] == "path":
                labels[parameter["name"]] = _scalar(value) if value not in (None, "") else "x"
            elif parameter["in"] == "query":
                values = value if isinstance(value, list) else [value]
                query.extend((parameter["name"], _scalar(v)) for v in values)
        path = _TEMPLATE.sub(lambda m: quote(labels.get(m.group(1), "x"), safe=""), template)
        body = b""
        content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
        if content is not None:
            body = json.dumps(self.value(content["schema"]), default=str).encode("utf-8")
        return Case(
            f"openapi:{method} {template}", method, path, query, {"Content-Type": "application/json"}, body
        )


def openapi_allowed_errors(
    document: dict[str, Any], models: list[tuple[ServiceModel, list[OperationModel]]]
) -> dict[str, set[str]]:
    """For each OpenAPI route, the errors AWS's models list for the operation at that method and path."""
    by_route: dict[tuple[str, str], set[str]] = {}
    for _, served in models:
        for operation in served:
            uri = operation.http["requestUri"].split("?")[0]
            key = (operation.http["method"], _TEMPLATE.sub("{}", uri))
            by_route.setdefault(key, set()).update(modeled_errors(operation))
    every = set().union(*by_route.values()) if by_route else set()
    return {
        f"openapi:{method.upper()} {path}": by_route.get((method.upper(), _TEMPLATE.sub("{}", path)), every)
        for path, methods in document["paths"].items()
        for method in methods
    }


# --- sending and judging ----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    error_type: str | None
    body: bytes
    headers: dict[str, str]


def send(endpoint: str, case: Case, credentials: Credentials, timeout: float = 60.0) -> Answer:
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in case.query)
    url = endpoint.rstrip("/") + case.path + (f"?{query}" if query else "")
    signed = sign_request(case.method, url, case.body, credentials, headers=case.headers)
    request = urllib.request.Request(
        url, data=case.body if case.body else None, method=case.method, headers=dict(signed.headers.items())
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(
                response.status,
                response.headers.get("x-amzn-ErrorType"),
                response.read(),
                dict(response.headers),
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers.get("x-amzn-ErrorType"), error.read(), dict(error.headers))


def modeled_errors(operation: OperationModel) -> set[str]:
    return {shape.name for shape in operation.error_shapes} | {
        shape.metadata.get("error", {}).get("code", shape.name) for shape in operation.error_shapes
    }


@dataclass
class Report:
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    wire_mutations: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> str:
        from_openapi = sum(n for name, n in self.operations.items() if name.startswith("openapi:"))
        lines = [
            f"cases: {self.cases} in {self.seconds:.1f} s ({self.cases / max(self.seconds, 1e-9):.0f}/s), "
            f"violations: {len(self.violations)}",
            f"sources: {self.cases - from_openapi} from AWS's models "
            f"({sum(1 for n in self.operations if not n.startswith('openapi:'))} operations), "
            f"{from_openapi} from the OpenAPI document "
            f"({sum(1 for n in self.operations if n.startswith('openapi:'))} routes)",
            "statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())),
            "error types: " + ", ".join(f"{k}: {v}" for k, v in self.errors.most_common()),
            "wire mutations: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.wire_mutations.items())),
        ]
        return "\n".join(lines + [f"  VIOLATION {v}" for v in self.violations[:20]])


def judge(case: Case, answer: Answer, allowed: set[str]) -> str | None:
    """Why this answer breaks the property, or None."""
    text = answer.body.decode("utf-8", "replace")
    if answer.status >= 500:
        return f"{case.operation}: {answer.status} {answer.error_type}: {text[:200]}"
    if TRACEBACK.search(text) or any(TRACEBACK.search(v) for v in answer.headers.values()):
        return f"{case.operation}: traceback in the response"
    if answer.status >= 400:
        gateway = GATEWAY_ERRORS.get(answer.status, set())
        if answer.error_type not in allowed | gateway:
            return f"{case.operation}: {answer.status} unmodeled error {answer.error_type!r}: {text[:200]}"
        try:
            message = json.loads(text).get("message")
        except (ValueError, AttributeError):
            return f"{case.operation}: error body is not JSON: {text[:200]}"
        if not isinstance(message, str):
            return f"{case.operation}: error body has no message: {text[:200]}"
    return None


def run(
    endpoint: str,
    credentials: Credentials,
    openapi: dict[str, Any],
    cases: int,
    seed: int = 0,
    time_limit: float | None = None,
    known_arns: list[str] | None = None,
) -> Report:
    models = []
    for model in (robomaker_model(), greengrass_model()):
        models.append((model, served_operations(model, openapi)))
    allowed: dict[str, set[str]] = {}
    for _, served in models:
        for operation in served:
            allowed.setdefault(operation.name, set()).update(modeled_errors(operation))
    # /tags/{resourceArn} is one route for both front doors: the ARN picks the semantics, so either door's
    # errors are modeled there (a Greengrass ARN sent through RoboMaker's TagResource gets Greengrass's).
    allowed.update(openapi_allowed_errors(openapi, models))
    from_models = generate(models, seed, known_arns)
    from_openapi = OpenApiGenerator(openapi, random.Random(seed + 1), list(known_arns or []))
    mix = random.Random(seed + 2)
    report = Report()
    started = time.monotonic()
    while True:
        if report.cases >= cases or (time_limit is not None and time.monotonic() - started > time_limit):
            break
        # Two in three from AWS's descriptions, one in three from the API's own OpenAPI document
        case = from_openapi.case() if mix.random() < 1 / 3 else next(from_models)
        answer = send(endpoint, case, credentials)
        report.cases += 1
        report.operations[case.operation] += 1
        report.statuses[answer.status] += 1
        if answer.error_type:
            report.errors[answer.error_type] += 1
        if case.wire_mutation:
            report.wire_mutations[case.wire_mutation] += 1
        violation = judge(case, answer, allowed[case.operation])
        if violation:
            report.violations.append(violation)
    report.seconds = time.monotonic() - started
    return report


def seed_resources(client: Any, bucket_client: Any | None = None) -> list[str]:
    """A fleet, robots, an application with a numbered version, a job: ARNs for the fuzzer to aim at."""
    suffix = f"{random.getrandbits(32):08x}"
    fleet = client.call("createFleet", {"name": f"fuzz-{suffix}"})["arn"]
    robots = []
    for index in range(2):
        robot = client.call(
            "createRobot",
            {"name": f"fuzz-{suffix}-{index}", "architecture": "X86_64", "greengrassGroupId": "g"},
        )["arn"]
        client.call("registerRobot", {"fleet": fleet, "robot": robot})
        robots.append(robot)
    if bucket_client is None:
        return [fleet, *robots]
    bucket_client.put_object(Bucket="fleetwave-bundles", Key=f"fuzz-{suffix}.tar.gz", Body=b"bundle")
    application = client.call(
        "createRobotApplication",
        {
            "name": f"fuzz-{suffix}",
            "sources": [
                {"s3Bucket": "fleetwave-bundles", "s3Key": f"fuzz-{suffix}.tar.gz", "architecture": "X86_64"}
            ],
            "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"},
        },
    )["arn"]
    return [fleet, *robots, application]
