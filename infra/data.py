"""DynamoDB: the main table and the Powertools idempotency table, shaped by core/schema.py.

The key schema, indexes and TTL attributes are read from the runtime's own table definitions, so the
tables the local runtime creates and the ones CloudFormation creates cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct
from fleetwave_service.core.schema import (
    IDEMPOTENCY_TTL_ATTRIBUTE,
    TTL_ATTRIBUTE,
    idempotency_table_definition,
    main_table_definition,
)

_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def _keys(definition: dict[str, Any], key_schema: list[dict[str, str]]) -> dict[str, dynamodb.Attribute]:
    types = {a["AttributeName"]: a["AttributeType"] for a in definition["AttributeDefinitions"]}
    keys: dict[str, dynamodb.Attribute] = {}
    for key in key_schema:
        name = key["AttributeName"]
        role = "partition_key" if key["KeyType"] == "HASH" else "sort_key"
        keys[role] = dynamodb.Attribute(name=name, type=_TYPES[types[name]])
    return keys


def _table(
    scope: Construct,
    construct_id: str,
    definition: dict[str, Any],
    ttl_attribute: str,
    removal_policy: RemovalPolicy,
) -> dynamodb.Table:
    table = dynamodb.Table(
        scope,
        construct_id,
        **_keys(definition, definition["KeySchema"]),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=ttl_attribute,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=removal_policy,
    )
    for index in definition.get("GlobalSecondaryIndexes", []):
        if index["Projection"]["ProjectionType"] != "ALL":
            raise ValueError(f"index {index['IndexName']}: only ALL projections are declared here")
        table.add_global_secondary_index(
            index_name=index["IndexName"],
            **_keys(definition, index["KeySchema"]),
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return table


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Job history lives here: `cdk destroy` must never take it along
        # (README.md, "Tearing down without losing job history").
        self.table = _table(
            self,
            "Table",
            main_table_definition("unused"),
            TTL_ATTRIBUTE,
            RemovalPolicy.RETAIN,
        )
        # Only cached responses to client tokens (8 hours at most): nothing to keep after a teardown.
        self.idempotency_table = _table(
            self,
            "IdempotencyTable",
            idempotency_table_definition("unused"),
            IDEMPOTENCY_TTL_ATTRIBUTE,
            RemovalPolicy.DESTROY,
        )
