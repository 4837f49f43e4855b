"""The REST API in the synthesized template: every route, IAM on every method, logs, throttling."""

from __future__ import annotations

import pytest
from support.infra_template import Synthesized

from infra.routes import ROUTES

pytestmark = pytest.mark.infra


def _paths(synthesized: Synthesized) -> dict[str, str]:
    """Logical id of each API resource -> its full path, rebuilt from PathPart/ParentId."""
    resources = synthesized.resources("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            properties = resources[logical_id]["Properties"]
            parent = properties["ParentId"]
            prefix = path_of(parent["Ref"]) if "Ref" in parent else ""
            paths[logical_id] = f"{prefix}/{properties['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def _served(synthesized: Synthesized) -> dict[tuple[str, str], dict]:
    paths = _paths(synthesized)
    return {
        (method["Properties"]["HttpMethod"], paths[method["Properties"]["ResourceId"]["Ref"]]): method
        for method in synthesized.resources("AWS::ApiGateway::Method").values()
    }


def test_api_serves_exactly_the_route_table(synthesized: Synthesized) -> None:
    # Given the route table the API Lambda serves
    expected = {(route.method, route.path) for route in ROUTES}
    # When the gateway's methods are read back from the template
    served = set(_served(synthesized))
    # Then every route is there and nothing else is
    assert served == expected


def test_api_every_method_requires_iam_authorisation(synthesized: Synthesized) -> None:
    methods = synthesized.resources("AWS::ApiGateway::Method")
    assert methods
    unsigned = {k for k, m in methods.items() if m["Properties"].get("AuthorizationType") != "AWS_IAM"}
    assert unsigned == set()


def test_api_every_method_proxies_to_the_api_function(synthesized: Synthesized) -> None:
    api_function = synthesized.stack.get_logical_id(synthesized.stack.functions["api"].node.default_child)
    for method in synthesized.resources("AWS::ApiGateway::Method").values():
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert api_function in str(integration["Uri"])


def test_api_every_method_is_validated(synthesized: Synthesized) -> None:
    validator_id, validator = synthesized.only("AWS::ApiGateway::RequestValidator")
    assert validator["Properties"]["ValidateRequestParameters"] is True
    assert validator["Properties"]["ValidateRequestBody"] is True
    for method in synthesized.resources("AWS::ApiGateway::Method").values():
        assert method["Properties"]["RequestValidatorId"] == {"Ref": validator_id}


def test_api_untag_requires_tag_keys_and_tags_take_any_arn(synthesized: Synthesized) -> None:
    served = _served(synthesized)
    untag = served[("DELETE", "/tags/{resourceArn+}")]["Properties"]["RequestParameters"]
    assert untag == {"method.request.path.resourceArn": True, "method.request.querystring.tagKeys": True}
    assert served[("GET", "/tags/{resourceArn+}")]["Properties"]["RequestParameters"] == {
        "method.request.path.resourceArn": True
    }


def test_api_stage_has_access_logs_throttling_and_tracing(synthesized: Synthesized) -> None:
    _, stage = synthesized.only("AWS::ApiGateway::Stage")
    properties = stage["Properties"]
    config = synthesized.stack.config
    assert properties["StageName"] == config.stage
    assert "DestinationArn" in properties["AccessLogSetting"]
    assert '"status"' in properties["AccessLogSetting"]["Format"]
    assert properties["TracingEnabled"] is True
    (settings,) = properties["MethodSettings"]
    assert settings["HttpMethod"] == "*" and settings["ResourcePath"] == "/*"
    assert settings["ThrottlingRateLimit"] == config.throttle_rate_limit
    assert settings["ThrottlingBurstLimit"] == config.throttle_burst_limit
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False


def test_api_gateway_errors_carry_the_contract_error_names(synthesized: Synthesized) -> None:
    # Given requests API Gateway rejects before the Lambda runs (missing parameter, throttled)
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synthesized.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    # Then a botocore client reads the same error names the Lambda would answer with
    assert responses["BAD_REQUEST_PARAMETERS"]["StatusCode"] == "400"
    assert responses["BAD_REQUEST_PARAMETERS"]["ResponseParameters"] == {
        "gatewayresponse.header.x-amzn-ErrorType": "'InvalidParameterException'"
    }
    assert responses["THROTTLED"]["ResponseParameters"] == {
        "gatewayresponse.header.x-amzn-ErrorType": "'ThrottlingException'"
    }


def test_api_routes_match_what_the_api_function_serves() -> None:
    # Given the routes the API Lambda's resolver serves (its OpenAPI document)
    from fleetwave_service.api import include_front_doors

    app = include_front_doors()
    served = {
        (method.upper(), path)
        for path, item in app.get_openapi_schema().paths.items()
        for method in item.model_dump(exclude_none=True)
        if method in {"get", "post", "put", "delete", "patch"}
    }
    # When the gateway's route table is written the same way ({name+} is API Gateway's greedy form)
    table = {(route.method, route.path.replace("+}", "}")) for route in ROUTES}
    # Then they are the same: a route the Lambda serves is reachable, and the gateway forwards no dead path
    assert table == served, "edit infra/routes.py ROUTES to match the API handler's routes"
