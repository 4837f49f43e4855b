"""Every function comes from the one factory: same runtime, architecture, layer, logs and tracing."""

from __future__ import annotations

import pytest
from support.infra_template import Synthesized

from infra.stack import FUNCTION_SPECS

pytestmark = pytest.mark.infra

_SHARED_ENVIRONMENT = {
    "FLEETWAVE_TABLE_NAME",
    "FLEETWAVE_IDEMPOTENCY_TABLE_NAME",
    "FLEETWAVE_BUNDLE_BUCKET",
    "FLEETWAVE_EVENT_BUS_NAME",
    "FLEETWAVE_CHANNEL",
    "FLEETWAVE_IOT_DATA_ENDPOINT",
    "FLEETWAVE_ACCOUNT_ID",
    "FLEETWAVE_PARTITION",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_LOG_LEVEL",
}


def _service_functions(synthesized: Synthesized) -> dict[str, dict]:
    return {
        f["Properties"]["Handler"]: f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"].startswith("fleetwave_service.")
    }


def test_functions_cover_every_handler_of_the_contract(synthesized: Synthesized) -> None:
    assert set(_service_functions(synthesized)) == {
        "fleetwave_service.handlers.api_handler",
        "fleetwave_service.handlers.prepare_handler",
        "fleetwave_service.handlers.release_wave_handler",
        "fleetwave_service.handlers.hold_handler",
        "fleetwave_service.handlers.sweep_handler",
        "fleetwave_service.handlers.evaluate_handler",
        "fleetwave_service.handlers.finalize_handler",
        "fleetwave_service.handlers.status_handler",
        "fleetwave_service.handlers.provisioning_hook_handler",
    }


def test_functions_share_the_factory_defaults(synthesized: Synthesized) -> None:
    log_groups = synthesized.resources("AWS::Logs::LogGroup")
    for handler, properties in _service_functions(synthesized).items():
        assert properties["Runtime"] == "python3.14", handler
        assert properties["Architectures"] == ["arm64"], handler
        assert properties["TracingConfig"] == {"Mode": "Active"}, handler
        assert properties["LoggingConfig"]["LogFormat"] == "JSON", handler
        assert len(properties["Layers"]) == 2, handler  # Powertools and PyYAML (test_layers.py)
        log_group = log_groups[properties["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["RetentionInDays"] == synthesized.stack.config.log_retention_days


def test_functions_read_their_settings_from_the_environment(synthesized: Synthesized) -> None:
    for handler, properties in _service_functions(synthesized).items():
        environment = properties["Environment"]["Variables"]
        assert set(environment) >= _SHARED_ENVIRONMENT, handler
        assert environment["FLEETWAVE_CHANNEL"] == "iot"
        # Only the API starts executions; the machine depends on the step functions, not on the API.
        assert ("FLEETWAVE_STATE_MACHINE_ARN" in environment) == handler.endswith("handlers.api_handler")


def test_function_code_is_the_plain_functions_asset(synthesized: Synthesized) -> None:
    # No docker bundling: one asset, the functions/ directory as it is.
    buckets = {str(p["Code"]["S3Key"]) for p in _service_functions(synthesized).values()}
    assert len(buckets) == 1


def test_api_timeout_fits_the_gateway_integration_limit() -> None:
    assert FUNCTION_SPECS["api"].timeout_seconds <= 29
