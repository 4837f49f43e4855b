"""The fleet registry on IoT Core (fleetwave_service/fleet/): robots are things of one thing type, fleets are
thing groups, and one IoT policy says what a robot's certificate may do.

Topic names come from the robot protocol module shared with the agent (engine/messages.py).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from fleetwave_service.engine.iot_policies import claim_policy, robot_policy
from fleetwave_service.engine.messages import COMMAND_TOPIC_FILTER, LINKS_TOPIC_FILTER
from fleetwave_service.fleet.provisioning import ROBOT_NAME_PARAMETER


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

    def grant_retirement(self, grantee: iam.IGrantable) -> None:
        """DeleteRobot retires a robot's identity (fleet/registry.py retire_thing): its certificates are
        detached from its thing and policies, deactivated and deleted, then the thing is deleted."""
        stack = Stack.of(self)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListAndDetachRobotCertificates",
                actions=["iot:ListThingPrincipals", "iot:DetachThingPrincipal"],
                resources=[stack.format_arn(service="iot", resource="thing", resource_name="*")],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RevokeRobotCertificates",
                actions=[
                    "iot:ListAttachedPolicies",
                    "iot:DetachPolicy",
                    "iot:UpdateCertificate",
                    "iot:DeleteCertificate",
                ],
                resources=[stack.format_arn(service="iot", resource="cert", resource_name="*")],
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


class ClaimProvisioning(Construct):
    """Fleet provisioning by claim (docs/robot-identity.md): the provisioning template robots register
    with, its pre-provisioning hook (only robots created by CreateRobot are admitted), the role IoT
    provisions with, and the claim policy, which can do nothing but provision."""

    def __init__(
        self, scope: Construct, construct_id: str, *, robots: RobotAccess, hook: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        def arn(resource: str) -> str:
            return stack.format_arn(service="iot", resource=resource)

        # What IoT does for a robot the hook admitted: the thing is the robot's (CreateRobot made it), the
        # certificate from CreateKeysAndCertificate is activated and gets the robot policy.
        self.role = iam.Role(
            self,
            "ProvisioningRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="IoT fleet provisioning: register an admitted robot's certificate with its thing",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterRobotThing",
                actions=[
                    "iot:DescribeThing",
                    "iot:CreateThing",
                    "iot:UpdateThing",
                    "iot:AttachThingPrincipal",
                ],
                resources=[arn("thing/*")],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ActivateRobotCertificate",
                actions=["iot:DescribeCertificate", "iot:UpdateCertificate", "iot:AttachPolicy"],
                resources=[arn("cert/*")],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="AttachRobotPolicy",
                actions=["iot:GetPolicy", "iot:AttachPolicy"],
                resources=[arn(f"policy/{robots.policy.ref}")],
            )
        )
        body = {
            "Parameters": {
                ROBOT_NAME_PARAMETER: {"Type": "String"},
                "ThingName": {"Type": "String"},
                "AWS::IoT::Certificate::Id": {"Type": "String"},
            },
            "Resources": {
                "thing": {
                    "Type": "AWS::IoT::Thing",
                    "Properties": {"ThingName": {"Ref": "ThingName"}},
                    "OverrideSettings": {
                        "AttributePayload": "MERGE",
                        "ThingTypeName": "REPLACE",
                        "ThingGroups": "DO_NOTHING",
                    },
                },
                "certificate": {
                    "Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"},
                },
                "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": robots.policy.ref}},
            },
        }
        permission = lambda_.CfnPermission(
            self,
            "HookInvoke",
            action="lambda:InvokeFunction",
            function_name=hook.function_arn,
            principal="iot.amazonaws.com",
            source_account=stack.account,
        )
        self.template = iot.CfnProvisioningTemplate(
            self,
            "Template",
            description="Fleetwave robots provisioned by claim (RobotName: a robot created by CreateRobot)",
            enabled=True,
            provisioning_role_arn=self.role.role_arn,
            template_body=stack.to_json_string(body),
            pre_provisioning_hook=iot.CfnProvisioningTemplate.ProvisioningHookProperty(
                target_arn=hook.function_arn, payload_version="2020-04-01"
            ),
        )
        self.template.add_dependency(permission)
        self.claim_policy = iot.CfnPolicy(
            self, "ClaimPolicy", policy_document=claim_policy(arn, self.template.ref)
        )


CLAIM_WILDCARD_REASON = (
    "IoT provisions robots under run-time names (their things and the certificates it issues): the "
    "provisioning role may only register things, activate certificates and attach the stack's robot policy."
)
CLAIM_WILDCARD_FINDINGS = [
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*",
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*",
]
CERT_WILDCARD_FINDINGS = ["Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*"]
CERT_WILDCARD_REASON = (
    "IoT certificate ids are issued at run time and carry no name IAM could scope by; retiring a robot "
    "revokes the certificates attached to its thing, found through the thing, so cert/* of this account "
    "and region is the narrowest resource."
)

THING_WILDCARD_REASON = (
    "Robots and fleets are IoT things and thing groups created at run time under user-chosen names; the "
    "grant is limited to things and thing groups of this account and region, with no other IoT resource."
)
THING_WILDCARD_FINDINGS = [
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*",
    "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thinggroup/*",
]
