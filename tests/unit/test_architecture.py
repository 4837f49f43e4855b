"""The service's dependency rule, read from the imports (docs/architecture.md).

    core <- fleet <- robomaker / greengrass -> engine -> core

- core imports nothing of ours; engine imports only core (no front door, not fleet);
- fleet imports only core; each front door imports core, fleet and engine, never the other front door;
- the top-level modules (api.py, handlers.py: the composition root) may import every context;
  lambdas.py, which the CDK app reads at synth time, imports nothing of ours.

An import inside a function is how a cycle hides from this test, so the service has none (a package's
``__init__`` may defer loading its adapters, which keeps the package light to import; so may the
composition roots, which nothing of ours imports: handlers.py, so that each Lambda function's cold start loads
only what its handler needs, and api.py, which adds a front door's routes with the first request for it; and
any module may defer the robot message models, engine/messages.py, which
imports nothing of ours but the protocol's names: a step that builds no command loads no pydantic).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "functions" / "fleetwave_service"
PACKAGE = "fleetwave_service"
CONTEXTS = ("core", "fleet", "robomaker", "greengrass", "engine")
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "engine": {"core", "engine"},
    "fleet": {"core", "fleet"},
    "robomaker": {"core", "fleet", "engine", "robomaker"},
    "greengrass": {"core", "fleet", "engine", "greengrass"},
    "lambdas": set(),
}
HEAVY = ("boto3", "botocore", "aws_lambda_powertools", "moto")


def _modules() -> list[Path]:
    return sorted(path for path in SERVICE.rglob("*.py") if "__pycache__" not in path.parts)


def _context(path: Path) -> str:
    relative = path.relative_to(SERVICE)
    if len(relative.parts) > 1:
        return relative.parts[0]
    return relative.stem  # a top-level module: api, handlers, lambdas, __init__


def _imported(node: ast.AST) -> list[str]:
    """Our modules an import statement names, as dotted paths below fleetwave_service."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return [name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")]


def _context_of(module: str) -> str | None:
    """The context (or top-level module) a dotted path is in; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [(node.lineno, name) for node in ast.walk(tree) for name in _imported(node)]


def test_architecture_every_module_belongs_to_a_context_or_the_top_level():
    top_level = {"__init__", "api", "handlers", "lambdas"}
    strays = [str(path) for path in _modules() if _context(path) not in (*CONTEXTS, *top_level)]
    assert strays == []


def test_architecture_contexts_import_only_what_the_dependency_rule_allows():
    violations = []
    for path in _modules():
        context = _context(path)
        allowed = ALLOWED.get(context)
        if allowed is None:
            continue  # api.py, handlers.py: the composition root
        for line, module in _imports(path):
            target = _context_of(module)
            # `from fleetwave_service import x` names the context x (or a top-level module).
            if target is not None and target not in allowed:
                violations.append(f"{path.relative_to(SERVICE)}:{line} ({context}) imports {module}")
    assert violations == []


def test_architecture_the_engine_imports_no_front_door():
    front_doors = ("robomaker", "greengrass")
    found = [
        f"{path.relative_to(SERVICE)}:{line} imports {module}"
        for path in _modules()
        if _context(path) == "engine"
        for line, module in _imports(path)
        if _context_of(module) in front_doors
    ]
    assert found == []


DEFERS_IMPORTS = {"__init__.py", "handlers.py", "api.py"}
# Modules any function may import (a leaf: nothing of ours but what the next test allows, so no cycle).
DEFERRABLE = f"{PACKAGE}.engine.messages"


def test_architecture_no_module_imports_ours_inside_a_function():
    found = []
    for path in _modules():
        if path.name in DEFERS_IMPORTS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    found += [
                        f"{path.relative_to(SERVICE)}:{node.lineno} {m}"
                        for m in _imported(node)
                        if m != DEFERRABLE and not m.startswith(DEFERRABLE + ".")
                    ]
    assert found == []


def test_architecture_the_deferrable_message_models_import_only_the_protocols_names():
    messages = SERVICE / "engine" / "messages.py"
    ours = {module.rsplit(".", 1)[0] if module.count(".") > 2 else module for _, module in _imports(messages)}
    assert ours == {f"{PACKAGE}.engine.protocol"}


def test_architecture_rule_check_sees_a_violation():
    # The check above must be able to fail: an engine module importing a front door is caught.
    sample = ast.parse("from fleetwave_service.greengrass.policy import GreengrassPolicy\n")
    modules = [name for node in ast.walk(sample) for name in _imported(node)]
    assert "fleetwave_service.greengrass.policy" in modules
    assert _context_of(modules[0]) not in ALLOWED["engine"]


_BLOCKER = """
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {heavy!r}:
            raise ImportError(f"{{name}} is not installed on a robot")
        return None

sys.meta_path.insert(0, Blocked())
import {module}
print("imported")
"""


@pytest.mark.parametrize(
    "module",
    [
        "fleetwave_service.engine.messages",
        "fleetwave_service",
        "fleetwave_service.core",
        "fleetwave_service.fleet",
        "fleetwave_service.robomaker",
        "fleetwave_service.greengrass",
        "fleetwave_service.engine",
        "fleetwave_service.engine.channels",
        "fleetwave_service.engine.channels.mqtt_client",
        "fleetwave_service.lambdas",
    ],
)
def test_architecture_packages_import_without_aws_libraries(module):
    # A robot has pydantic and paho-mqtt, not boto3 or Powertools: the agent imports the protocol.
    code = _BLOCKER.format(heavy=set(HEAVY), module=module)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_architecture_import_blocker_does_block():
    code = _BLOCKER.format(heavy=set(HEAVY), module="fleetwave_service.core.dynamo")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "is not installed on a robot" in result.stderr


@pytest.mark.parametrize("root", ["handlers", "api"])
def test_architecture_nothing_of_ours_imports_the_composition_root(root):
    # Which is why handlers.py and api.py may defer imports: no cycle can run through them.
    found = [
        f"{path.relative_to(SERVICE)}:{line}"
        for path in _modules()
        for line, name in _imports(path)
        if name == f"{PACKAGE}.{root}" or name.startswith(f"{PACKAGE}.{root}.")
    ]
    assert found == []


_LOOKUP = """
import sys
import fleetwave_service.handlers as handlers
getattr(handlers, {attribute!r})
print(sorted(m for m in sys.modules if m in {watched!r}))
"""


@pytest.mark.parametrize(
    "attribute", ["prepare_handler", "release_wave_handler", "status_handler", "api_handler"]
)
def test_architecture_only_the_api_function_loads_the_api(attribute):
    # A cold start of a rollout step or of the status function imports neither the API nor its routes and
    # request models (most of the API function's import time); the API function's lookup loads the API, and
    # neither front door's routes before a request for it (next test).
    code = _LOOKUP.format(attribute=attribute, watched=_API_MODULES)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.strip()
    assert loaded == ("['fleetwave_service.api']" if attribute == "api_handler" else "[]")


_API_MODULES = {
    "fleetwave_service.api",
    "fleetwave_service.robomaker.routes",
    "fleetwave_service.greengrass.routes",
}

_FIRST_REQUESTS = """
import json, sys
import fleetwave_service.handlers as handlers

class Context:
    function_name = "fleetwave-api"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fleetwave-api"
    aws_request_id = "r-1"

def request(method, path, body=None, query=None):
    event = {{
        "httpMethod": method, "path": path, "resource": "/{{proxy+}}", "body": body, "isBase64Encoded": False,
        "headers": {{"content-type": "application/json"}}, "multiValueHeaders": {{}},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {{k: [v] for k, v in query.items()}} if query else None,
        "requestContext": {{"requestId": "r-1", "stage": "prod"}}, "pathParameters": None,
    }}
    answer = handlers.api_handler(event, Context())
    loaded = sorted(m.split(".")[1] for m in sys.modules if m in {watched!r} and m.endswith(".routes"))
    print(answer["statusCode"], json.loads(answer["body"])["message"], loaded)

for method, path, body, query in {requests!r}:
    request(method, path, body, query)
"""


def test_architecture_a_front_doors_routes_join_the_api_with_its_first_request():
    # A cold start that serves a RoboMaker request builds RoboMaker's routes and models only, the first
    # Greengrass request adds Greengrass's; the tags and an unknown path need neither (each request here is
    # refused before any AWS call: the answers are the front doors' own errors)
    requests = [
        ("DELETE", "/tags/arn%3Aaws%3Arobomaker%3Aus-east-1%3A123456789012%3Afleet%2Ff%2F1", None, None),
        ("POST", "/createFleet", json.dumps({"name": ""}), None),
        ("GET", "/greengrass/v2/deployments", None, {"maxResults": "0"}),
        ("GET", "/nothing", None, None),
    ]
    code = _FIRST_REQUESTS.format(watched=_API_MODULES, requests=requests)
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "ERROR"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "400 tagKeys: is required []",
        "400 name: must be at least 1 characters long ['robomaker']",
        "400 maxResults: must be at least 1 ['greengrass', 'robomaker']",
        "403 Missing Authentication Token ['greengrass', 'robomaker']",
    ]


_STEP_MODULES = {"fleetwave_service.engine.step_handlers", "fleetwave_service.engine.steps"}
_STATUS_MODULES = {
    "fleetwave_service.engine.status",
    "fleetwave_service.engine.robot_messages",
    "fleetwave_service.engine.reports",
}
_POLICIES = {"fleetwave_service.robomaker.policy", "fleetwave_service.greengrass.policy"}


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("prepare_handler", _STEP_MODULES),
        ("finalize_handler", _STEP_MODULES),
        ("status_handler", _STATUS_MODULES),
        ("provisioning_hook_handler", set()),
    ],
)
def test_architecture_a_functions_lookup_loads_its_own_handler_and_no_front_door_policy(attribute, expected):
    # A rollout step's cold start loads the steps, not the status path (a release that ends its wave's wait
    # calls engine/wave_end.py, not the reports' module); the status function the reverse;
    # the provisioning hook neither. No function loads a front door's rollout policy before it meets a job
    # of that front door (engine/policy.py register_lazily).
    watched = _STEP_MODULES | _STATUS_MODULES | _POLICIES
    code = _LOOKUP.format(attribute=attribute, watched=watched)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sorted(expected))


_FIRST_JOB = """
import sys
import fleetwave_service.handlers
from fleetwave_service.engine.policy import policy_for
policy = policy_for({job!r})
print(type(policy).__name__, sorted(m for m in sys.modules if m in {watched!r}))
"""


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({"jobId": "j"}, "RoboMakerPolicy ['fleetwave_service.robomaker.policy']"),
        (
            {"jobId": "j", "frontDoor": "greengrass"},
            "GreengrassPolicy ['fleetwave_service.greengrass.policy']",
        ),
    ],
)
def test_architecture_a_front_doors_policy_is_loaded_by_its_first_job(job, expected):
    code = _FIRST_JOB.format(job=job, watched=_POLICIES)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


_NO_PYDANTIC = """
import sys
import fleetwave_service.handlers as handlers
getattr(handlers, {attribute!r})
from fleetwave_service.engine.policy import policy_for
policy_for({{"jobId": "j"}})
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core")))
"""


@pytest.mark.parametrize(
    "attribute",
    [
        "prepare_handler",
        "evaluate_handler",
        "release_wave_handler",
        "hold_handler",
        "sweep_handler",
        "finalize_handler",
        "provisioning_hook_handler",
    ],
)
def test_architecture_a_rollout_steps_cold_start_loads_no_pydantic(attribute):
    # A step reads the machine's state by hand and the protocol's names from engine/protocol.py; the message
    # models (pydantic, about a third of `import boto3`) load only where a command is built (a release, an
    # abort, a link reply) or a robot's message parsed (the status function). Its RoboMaker policy neither.
    code = _NO_PYDANTIC.format(attribute=attribute)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
