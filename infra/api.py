"""The REST API: one IAM-authorised method per route in routes.py, each proxied to the API Lambda."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge
from infra.routes import Route

# API Gateway answers some requests itself, before the Lambda runs. Give those answers the error names
# the RoboMaker contract uses (botocore reads the name from this header).
_GATEWAY_ERRORS = {
    apigw.ResponseType.BAD_REQUEST_PARAMETERS: ("400", "InvalidParameterException"),
    apigw.ResponseType.BAD_REQUEST_BODY: ("400", "InvalidParameterException"),
    apigw.ResponseType.THROTTLED: ("429", "ThrottlingException"),
}


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        routes: Sequence[Route],
        stage: str,
        throttle_rate_limit: int,
        throttle_burst_limit: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            description="Fleetwave: RoboMaker fleet-management and Greengrass V2 deployments APIs (SigV4)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Stage access/execution logs need the account-level API Gateway CloudWatch role. It is shared
            # by every API of the account and region, so it outlives this stack.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=throttle_rate_limit,
                throttling_burst_limit=throttle_burst_limit,
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        # Request bodies are validated by the API Lambda's pydantic models, which answer with the seeds'
        # error names; the gateway validates what it can see without a body model: required path and
        # query parameters.
        self.validator = apigw.RequestValidator(
            self,
            "Validator",
            rest_api=self.rest_api,
            validate_request_body=True,
            validate_request_parameters=True,
        )
        for response_type, (status, error_name) in _GATEWAY_ERRORS.items():
            self.rest_api.add_gateway_response(
                f"{error_name}{status}{response_type.response_type}",
                type=response_type,
                status_code=status,
                response_headers={"x-amzn-ErrorType": f"'{error_name}'"},
                templates={"application/json": '{"message": $context.error.messageString}'},
            )
        # One permission for the whole API instead of one per method (the route table is long).
        integration = apigw.LambdaIntegration(handler, proxy=True, scope_permission_to_method=False)
        self.methods: list[apigw.Method] = []
        for route in routes:
            resource = self.rest_api.root.resource_for_path(route.path)
            path_parameters = {
                f"method.request.path.{segment.strip('{}+')}": True
                for segment in route.path.split("/")
                if segment.startswith("{")
            }
            query_parameters = {f"method.request.querystring.{name}": True for name in route.required_query}
            self.methods.append(
                resource.add_method(
                    route.method,
                    integration,
                    authorization_type=apigw.AuthorizationType.IAM,
                    request_validator=self.validator,
                    request_parameters={**path_parameters, **query_parameters},
                )
            )
        acknowledge(
            self.rest_api,
            "IAM4",
            "The account-level API Gateway logging role uses the AWS managed policy made for exactly this "
            "purpose (AmazonAPIGatewayPushToCloudWatchLogs).",
            findings=[
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
            ],
        )
        acknowledge(
            self.rest_api,
            "APIG3",
            "Every method requires a SigV4-signed request from an IAM principal of the account, and the "
            "stage is throttled; operators who expose the API more widely can attach their own WAF web ACL.",
        )
        acknowledge(
            self.rest_api,
            "COG4",
            "The API's contract is AWS SigV4 (AWS_IAM authorisation), like the services it re-implements: "
            "callers are IAM principals, not Cognito users.",
        )

    @property
    def url(self) -> str:
        return self.rest_api.url
