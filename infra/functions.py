"""The one Lambda function factory: shared runtime defaults, one role and one log group per function."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from fleetwave_service.lambdas import LambdaFunction

from infra.layers import powertools_layer, pyyaml_layer
from infra.nag import XRAY_REASON, acknowledge

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# The layers (infra/layers.py): Powertools v3, resolved at deploy time from its public SSM parameter for
# RUNTIME and ARCHITECTURE (built with the `[all]` extras, so it also provides pydantic v2, aws-xray-sdk and
# fastjsonschema; the runtime provides boto3), and PyYAML, copied from the synth environment.

SERVICE_NAME = "fleetwave"
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.egg-info", "**/*.egg-info"]


# What differs between Fleetwave's functions (fleetwave_service/lambdas.py); the rest is the factory's.
FunctionSpec = LambdaFunction


class FunctionFactory(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self._environment = dict(environment)
        self._log_retention = log_retention
        self.powertools_layer = powertools_layer(self, "PowertoolsLayer", ARCHITECTURE, RUNTIME)
        self.pyyaml_layer = pyyaml_layer(self, "PyYamlLayer", ARCHITECTURE, RUNTIME)
        # One asset for every function: they share one package and differ only in the handler.
        self.code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=ASSET_EXCLUDES)

    def make(self, spec: FunctionSpec, extra_environment: dict[str, str] | None = None) -> lambda_.Function:
        scope = Construct(self, spec.name)
        # Explicit log group: retention is ours, and the role can be granted exactly this group.
        log_group = logs.LogGroup(
            scope,
            "Logs",
            retention=self._log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Fleetwave {spec.name} function: only what this function calls",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            scope,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self.code,
            handler=spec.handler,
            layers=[self.powertools_layer, self.pyyaml_layer],
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            reserved_concurrent_executions=spec.reserved_concurrency,
            environment={
                **self._environment,
                **(extra_environment or {}),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": SERVICE_NAME,
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )
        acknowledge(role, "IAM5", XRAY_REASON, findings=["Resource::*"])
        return function
