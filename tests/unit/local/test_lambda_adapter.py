"""The in-process Lambda adapter: moto's docker-free Lambda runs the real handler named by Handler.

If a moto upgrade moves the internals the adapter patches, ``test_lambda_adapter_moto_is_compatible`` fails
loudly (moto is pinned exactly in pyproject.toml for this reason).
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from moto.core.config import default_user_config

from fleetwave.local import lambda_adapter

# This module, as the test run imported it (pytest imports test modules by path).
ROUTED = (f"{__name__}.",)


class DeploymentExploded(Exception):
    pass


def echo_handler(event, context):
    return {"got": event, "function": context.function_name}


def raising_handler(event, context):
    raise DeploymentExploded("the bundle is not a tarball")


@pytest.fixture
def lambdas(aws, monkeypatch):
    monkeypatch.setitem(default_user_config, "lambda", {"use_docker": False})
    client = aws.client("lambda")
    role = aws.client("iam").create_role(RoleName="adapter-test", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.txt", "")

    def create(name, handler):
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler=handler,
            Code={"ZipFile": buffer.getvalue()},
        )

    with lambda_adapter.in_process_lambdas(ROUTED):
        yield client, create
    assert not lambda_adapter.installed()


def test_lambda_adapter_moto_is_compatible():
    lambda_adapter.check_compatible()


def test_lambda_adapter_runs_the_handler_named_by_the_function(lambdas):
    client, create = lambdas
    create("echo", f"{__name__}.echo_handler")

    response = client.invoke(FunctionName="echo", Payload=json.dumps({"jobId": "deployment-1"}))

    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"got": {"jobId": "deployment-1"}, "function": "echo"}


def test_lambda_adapter_handler_exception_is_an_unhandled_function_error_named_after_the_class(lambdas):
    client, create = lambdas
    create("boom", f"{__name__}.raising_handler")

    response = client.invoke(FunctionName="boom", Payload="{}")

    # Step Functions reads errorType as the error name an ASL Catch matches
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "DeploymentExploded"
    assert payload["errorMessage"] == "the bundle is not a tarball"


def test_lambda_adapter_leaves_functions_outside_the_routed_packages_to_moto(lambdas):
    client, create = lambdas
    create("other", "somewhere_else.handler")

    response = client.invoke(FunctionName="other", Payload=json.dumps({"x": 1}))

    # moto's canned docker-free behaviour: the payload comes back as is
    assert json.loads(response["Payload"].read()) == {"x": 1}
