"""The one DynamoDB client and the (de)serialisation between rows and DynamoDB attribute values.

The low-level client is used rather than a boto3 resource because clients are thread-safe and resources
are not: the local runtime and the tests call the handler from several threads at once. The client is
created lazily, on first use, so that moto (or ``AWS_ENDPOINT_URL``) is in place before it exists.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from fleetwave_service.core import ids
from fleetwave_service.core.settings import get_settings

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
_lock = threading.Lock()
_client: Any = None

Row = dict[str, Any]


def client() -> Any:
    global _client
    with _lock:
        if _client is None:
            _client = boto3.client(
                "dynamodb",
                region_name=get_settings().region,
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
        return _client


def table_name() -> str:
    return get_settings().table_name


def reset() -> None:
    """Forget the client (tests and the local runtime call this after they change the environment)."""
    global _client
    with _lock:
        _client = None


# --- values ---------------------------------------------------------------------------------------


def _to_dynamo(value: Any) -> Any:
    # DynamoDB numbers are Decimals; floats (timestamps) go through str so 0.1 stays 0.1.
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row (plain Python values) as DynamoDB attribute values; None values are left out."""
    return {k: _SERIALIZER.serialize(_to_dynamo(v)) for k, v in row.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> Row:
    return {k: _from_dynamo(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


def values(**named: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: values(now=1.5) -> {":now": {"N": "1.5"}}."""
    return {f":{k}": _SERIALIZER.serialize(_to_dynamo(v)) for k, v in named.items()}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def is_expired(row: Mapping[str, Any], at: float | None = None) -> bool:
    """TTL deletion lags by days, so a row past its ``expiresAt`` is treated as already gone."""
    expires = row.get("expiresAt")
    return expires is not None and expires < (ids.now() if at is None else at)


def is_condition_failure(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code == "ConditionalCheckFailedException"


def cancellation_codes(error: Exception) -> list[str]:
    """Per-item codes of a cancelled transaction, in item order ("None" where that item was fine)."""
    reasons = getattr(error, "response", {}).get("CancellationReasons") or []
    return [reason.get("Code", "None") for reason in reasons]


def is_transaction_cancelled(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code == "TransactionCanceledException"


# --- writes ---------------------------------------------------------------------------------------


def put_new(item: Mapping[str, Any]) -> bool:
    """Put ``item`` (with its keys) unless a row with that key exists; False when one does."""
    try:
        client().put_item(
            TableName=table_name(),
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(pk)",
        )
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


# --- reads ----------------------------------------------------------------------------------------


def get(pk: str, sk: str, *, consistent: bool = True) -> Row | None:
    response = client().get_item(TableName=table_name(), Key=key(pk, sk), ConsistentRead=consistent)
    item = response.get("Item")
    return deserialize(item) if item else None


def query_pages(**kwargs: Any) -> Iterator[tuple[list[Row], dict[str, Any] | None]]:
    """Query page by page: (rows, LastEvaluatedKey) for each page DynamoDB returns."""
    kwargs.setdefault("TableName", table_name())
    while True:
        response = client().query(**kwargs)
        last = response.get("LastEvaluatedKey")
        yield [deserialize(item) for item in response.get("Items", [])], last
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last


def query_all(**kwargs: Any) -> list[Row]:
    rows: list[Row] = []
    for page, _ in query_pages(**kwargs):
        rows.extend(page)
    return rows


def query_page(
    limit: int, start_key: dict[str, Any] | None, **kwargs: Any
) -> tuple[list[Row], dict[str, Any] | None]:
    """Up to ``limit`` rows from ``start_key`` on, and the key to continue from (None when done).

    A FilterExpression can leave a DynamoDB page short, so this keeps reading until it has ``limit`` rows
    or the query is exhausted; each read asks only for what is still missing, so the returned key always
    follows the last row returned.
    """
    kwargs.setdefault("TableName", table_name())
    rows: list[Row] = []
    last = start_key
    while True:
        request = dict(kwargs, Limit=limit - len(rows))
        if last:
            request["ExclusiveStartKey"] = last
        response = client().query(**request)
        rows.extend(deserialize(item) for item in response.get("Items", []))
        last = response.get("LastEvaluatedKey")
        if not last or len(rows) >= limit:
            return rows, last


def count(**kwargs: Any) -> int:
    """How many items a query matches (after its FilterExpression), across all pages."""
    kwargs.setdefault("TableName", table_name())
    kwargs["Select"] = "COUNT"
    total = 0
    while True:
        response = client().query(**kwargs)
        total += response.get("Count", 0)
        if not response.get("LastEvaluatedKey"):
            return total
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
