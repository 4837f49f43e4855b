"""Make moto's in-process DynamoDB serialise its operations, as DynamoDB itself does.

moto checks a condition and applies the write in separate steps, and undoes a failed transaction by
restoring a copy of the whole table, so two threads can both pass the same condition or lose each other's
writes. Real DynamoDB never does either; tests that race requests need the real behaviour.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_METHODS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
    "batch_get_item",
    "batch_write_item",
)


@contextmanager
def serialized_dynamodb() -> Iterator[None]:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals: dict[str, Any] = {name: getattr(DynamoDBBackend, name) for name in _METHODS}

    def serialized(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return wrapper

    for name, method in originals.items():
        setattr(DynamoDBBackend, name, serialized(method))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(DynamoDBBackend, name, method)
