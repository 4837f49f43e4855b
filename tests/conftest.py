"""Shared fixtures (generic; suites add their own in their own conftest.py).

- ``aws``  moto in-process (``mock_aws``) with Fleetwave's tables created and every cached AWS client of
           the service reset, so each test starts from empty AWS. Yields a ``boto3.Session``.
- ``given`` RoboMaker resources made through ``api`` (fakes/robomaker.py): ``given.fleet("warehouse")``.
- ``api``  the API Lambda (``fleetwave_service.handlers.api_handler``) driven with API Gateway proxy
           events: ``api.call("createFleet", {...})`` -> ApiResponse(status, headers, json).
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import fleetwave_service.handlers  # noqa: F401 - plugs the front doors into the engine, as every Lambda does
import pytest
from fakes.api_events import HandlerApi
from fakes.moto_atomic import serialized_dynamodb
from fakes.robomaker import Given
from moto import mock_aws

TEST_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "FLEETWAVE_ACCOUNT_ID": "123456789012",
    "FLEETWAVE_TABLE_NAME": "fleetwave-test",
    "FLEETWAVE_IDEMPOTENCY_TABLE_NAME": "fleetwave-test-idempotency",
    "POWERTOOLS_SERVICE_NAME": "fleetwave",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def reset_service_clients() -> None:
    """Forget settings and every lazily created client of the service (they bind to the environment)."""
    from fleetwave_service.core import dynamo
    from fleetwave_service.core.settings import reset_settings
    from fleetwave_service.engine import starter
    from fleetwave_service.engine.channels import reset_channel
    from fleetwave_service.fleet import registry
    from fleetwave_service.robomaker import bundles

    reset_settings()
    reset_channel()
    dynamo.reset()
    bundles.reset()
    starter.reset()
    registry.set_registry(None)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name, value in TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    # Never reach a real or local endpoint from an in-process test.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("FLEETWAVE_STATE_MACHINE_ARN", raising=False)
    reset_service_clients()
    with mock_aws(), serialized_dynamodb():
        from fleetwave_service.core.schema import create_tables
        from fleetwave_service.core.settings import get_settings

        settings = get_settings()
        session = boto3.Session(region_name=settings.region)
        create_tables(session.client("dynamodb"), settings.table_name, settings.idempotency_table_name)
        yield session
    reset_service_clients()


@pytest.fixture
def api(aws: boto3.Session) -> HandlerApi:
    from fleetwave_service.handlers import api_handler

    return HandlerApi(api_handler)


@pytest.fixture
def given(api: HandlerApi, aws: boto3.Session) -> Given:
    return Given(api, aws)
