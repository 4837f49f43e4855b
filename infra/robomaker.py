"""Robot-application bundles: Fleetwave's own bucket, plus read access to buckets named in context.

Robots never get AWS credentials for S3: dispatch hands each robot a presigned URL, signed with the
dispatch function's role, so that role is what needs read access.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge, arn_of


class Bundles(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, extra_bucket_names: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs,
            "S1",
            "This bucket receives the bundle bucket's server access logs; logging it into itself would loop.",
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="bundles/",
            # Deployed robots may still re-download an old version: keep bundles across a teardown.
            removal_policy=RemovalPolicy.RETAIN,
        )
        stack = Stack.of(self)
        self.bucket_names: tuple[str, ...] = tuple(extra_bucket_names)
        self._bucket_arns = [self.bucket.bucket_arn] + [
            stack.format_arn(service="s3", region="", account="", resource=name) for name in self.bucket_names
        ]

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Read bundles (GetObject also answers HeadObject); ListBucket makes a missing key 404, not 403."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadBundles",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[f"{arn}/*" for arn in self._bucket_arns],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListBundleBuckets", actions=["s3:ListBucket"], resources=self._bucket_arns
            )
        )
        principal = grantee.grant_principal
        if isinstance(principal, Construct):
            acknowledge(
                principal,
                "IAM5",
                "Bundle object keys are chosen by users when they upload; read access covers any object of "
                "the bundle buckets only (Fleetwave's own and those named in context).",
                findings=[
                    f"Resource::{arn_of(self.bucket)}/*",
                    *(f"Resource::arn:<AWS::Partition>:s3:::{name}/*" for name in self.bucket_names),
                ],
            )
