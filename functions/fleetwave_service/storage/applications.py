"""Robot application rows: ``APP#<name>`` / ``VERSION#$LATEST`` and ``VERSION#<n, 10 digits>``.

gsi1 ``APPS`` lists the applications (their $LATEST rows); gsi2 ``APPVERSIONS`` lists every row of every
application, sorted by ``<name>#<sort key>`` so that an application's versions sit together, $LATEST first.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from fleetwave_service.core import dynamo
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.wire import LATEST

LIST_PARTITION = "APPS"
VERSIONS_PARTITION = "APPVERSIONS"
_VERSION_PREFIX = "VERSION#"
_NUMBERED_PREFIX = "VERSION#0"  # every zero-padded number starts with 0; "$LATEST" does not


def partition(name: str) -> str:
    return f"APP#{name}"


def sort_key(version: str) -> str:
    return _VERSION_PREFIX + (LATEST if version == LATEST else f"{int(version):010d}")


def _item(row: Row) -> Row:
    sk = sort_key(row["version"])
    item = dict(
        row, pk=partition(row["name"]), sk=sk, gsi2pk=VERSIONS_PARTITION, gsi2sk=f"{row['name']}#{sk}"
    )
    if row["version"] == LATEST:
        item.update(gsi1pk=LIST_PARTITION, gsi1sk=row["name"])
    return item


def create(row: Row) -> bool:
    """Store a new application ($LATEST row); False when one of that name exists."""
    return dynamo.put_new(_item(row))


def get_latest(name: str) -> Row | None:
    return dynamo.get(partition(name), sort_key(LATEST))


def get_version(name: str, version: str) -> Row | None:
    return dynamo.get(partition(name), sort_key(version))


def update_latest(name: str, expected_revision: str, changes: dict[str, Any]) -> bool:
    """Apply ``changes`` to $LATEST if its revision is still ``expected_revision``."""
    names = {f"#a{i}": attribute for i, attribute in enumerate(changes)}
    params = {f"v{i}": value for i, value in enumerate(changes.values())}
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.key(partition(name), sort_key(LATEST)),
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(changes))),
            ConditionExpression="revisionId = :expected",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=dynamo.values(expected=expected_revision, **params),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def create_version(version_row: Row, previous_number: int, expected_revision: str) -> bool:
    """Store version ``version_row`` and advance $LATEST's counter, both or neither.

    False when $LATEST changed since it was read (another version or an update got in first).
    """
    name = version_row["name"]
    try:
        dynamo.client().transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": dynamo.table_name(),
                        "Key": dynamo.key(partition(name), sort_key(LATEST)),
                        "UpdateExpression": "SET lastVersionNumber = :next",
                        "ConditionExpression": "lastVersionNumber = :previous AND revisionId = :revision",
                        "ExpressionAttributeValues": dynamo.values(
                            next=int(version_row["version"]),
                            previous=previous_number,
                            revision=expected_revision,
                        ),
                    }
                },
                {
                    "Put": {
                        "TableName": dynamo.table_name(),
                        "Item": dynamo.serialize(_item(version_row)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except ClientError as error:
        if dynamo.is_transaction_cancelled(error):
            return False
        raise
    return True


def count_versions(name: str) -> int:
    return dynamo.count(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :numbered)",
        ExpressionAttributeValues=dynamo.values(pk=partition(name), numbered=_NUMBERED_PREFIX),
    )


def delete_version(name: str, version: str) -> bool:
    try:
        dynamo.client().delete_item(
            TableName=dynamo.table_name(),
            Key=dynamo.key(partition(name), sort_key(version)),
            ConditionExpression="attribute_exists(pk)",
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def delete_application(name: str) -> None:
    """Delete $LATEST first (the application is gone from then on), then every version."""
    dynamo.client().delete_item(
        TableName=dynamo.table_name(), Key=dynamo.key(partition(name), sort_key(LATEST))
    )
    for row in dynamo.query_all(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :numbered)",
        ExpressionAttributeValues=dynamo.values(pk=partition(name), numbered=_NUMBERED_PREFIX),
        ProjectionExpression="pk, sk",
    ):
        dynamo.client().delete_item(TableName=dynamo.table_name(), Key=dynamo.key(row["pk"], row["sk"]))


def list_page(
    limit: int, start_key: dict[str, Any] | None, *, name: str | None = None, all_versions: bool = False
) -> tuple[list[Row], dict[str, Any] | None]:
    if all_versions:
        condition = "gsi2pk = :p" + (" AND begins_with(gsi2sk, :n)" if name is not None else "")
        params = {"p": VERSIONS_PARTITION, **({"n": f"{name}#"} if name is not None else {})}
        index = "gsi2"
    else:
        condition = "gsi1pk = :p" + (" AND gsi1sk = :n" if name is not None else "")
        params = {"p": LIST_PARTITION, **({"n": name} if name is not None else {})}
        index = "gsi1"
    return dynamo.query_page(
        limit,
        start_key,
        IndexName=index,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=dynamo.values(**params),
    )
