"""The Lambda invocation the API function is serving: it sets the context per request; Greengrass's
idempotency reads it, so that an in-progress record expires with the invocation (a crashed request does not
block its client token for 8 hours). Here, not in that module, so that a request that needs no idempotency
does not load Powertools' idempotency utility to record it."""

from __future__ import annotations

import contextvars
from typing import Any

_lambda_context: contextvars.ContextVar[Any] = contextvars.ContextVar("lambda_context", default=None)


def use_lambda_context(context: Any) -> None:
    _lambda_context.set(context)


def lambda_context() -> Any:
    """The context of the invocation being served; None outside one."""
    return _lambda_context.get()
