"""Make moto's DynamoDB apply each operation atomically, as DynamoDB itself does.

moto checks a condition and applies the write in separate steps, and undoes a failed transaction by
restoring a copy of the whole table. Requests on different threads (the local API Gateway serves each
request on its own thread, and the state machine's Lambda steps run beside them) can therefore both pass
the same condition, or lose each other's writes: two racing CreateDeploymentJob calls could both take a
fleet's job lock. Real DynamoDB never does either, and Fleetwave's one-job-per-fleet rule and idempotency
rely on it (docs/decisions.md).

The guard wraps the operations of moto's ``DynamoDBBackend`` class in one process-wide re-entrant lock.
It is reference-counted: the embedded AWS endpoint (``fleetwave serve``) and in-process tests may both
install it, in any order, and the original methods come back when the last one uninstalls.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Every backend operation that reads or writes items (what a condition can race with).
METHODS = (
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

_operations_lock = threading.RLock()
_install_lock = threading.Lock()
_installed = 0
_originals: dict[str, Any] = {}


def _serialized(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _operations_lock:
            return method(*args, **kwargs)

    wrapper.__fleetwave_serialized__ = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Serialise moto's DynamoDB operations (until the matching ``uninstall``)."""
    global _installed
    from moto.dynamodb.models import DynamoDBBackend

    with _install_lock:
        if _installed == 0:
            for name in METHODS:
                # A missing method means moto changed under the pin: fail loudly, never run unguarded.
                original = getattr(DynamoDBBackend, name)
                _originals[name] = original
                setattr(DynamoDBBackend, name, _serialized(original))
        _installed += 1


def uninstall() -> None:
    """Undo one ``install``; the last one puts moto's own methods back."""
    global _installed
    from moto.dynamodb.models import DynamoDBBackend

    with _install_lock:
        if _installed == 0:
            return
        _installed -= 1
        if _installed == 0:
            for name, original in _originals.items():
                setattr(DynamoDBBackend, name, original)
            _originals.clear()


def is_installed() -> bool:
    return _installed > 0


@contextmanager
def serialized_dynamodb() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        uninstall()
