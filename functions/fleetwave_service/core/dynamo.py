"""The one DynamoDB access module: the client, the one encoding between rows and attribute values, and the
reads and writes every store (fleet, robomaker, greengrass, engine) is built from.

The encoding (pinned by tests/unit/core/test_dynamo.py):
- None attributes of a row are left out; a None *inside* a map or a list is stored as NULL (a Greengrass
  recipe keeps its nulls); a row's builder leaves out what it does not want stored.
- floats are stored through their repr (0.1 stays 0.1); a non-finite float is stored as 0.
- numbers come back as int when whole, else float; a string or number set comes back as a sorted list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from fleetwave_service.core import ids
from fleetwave_service.core.clients import LazyClient
from fleetwave_service.core.settings import get_settings

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
BATCH_WRITE_SIZE = 25
BATCH_GET_SIZE = 100

Row = dict[str, Any]
_NO_VALUE = object()  # a REMOVE names an attribute, no value
# A row's key: keys.Key (pk, sk) or the item form {"pk": ..., "sk": ...}.
KeyLike = tuple[str, str] | Mapping[str, str]

client = LazyClient("dynamodb", Config(retries={"mode": "standard", "max_attempts": 5}))
reset = client.reset


def table_name() -> str:
    return get_settings().table_name


# --- values ---------------------------------------------------------------------------------------


def to_dynamo(value: Any) -> Any:
    """Python values -> what the serializer accepts (DynamoDB numbers are Decimals)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else Decimal(0)
    if isinstance(value, Mapping):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """DynamoDB values -> plain JSON-able Python (Decimals become int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(from_dynamo(v) for v in value)
    return value


def attribute_value(value: Any) -> dict[str, Any]:
    return _SERIALIZER.serialize(to_dynamo(value))


def serialize(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row (plain Python values) as DynamoDB attribute values; None attributes are left out."""
    return {k: attribute_value(v) for k, v in row.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> Row:
    return {k: from_dynamo(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


def values(**named: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: values(now=1.5) -> {":now": {"N": "1.5"}}."""
    return {f":{k}": attribute_value(v) for k, v in named.items()}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def key_item(row_key: KeyLike) -> dict[str, str]:
    """A key as item attributes: {"pk": ..., "sk": ...}."""
    if isinstance(row_key, Mapping):
        return {"pk": row_key["pk"], "sk": row_key["sk"]}
    return {"pk": row_key[0], "sk": row_key[1]}


def _key(row_key: KeyLike) -> dict[str, Any]:
    item = key_item(row_key)
    return key(item["pk"], item["sk"])


def without_keys(row: Row) -> Row:
    """A row without its table and index keys (what the engine's steps work with)."""
    return {k: v for k, v in row.items() if k not in KEY_ATTRIBUTES}


def is_expired(row: Mapping[str, Any], at: float | None = None) -> bool:
    """TTL deletion lags by days, so a row past its ``expiresAt`` is treated as already gone."""
    expires = row.get("expiresAt")
    return expires is not None and expires < (ids.now() if at is None else at)


def _code(error: Exception) -> str | None:
    return getattr(error, "response", {}).get("Error", {}).get("Code")


def is_condition_failure(error: Exception) -> bool:
    return _code(error) == "ConditionalCheckFailedException"


def is_transaction_cancelled(error: Exception) -> bool:
    return _code(error) == "TransactionCanceledException"


def cancellation_codes(error: Exception) -> list[str]:
    """Per-item codes of a cancelled transaction, in item order ("None" where that item was fine)."""
    reasons = getattr(error, "response", {}).get("CancellationReasons") or []
    return [reason.get("Code", "None") for reason in reasons]


# --- writes ---------------------------------------------------------------------------------------


def _unless_condition_fails(call: Any, **request: Any) -> Any | None:
    """``call(**request)``'s response; None when the request's ConditionExpression did not hold."""
    try:
        return call(**request)
    except Exception as error:
        if is_condition_failure(error):
            return None
        raise


def put_new(item: Mapping[str, Any], table: str | None = None) -> bool:
    """Put ``item`` (with its keys) unless a row with that key exists; False when one does."""
    response = _unless_condition_fails(
        client().put_item,
        TableName=table or table_name(),
        Item=serialize(item),
        ConditionExpression="attribute_not_exists(pk)",
    )
    return response is not None


def update_params(
    row_key: KeyLike,
    *,
    sets: Mapping[str, Any] | None = None,
    adds: Mapping[str, Any] | None = None,
    removes: Iterable[str] = (),
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    table: str | None = None,
) -> dict[str, Any]:
    """UpdateItem (or transaction Update) parameters from plain values; attribute names always aliased.

    ``sets`` entries whose value is None are left out; ``values`` are the condition's ``:placeholders``.
    """
    attr_names: dict[str, str] = dict(names or {})
    attr_values: dict[str, Any] = {k: attribute_value(v) for k, v in (values or {}).items()}
    clauses = []
    for keyword, items, spelled in (
        ("SET", list((sets or {}).items()), "{name} = {value}"),
        ("ADD", list((adds or {}).items()), "{name} {value}"),
        ("REMOVE", [(name, _NO_VALUE) for name in removes], "{name}"),
    ):
        prefix, parts = keyword[0].lower(), []
        for index, (name, value) in enumerate(items):
            if value is None:
                continue  # SET of None: left out
            attr_names[f"#{prefix}{index}"] = name
            if value is not _NO_VALUE:
                attr_values[f":{prefix}{index}"] = attribute_value(value)
            parts.append(spelled.format(name=f"#{prefix}{index}", value=f":{prefix}{index}"))
        if parts:
            clauses.append(f"{keyword} " + ", ".join(parts))
    params: dict[str, Any] = {
        "TableName": table or table_name(),
        "Key": _key(row_key),
        "UpdateExpression": " ".join(clauses),
    }
    if attr_names:
        params["ExpressionAttributeNames"] = attr_names
    if attr_values:
        params["ExpressionAttributeValues"] = attr_values
    if condition:
        params["ConditionExpression"] = condition
    return params


def update_returning(row_key: KeyLike, **kwargs: Any) -> Row | None:
    """One conditional UpdateItem (``update_params``) returning the row as it is now; None when its
    condition does not hold (then nothing changed)."""
    response = _unless_condition_fails(
        client().update_item, **update_params(row_key, **kwargs), ReturnValues="ALL_NEW"
    )
    return None if response is None else deserialize(response.get("Attributes", {}))


def update(row_key: KeyLike, **kwargs: Any) -> bool:
    """One conditional UpdateItem (``update_params``); False when its condition does not hold. Nothing comes
    back but the answer (no attributes to send and parse)."""
    return _unless_condition_fails(client().update_item, **update_params(row_key, **kwargs)) is not None


def update_expression(
    row_key: KeyLike,
    expression: str,
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """An UpdateItem with a hand-written expression (document paths such as ``tags.#k0``); False when
    ``condition`` does not hold. ``values`` are keyed without the colon, like ``values()``."""
    request: dict[str, Any] = {
        "TableName": table_name(),
        "Key": _key(row_key),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": {f":{k}": attribute_value(v) for k, v in (values or {}).items()},
    }
    if not request["ExpressionAttributeValues"]:
        del request["ExpressionAttributeValues"]
    if condition:
        request["ConditionExpression"] = condition
    if names:
        request["ExpressionAttributeNames"] = dict(names)
    return _unless_condition_fails(client().update_item, **request) is not None


def delete(row_key: KeyLike, condition: str | None = None) -> bool:
    """Delete a row; False when ``condition`` does not hold (nothing deleted)."""
    request: dict[str, Any] = {"TableName": table_name(), "Key": _key(row_key)}
    if condition:
        request["ConditionExpression"] = condition
    return _unless_condition_fails(client().delete_item, **request) is not None


def transact_updates(updates: list[dict[str, Any]]) -> bool:
    """``update_params`` results, all or nothing; False when the first one's condition failed (the others
    carry none)."""
    try:
        client().transact_write_items(TransactItems=[{"Update": u} for u in updates])
    except Exception as error:
        if not is_transaction_cancelled(error):
            raise
        codes = cancellation_codes(error)
        if codes and codes[0] == "ConditionalCheckFailed":
            return False
        raise
    return True


def put_rows(rows: Iterable[tuple[KeyLike, Mapping[str, Any]]], table: str | None = None) -> int:
    """Batch-write whole rows, 25 per request, retrying what DynamoDB leaves unprocessed."""
    count = 0
    chunk: list[dict[str, Any]] = []
    for row_key, attributes in rows:
        chunk.append({"PutRequest": {"Item": serialize({**attributes, **key_item(row_key)})}})
        count += 1
        if len(chunk) == BATCH_WRITE_SIZE:
            _batch_write(chunk, table or table_name())
            chunk = []
    if chunk:
        _batch_write(chunk, table or table_name())
    return count


def _batch_write(requests: list[dict[str, Any]], table: str) -> None:
    pending: dict[str, Any] = {table: requests}
    attempt = 0
    while pending:
        response = client().batch_write_item(RequestItems=pending)
        pending = response.get("UnprocessedItems") or {}
        attempt += 1
        if pending and attempt > 8:
            raise RuntimeError(f"batch write left {len(pending[table])} items unprocessed")


# --- reads ----------------------------------------------------------------------------------------


def get(pk: str, sk: str, *, consistent: bool = True, table: str | None = None) -> Row | None:
    response = client().get_item(TableName=table or table_name(), Key=key(pk, sk), ConsistentRead=consistent)
    item = response.get("Item")
    return deserialize(item) if item else None


def batch_get(row_keys: list[KeyLike], table: str | None = None) -> list[Row]:
    """The rows that exist among ``row_keys`` (consistent reads, 100 keys per request)."""
    table = table or table_name()
    found: list[Row] = []
    for start in range(0, len(row_keys), BATCH_GET_SIZE):
        request: dict[str, Any] = {
            table: {
                "Keys": [_key(k) for k in row_keys[start : start + BATCH_GET_SIZE]],
                "ConsistentRead": True,
            }
        }
        while request:
            response = client().batch_get_item(RequestItems=request)
            found.extend(deserialize(item) for item in response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
    return found


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


def index_page(
    limit: int,
    start_key: dict[str, Any] | None,
    index: str,
    partition: str,
    filters: Mapping[str, Any],
    *,
    condition: str = "",
    condition_values: Mapping[str, Any] | None = None,
    newest_first: bool = False,
) -> tuple[list[Row], dict[str, Any] | None]:
    """A page of one partition of ``index`` (gsi1, gsi2) whose rows match ``attribute = value`` for each
    of ``filters``, after an optional extra ``condition`` (its ``:placeholders`` in ``condition_values``)."""
    names: dict[str, str] = {}
    params: dict[str, Any] = {"p": partition, **(condition_values or {})}
    clauses = [condition] if condition else []
    for number, (attribute, value) in enumerate(filters.items()):
        names[f"#f{number}"] = attribute
        params[f"f{number}"] = value
        clauses.append(f"#f{number} = :f{number}")
    request: dict[str, Any] = {"IndexName": index, "KeyConditionExpression": f"{index}pk = :p"}
    if clauses:
        request["FilterExpression"] = " AND ".join(clauses)
    if names:
        request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = values(**params)
    if newest_first:
        request["ScanIndexForward"] = False
    return query_page(limit, start_key, **request)


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
