"""The fleet registry on IoT Core (fleetwave_service/fleet/): robots are things of one thing type, fleets are
thing groups, and one IoT policy says what a robot's certificate may do.

Topic names come from the robot protocol module shared with the agent (engine/messages.py).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from constructs import Construct
from fleetwave_service.engine.iot_policies import robot_policy
from fleetwave_service.engine.messages import COMMAND_TOPIC_FILTER, LINKS_TOPIC_FILTER


class RobotAccess(Construct):
    """What a robot's certificate may do, and the thing type robots are registered with."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        def arn(resource: str) -> str:
            return stack.format_arn(service="iot", resource=resource)

        self.policy_document = robot_policy(arn)
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
