"""The table shapes (docs/storage.md), used by the local runtime and tests to create tables.

The CDK data construct declares the same shapes; tests/infra checks the two agree.
"""

from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "expiresAt"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"

MAIN_TABLE_GSIS = ("gsi1", "gsi2")


def main_table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments for the main table."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": f"{index}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{index}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in MAIN_TABLE_GSIS
        ],
    }


def idempotency_table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments for the Powertools idempotency table (partition key `id`)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }


def create_tables(dynamodb_client: Any, table_name: str, idempotency_table_name: str) -> None:
    """Create both tables and turn TTL on (local runtime and tests; CDK does this in AWS)."""
    existing = set(dynamodb_client.list_tables().get("TableNames", []))
    for definition, ttl in (
        (main_table_definition(table_name), TTL_ATTRIBUTE),
        (idempotency_table_definition(idempotency_table_name), IDEMPOTENCY_TTL_ATTRIBUTE),
    ):
        if definition["TableName"] in existing:
            continue
        dynamodb_client.create_table(**definition)
        dynamodb_client.update_time_to_live(
            TableName=definition["TableName"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl},
        )
