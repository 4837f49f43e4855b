"""DynamoDB tables in the template match storage/schema.py and keep job history safe."""

from __future__ import annotations

from typing import Any

import pytest
from fleetwave_service.core.schema import (
    IDEMPOTENCY_TTL_ATTRIBUTE,
    TTL_ATTRIBUTE,
    idempotency_table_definition,
    main_table_definition,
)
from support.infra_template import Synthesized

pytestmark = pytest.mark.infra


def _table(synthesized: Synthesized, construct: Any) -> dict[str, Any]:
    return synthesized.template["Resources"][synthesized.stack.get_logical_id(construct.node.default_child)]


def _shape(properties: dict[str, Any]) -> dict[str, Any]:
    """The parts of a table definition that the runtime's CreateTable call and CloudFormation share."""
    return {
        "AttributeDefinitions": sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "KeySchema": properties["KeySchema"],
        "GlobalSecondaryIndexes": sorted(
            properties.get("GlobalSecondaryIndexes", []), key=lambda index: index["IndexName"]
        ),
        "BillingMode": properties["BillingMode"],
    }


def test_every_table_has_ttl_pitr_and_encryption(synthesized: Synthesized) -> None:
    tables = synthesized.resources("AWS::DynamoDB::Table")
    assert len(tables) == 2
    for table in tables.values():
        properties = table["Properties"]
        assert properties["TimeToLiveSpecification"]["Enabled"] is True
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert properties["SSESpecification"]["SSEEnabled"] is True
        assert properties["BillingMode"] == "PAY_PER_REQUEST"


def test_main_table_matches_the_storage_schema(synthesized: Synthesized) -> None:
    table = _table(synthesized, synthesized.stack.data.table)["Properties"]
    assert _shape(table) == _shape(main_table_definition("any"))
    assert table["TimeToLiveSpecification"]["AttributeName"] == TTL_ATTRIBUTE


def test_idempotency_table_matches_the_storage_schema(synthesized: Synthesized) -> None:
    table = _table(synthesized, synthesized.stack.data.idempotency_table)["Properties"]
    assert _shape(table) == _shape(idempotency_table_definition("any"))
    assert table["TimeToLiveSpecification"]["AttributeName"] == IDEMPOTENCY_TTL_ATTRIBUTE


def test_main_table_survives_stack_deletion(synthesized: Synthesized) -> None:
    # Job history must not disappear with `cdk destroy`.
    table = _table(synthesized, synthesized.stack.data.table)
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
