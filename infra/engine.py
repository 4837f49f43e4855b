"""The rollout engine (fleetwave_service/engine/): its state machine, the status path from robots (IoT rule ->
SQS), the IoT data endpoint commands go out through, and the bus job status changes are published on.

The state machine is statemachines/rollout.asl.json with its ${Placeholders} filled.

The ASL file is the one the local runtime runs in moto. Its placeholders are read from the file at synth
time; a placeholder this stack does not know stops the synth, so a new step cannot ship unwired.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources.abc import Traversable

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct
from fleetwave.statemachines import ROLLOUT
from fleetwave_service.engine.messages import STATUS_TOPIC, STATUS_TOPIC_FILTER
from fleetwave_service.lambdas import PARTITION_PLACEHOLDER, STEP_FUNCTIONS

from infra.nag import XRAY_REASON, acknowledge, arn_of

# The installed package's copy, i.e. statemachines/rollout.asl.json itself under the editable install:
# the CDK app deploys exactly the file the wheel ships (tests/dist checks both ends).
ASL_PATH = ROLLOUT
PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")

# Placeholder -> the function (by name, fleetwave_service/lambdas.py) whose ARN fills it.
ROLLOUT_SUBSTITUTIONS: Mapping[str, str] = {placeholder: f.name for placeholder, f in STEP_FUNCTIONS.items()}
SUBSTITUTION_KEYS = frozenset(ROLLOUT_SUBSTITUTIONS) | {PARTITION_PLACEHOLDER}


class UnknownPlaceholderError(ValueError):
    """The ASL uses a ${Name} the stack has no value for."""


def placeholders_in(definition: str) -> frozenset[str]:
    return frozenset(PLACEHOLDER.findall(definition))


def read_definition(path: Traversable = ASL_PATH) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"the rollout state machine definition is missing: {path}")
    return path.read_text(encoding="utf-8")


class Rollout(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step_functions: Mapping[str, lambda_.IFunction],
        log_retention: logs.RetentionDays,
        asl_path: Traversable = ASL_PATH,
    ) -> None:
        super().__init__(scope, construct_id)
        definition = read_definition(asl_path)
        used = placeholders_in(definition)
        unknown = used - SUBSTITUTION_KEYS
        if unknown:
            raise UnknownPlaceholderError(
                f"{asl_path.name} uses placeholders the stack does not provide: "
                f"{', '.join(sorted(unknown))}; add their step functions to fleetwave_service/lambdas.py"
            )
        substitutions = {
            name: step_functions[ROLLOUT_SUBSTITUTIONS[name]].function_arn
            for name in sorted(used)
            if name in ROLLOUT_SUBSTITUTIONS
        }
        if PARTITION_PLACEHOLDER in used:
            substitutions[PARTITION_PLACEHOLDER] = Stack.of(self).partition
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="Fleetwave rollout: prepare, release waves, sweep, evaluate, finalize",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        # The definition is opaque to the CDK (a file, not a chain of tasks), so grants are explicit.
        for name in sorted(set(ROLLOUT_SUBSTITUTIONS.values())):
            step_functions[name].grant_invoke(self.state_machine)
        acknowledge(
            self.state_machine.role,
            "IAM5",
            "Invoking a function by ARN may target its versions and aliases (<arn>:*); the grant names each "
            "rollout step function explicitly.",
            findings=[
                f"Resource::{arn_of(step_functions[name])}:*"
                for name in sorted(set(ROLLOUT_SUBSTITUTIONS.values()))
            ],
        )
        acknowledge(
            self.state_machine.role,
            "IAM5",
            "CloudWatch Logs delivery actions (CreateLogDelivery, ...) used for state machine logging, and "
            "X-Ray trace writes, do not support resource-level permissions. " + XRAY_REASON,
            findings=["Resource::*"],
        )


class JobEvents(Construct):
    """The bus every job status change is published on; subscribers add their own rules to it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", description="Fleetwave deployment job status changes")


# --- robots: commands out, status in ------------------------------------------------------------
# topic(n) in IoT SQL is 1-based over the '/' segments of the topic. The robot name comes from the topic
# (the IoT policy pins it to the publisher's thing name); a payload that brings its own `robotName` is
# dropped rather than left to compete with it.
ROBOT_NAME_SEGMENT = STATUS_TOPIC.split("/").index("{robot}") + 1
STATUS_RULE_SQL = (
    f"SELECT *, topic({ROBOT_NAME_SEGMENT}) AS robotName FROM '{STATUS_TOPIC_FILTER}' "
    "WHERE isUndefined(robotName)"
)


COMMAND_WILDCARD_FINDINGS = [
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic/fleetwave/robots/*/deployment"
]
COMMAND_WILDCARD_REASON = (
    "Commands go to fleetwave/robots/<robotName>/deployment for robots named at run time; the wildcard "
    "covers only that segment of Fleetwave's own command topics."
)
LINKS_WILDCARD_FINDINGS = [
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic/fleetwave/robots/*/links"
]
LINKS_WILDCARD_REASON = (
    "Link replies go to fleetwave/robots/<robotName>/links for robots named at run time; the wildcard "
    "covers only that segment of Fleetwave's own links topics."
)


class StatusIngest(Construct):
    """Robot status reports: IoT rule on the status topic -> SQS (with DLQ) -> the status Lambda."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        visibility_timeout: Duration,
        max_receive_count: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "SQS3",
            "This is the dead-letter queue of the status queue; it has no dead-letter queue of its own.",
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=max_receive_count, queue=self.dead_letter_queue
            ),
        )
        # Where IoT writes the reason when it cannot deliver a report to the queue.
        self.rule_errors = logs.LogGroup(
            self, "RuleErrors", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            "RuleRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="Lets the status topic rule deliver robot reports to the status queue",
        )
        self.queue.grant_send_messages(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[self.rule_errors.log_group_arn],
            )
        )
        self.rule = iot.CfnTopicRule(
            self,
            "StatusRule",
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                description="Robot status reports to the status queue (robot name taken from the topic)",
                sql=STATUS_RULE_SQL,
                aws_iot_sql_version="2016-03-23",
                rule_disabled=False,
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        sqs=iot.CfnTopicRule.SqsActionProperty(
                            queue_url=self.queue.queue_url,
                            role_arn=role.role_arn,
                            use_base64=False,
                        )
                    )
                ],
                error_action=iot.CfnTopicRule.ActionProperty(
                    cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                        log_group_name=self.rule_errors.log_group_name,
                        role_arn=role.role_arn,
                    )
                ),
            ),
        )
        self.rule.node.add_dependency(role)


class IotDataEndpoint(Construct):
    """The account's IoT data-plane (ATS) endpoint, as the https URL the dispatch code publishes to."""

    def __init__(self, scope: Construct, construct_id: str, *, configured: str = "") -> None:
        super().__init__(scope, construct_id)
        if configured:
            self.url = configured if configured.startswith("https://") else f"https://{configured}"
            return
        lookup = cr.AwsCustomResource(
            self,
            "Describe",
            on_update=cr.AwsSdkCall(
                service="Iot",
                action="describeEndpoint",
                parameters={"endpointType": "iot:Data-ATS"},
                physical_resource_id=cr.PhysicalResourceId.of("iot-data-ats-endpoint"),
            ),
            # DescribeEndpoint has no resource-level permissions.
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
                resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE
            ),
            install_latest_aws_sdk=False,
        )
        self.url = "https://" + lookup.get_response_field("endpointAddress")
        # The CDK's singleton provider function behind every AwsCustomResource in the stack.
        provider = Stack.of(self).node.find_child(
            "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
        )
        acknowledge(
            provider,
            "IAM4",
            "The CDK's AwsCustomResource provider function logs with the AWS managed basic execution policy; "
            "it runs only during deployment, to look up the IoT endpoint.",
            findings=[
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            ],
        )
        acknowledge(
            lookup,
            "IAM5",
            "iot:DescribeEndpoint does not support resource-level permissions; this lookup role can only "
            "read the account's endpoint address.",
            findings=["Resource::*"],
        )
