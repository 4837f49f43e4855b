"""The rollout state machine on moto: the same ASL file as in AWS, with Lambda steps run in process.

``deploy_rollout_machine()`` creates the step functions (fleetwave_service/lambdas.py) in moto's Lambda (a
placeholder zip; the Handler attribute names the real code, which ``lambda_adapter`` runs in process),
substitutes their ARNs into statemachines/rollout.asl.json and creates the state machine. The CDK stack
fills the same placeholders with its own function ARNs; a parity test checks that ASL placeholders, CDK
substitutions and ``LOCAL_SUBSTITUTION_NAMES`` are the same set.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import boto3
from botocore.exceptions import ClientError
from fleetwave_service.core.settings import get_settings, partition_of
from fleetwave_service.engine import ports
from fleetwave_service.lambdas import PARTITION_PLACEHOLDER, STEP_FUNCTIONS

from fleetwave.local import lambda_adapter
from fleetwave.local.log import logger
from fleetwave.statemachines import ROLLOUT

# Read through importlib.resources: the same file in a checkout, an editable install and a wheel.
ASL_PATH = ROLLOUT
STATE_MACHINE_NAME = "fleetwave-rollout"
ROLE_NAME = "fleetwave-local-rollout"
RUNTIME = "python3.12"

# placeholder -> (function name in moto, handler), from the one table of the service's functions.
ROLLOUT_FUNCTIONS: dict[str, tuple[str, str]] = {
    placeholder: (function.local_name, function.handler) for placeholder, function in STEP_FUNCTIONS.items()
}
LOCAL_SUBSTITUTION_NAMES: frozenset[str] = frozenset(ROLLOUT_FUNCTIONS) | {PARTITION_PLACEHOLDER}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def asl_placeholders(definition: str | None = None) -> set[str]:
    """The ``${Name}`` placeholders the ASL file uses."""
    text = ASL_PATH.read_text() if definition is None else definition
    return set(_PLACEHOLDER.findall(text))


def local_substitutions(function_arns: dict[str, str], region: str = "us-east-1") -> dict[str, str]:
    """Placeholder -> value for the local runtime, from the ARNs of the functions created in moto."""
    values = {**function_arns, PARTITION_PLACEHOLDER: partition_of(region)}
    missing = LOCAL_SUBSTITUTION_NAMES - set(values)
    if missing:
        raise ValueError(f"no function ARN for {sorted(missing)}")
    return {name: values[name] for name in sorted(LOCAL_SUBSTITUTION_NAMES)}


def render_definition(substitutions: dict[str, str], definition: str | None = None) -> str:
    """The ASL with every placeholder filled; refuses unknown or unfilled placeholders."""
    text = ASL_PATH.read_text() if definition is None else definition
    used = asl_placeholders(text)
    if used != set(substitutions):
        raise ValueError(
            f"ASL placeholders {sorted(used)} do not match substitutions {sorted(substitutions)}"
        )
    rendered = _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)
    json.loads(rendered)  # a substitution must never break the document
    return rendered


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # moto stores the code; the adapter runs the installed package named by Handler instead.
        archive.writestr("README.txt", "Fleetwave local runtime: handler code runs in process.\n")
    return buffer.getvalue()


def _clients(endpoint_url: str | None, region: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return {name: boto3.client(name, **kwargs) for name in ("iam", "lambda", "stepfunctions")}


def _role_arn(iam: Any) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        return iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except ClientError:
        return iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _function_arn(lambda_client: Any, name: str, handler: str, role_arn: str) -> str:
    try:
        existing = lambda_client.get_function(FunctionName=name)["Configuration"]
    except ClientError:
        existing = None
    if existing is None:
        created = lambda_client.create_function(
            FunctionName=name,
            Runtime=RUNTIME,
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": _placeholder_zip()},
            Timeout=900,
            MemorySize=512,
        )
        return created["FunctionArn"]
    if existing.get("Handler") != handler:
        lambda_client.update_function_configuration(FunctionName=name, Handler=handler)
    return existing["FunctionArn"]


def deploy_rollout_machine(
    endpoint_url: str | None,
    settings: Any,
    clients: dict[str, Any] | None = None,
    name: str = STATE_MACHINE_NAME,
) -> str:
    """Create (or update) the step functions and the rollout state machine in moto; return the machine ARN.

    ``endpoint_url``: the moto server (``fleetwave serve``); None uses boto3's defaults (``mock_aws`` in
    tests). ``clients`` may pass ready iam/lambda/stepfunctions clients instead. Also installs the in-process
    Lambda router, without which moto would answer every step with a canned payload.
    """
    lambda_adapter.install()
    clients = clients or _clients(endpoint_url, settings.region)
    role_arn = _role_arn(clients["iam"])
    arns = {
        placeholder: _function_arn(clients["lambda"], function_name, handler, role_arn)
        for placeholder, (function_name, handler) in ROLLOUT_FUNCTIONS.items()
    }
    definition = render_definition(local_substitutions(arns, settings.region))
    sfn = clients["stepfunctions"]
    for machine in sfn.list_state_machines().get("stateMachines", []):
        if machine["name"] == name:
            sfn.update_state_machine(stateMachineArn=machine["stateMachineArn"], definition=definition)
            return machine["stateMachineArn"]
    return sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn, type="STANDARD")[
        "stateMachineArn"
    ]


# --- `fleetwave serve` wiring (the ``engine`` hook of fleetwave.local.runtime) -------------------------


class RolloutEngine:
    """Local runtime component: in-process Lambdas + the rollout state machine on the embedded moto server."""

    name = "engine"

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self.state_machine_arn: str | None = None

    def start(self) -> None:
        lambda_adapter.install()
        # moto's Step Functions interpreter calls Lambda at http://localhost:$MOTO_PORT when it is not
        # intercepting boto3 in process (server mode): it must be this server's port, not moto's 5000.
        self._runtime.set_environment({"MOTO_PORT": str(self._runtime.aws.port)})
        self.state_machine_arn = deploy_rollout_machine(self._runtime.aws_url, get_settings())
        self._runtime.set_environment({"FLEETWAVE_STATE_MACHINE_ARN": self.state_machine_arn})
        ports.reset_ports()
        logger.info("rollout engine ready", extra={"stateMachineArn": self.state_machine_arn})

    def stop(self) -> None:
        ports.reset_ports()
        lambda_adapter.uninstall()


def create_component(runtime: Any) -> RolloutEngine:
    """`fleetwave serve` hook: called after the moto server started and the environment points at it."""
    return RolloutEngine(runtime)
