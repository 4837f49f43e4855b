"""IoT Core: the robot policy and thing type, the status-topic rule feeding SQS, the data endpoint.

Topic names come from the robot protocol module shared with the agent (models/messages.py).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from constructs import Construct
from fleetwave_service.models.messages import (
    COMMAND_TOPIC,
    COMMAND_TOPIC_FILTER,
    LINKS_TOPIC,
    LINKS_TOPIC_FILTER,
    STATUS_TOPIC,
    STATUS_TOPIC_FILTER,
)

from infra.nag import acknowledge

# IoT policy variable: the thing name the connecting certificate is attached to. A robot can only
# connect as, subscribe to and publish on topics carrying its own name.
THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"
# topic(n) in IoT SQL is 1-based over the '/' segments of the topic. The robot name comes from the topic
# (the IoT policy pins it to the publisher's thing name); a payload that brings its own `robotName` is
# dropped rather than left to compete with it.
ROBOT_NAME_SEGMENT = STATUS_TOPIC.split("/").index("{robot}") + 1
STATUS_RULE_SQL = (
    f"SELECT *, topic({ROBOT_NAME_SEGMENT}) AS robotName FROM '{STATUS_TOPIC_FILTER}' "
    "WHERE isUndefined(robotName)"
)


class RobotAccess(Construct):
    """What a robot's certificate may do, and the thing type robots are registered with."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        def arn(resource: str) -> str:
            return stack.format_arn(service="iot", resource=resource)

        own_command = COMMAND_TOPIC.format(robot=THING_NAME_VARIABLE)
        own_status = STATUS_TOPIC.format(robot=THING_NAME_VARIABLE)
        own_links = LINKS_TOPIC.format(robot=THING_NAME_VARIABLE)
        self.policy_document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ConnectAsItself",
                    "Effect": "Allow",
                    "Action": "iot:Connect",
                    "Resource": arn(f"client/{THING_NAME_VARIABLE}"),
                    # The certificate must be attached to the thing whose name it claims.
                    "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
                },
                {
                    "Sid": "SubscribeOwnCommands",
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": arn(f"topicfilter/{own_command}"),
                },
                {
                    "Sid": "ReceiveOwnCommands",
                    "Effect": "Allow",
                    "Action": "iot:Receive",
                    "Resource": arn(f"topic/{own_command}"),
                },
                {
                    # Fresh download links, asked for on the status topic (docs/robot-protocol.md).
                    "Sid": "SubscribeOwnLinks",
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": arn(f"topicfilter/{own_links}"),
                },
                {
                    "Sid": "ReceiveOwnLinks",
                    "Effect": "Allow",
                    "Action": "iot:Receive",
                    "Resource": arn(f"topic/{own_links}"),
                },
                {
                    # Reports, health, presence (also the last will) and link requests.
                    "Sid": "PublishOwnStatus",
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": arn(f"topic/{own_status}"),
                },
            ],
        }
        self.policy = iot.CfnPolicy(self, "RobotPolicy", policy_document=self.policy_document)
        # No fixed name: thing type names are account-wide, and two stages (or a redeploy after a
        # teardown) must not collide.
        self.thing_type = iot.CfnThingType(
            self,
            "RobotThingType",
            thing_type_properties=iot.CfnThingType.ThingTypePropertiesProperty(
                thing_type_description="A robot managed by Fleetwave",
            ),
        )

    def grant_registry(self, grantee: iam.IGrantable) -> None:
        """Robots are things and fleets are thing groups: the API creates and links them."""
        stack = Stack.of(self)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ManageRobotThingsAndFleetGroups",
                actions=[
                    "iot:CreateThing",
                    "iot:DeleteThing",
                    "iot:DescribeThing",
                    "iot:UpdateThing",
                    "iot:CreateThingGroup",
                    "iot:DeleteThingGroup",
                    "iot:DescribeThingGroup",
                    "iot:AddThingToThingGroup",
                    "iot:RemoveThingFromThingGroup",
                    "iot:ListThingsInThingGroup",
                    "iot:ListThingGroupsForThing",
                ],
                resources=[
                    stack.format_arn(service="iot", resource="thing", resource_name="*"),
                    stack.format_arn(service="iot", resource="thinggroup", resource_name="*"),
                    stack.format_arn(service="iot", resource="thingtype", resource_name=self.thing_type.ref),
                ],
            )
        )

    def grant_publish_commands(self, grantee: iam.IGrantable) -> None:
        """Dispatch publishes each robot's command retained, and clears it with an empty retained message."""
        stack = Stack.of(self)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishRobotCommands",
                actions=["iot:Publish", "iot:RetainPublish"],
                resources=[
                    stack.format_arn(
                        service="iot",
                        resource="topic",
                        # IAM policies use '*' where MQTT filters use '+'.
                        resource_name=COMMAND_TOPIC_FILTER.replace("+", "*"),
                    )
                ],
            )
        )

    def grant_publish_links(self, grantee: iam.IGrantable) -> None:
        """The status function answers link requests on each robot's links topic (never its commands)."""
        stack = Stack.of(self)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishRobotLinks",
                actions=["iot:Publish"],
                resources=[
                    stack.format_arn(
                        service="iot", resource="topic", resource_name=LINKS_TOPIC_FILTER.replace("+", "*")
                    )
                ],
            )
        )


THING_WILDCARD_REASON = (
    "Robots and fleets are IoT things and thing groups created at run time under user-chosen names; the "
    "grant is limited to things and thing groups of this account and region, with no other IoT resource."
)
THING_WILDCARD_FINDINGS = [
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*",
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thinggroup/*",
]
COMMAND_WILDCARD_FINDINGS = [
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic/fleetwave/robots/*/deployment"
]
LINKS_WILDCARD_FINDINGS = [
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic/fleetwave/robots/*/links"
]
LINKS_WILDCARD_REASON = (
    "Link replies go to fleetwave/robots/<robotName>/links for robots named at run time; the wildcard "
    "covers only that segment of Fleetwave's own links topics."
)
COMMAND_WILDCARD_REASON = (
    "Commands go to fleetwave/robots/<robotName>/deployment for robots named at run time; the wildcard "
    "covers only that segment of Fleetwave's own command topics."
)


class StatusIngest(Construct):
    """Robot status reports: IoT rule on the status topic -> SQS (with DLQ) -> the status Lambda."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        visibility_timeout: Duration,
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
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=self.dead_letter_queue),
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
