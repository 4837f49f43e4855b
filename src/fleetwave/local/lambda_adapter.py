"""Run the real Lambda handler code in process when moto invokes a function.

moto's docker-free Lambda backend (``moto.awslambda_simple.models.LambdaSimpleBackend``) answers every invoke
with a canned payload. The local runtime and the state-machine tests need the opposite: when moto's Step
Functions interpreter runs a ``lambda:invoke`` task, the function's real handler must run and its result (or
its exception) must flow back into the execution exactly as it would in AWS.

This module replaces ``LambdaSimpleBackend.invoke`` with a router:
- the function's ``Handler`` attribute (``"package.module.function"``) names the code to run;
- the return value is JSON-encoded as the invoke payload;
- an exception becomes an *unhandled function error*: header ``x-amz-function-error: Unhandled`` and a
  payload ``{"errorType": <exception class name>, "errorMessage": ..., "stackTrace": [...]}``. Step Functions
  uses ``errorType`` as the error name, so an ASL ``Catch`` on ``States.ALL`` (or on the class name) sees it.

Faults can be injected (``inject_fault``): the next N invokes of a function fail as the Lambda *service*
would fail them (``Lambda.TooManyRequestsException`` and the other ``Lambda.*`` errors: an error response
to the Invoke call, which Step Functions names ``Lambda.<code>``) or as the *function* would (an unhandled
error of any other type), before the handler runs or after it ran (its side effects done, its answer lost).
The state machine's Retry and Catch then run exactly as they would in AWS; tests and ``make chaos`` use it.

Only handlers under one of the routed prefixes (default ``fleetwave_service.``) are run; any other function
keeps moto's canned behaviour. This touches moto internals, which is why moto is pinned exactly in
pyproject.toml; ``check_compatible()`` fails loudly when an upgrade moves them (a test calls it).
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("fleetwave.local.lambda_adapter")

DEFAULT_ROUTED_PREFIXES: tuple[str, ...] = ("fleetwave_service.",)
# The moto version whose internals this adapter was written against (pyproject pins the same).
SUPPORTED_MOTO_VERSION = "5.2.5"

_lock = threading.Lock()
_state: dict[str, Any] = {
    "original": None,
    "prefixes": DEFAULT_ROUTED_PREFIXES,
    "invocations": [],
    "faults": [],
}
# Error responses of the Invoke API itself (the service's, not the function's), with their HTTP status.
# Step Functions reports them as ``Lambda.<code>``. SdkClientException and ClientExecutionTimeoutException
# are raised by the SDK inside Step Functions in AWS; here they come back as error responses, which the
# interpreter names the same way.
SERVICE_ERRORS: dict[str, int] = {
    "Lambda.TooManyRequestsException": 429,
    "Lambda.ServiceException": 500,
    "Lambda.AWSLambdaException": 502,
    "Lambda.SdkClientException": 500,
    "Lambda.ClientExecutionTimeoutException": 504,
}


class MotoIncompatibleError(RuntimeError):
    """The installed moto no longer looks like the one the adapter patches."""


@dataclass
class InvocationRecord:
    """One routed invoke, kept so tests and the local runtime's logs can show what ran."""

    function_name: str
    handler: str
    error_type: str | None = None
    # True when the handler ran (False: an injected fault answered before it).
    ran: bool = True
    injected: bool = False


@dataclass
class Fault:
    """Fail the next ``times`` invokes of ``function`` (its lambdas.py name or its name in moto)."""

    function: str
    error: str
    times: int = 1
    # "before": the invoke fails and the handler never runs; "after": the handler runs, its answer is lost.
    when: str = "before"
    message: str = "injected fault"

    def __post_init__(self) -> None:
        if self.when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        if self.times < 1:
            raise ValueError("times must be at least 1")

    def matches(self, function_name: str) -> bool:
        return function_name in (self.function, "fleetwave-rollout-" + self.function.replace("_", "-"))


class InjectedFunctionError(Exception):
    """An injected *function* error; the invoke answers with ``errorType`` = the fault's error name."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class LocalLambdaContext:
    """The subset of the Lambda context object handlers (and Powertools) read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        # Handlers use this to stop before a hard timeout; in process there is none.
        return 900_000


def check_compatible() -> None:
    """Raise MotoIncompatibleError unless moto still has the shapes this adapter relies on."""
    import moto

    try:
        from moto.awslambda import utils as lambda_utils
        from moto.awslambda_simple.models import LambdaSimpleBackend
    except ImportError as error:  # pragma: no cover - only on a moto layout change
        raise MotoIncompatibleError(
            f"moto {moto.__version__}: simple Lambda backend moved: {error}"
        ) from error
    problems = []
    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        problems.append(f"moto {moto.__version__} installed, adapter written for {SUPPORTED_MOTO_VERSION}")
    invoke = getattr(LambdaSimpleBackend, "invoke", None)
    if invoke is None:
        problems.append("LambdaSimpleBackend.invoke is gone")
    else:
        params = list(getattr(_state["original"] or invoke, "__code__", invoke.__code__).co_varnames[:6])
        expected = ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
        if params != expected:
            problems.append(f"LambdaSimpleBackend.invoke signature is {params}, expected {expected}")
    if not hasattr(LambdaSimpleBackend, "get_function"):
        problems.append("LambdaSimpleBackend.get_function is gone")
    if not hasattr(lambda_utils, "get_backend"):
        problems.append("moto.awslambda.utils.get_backend is gone (use_docker=False routing)")
    if problems:
        raise MotoIncompatibleError("; ".join(problems))


def inject_fault(
    function: str, error: str, *, times: int = 1, when: str = "before", message: str = "injected fault"
) -> Fault:
    """Make the next ``times`` invokes of ``function`` fail with ``error`` (see the module docstring)."""
    fault = Fault(function, error, times, when, message)
    with _lock:
        _state["faults"].append(fault)
    return fault


def clear_faults() -> None:
    with _lock:
        _state["faults"].clear()


def pending_faults() -> list[Fault]:
    with _lock:
        return [fault for fault in _state["faults"] if fault.times > 0]


def _take_fault(function_name: str, when: str) -> Fault | None:
    with _lock:
        for fault in _state["faults"]:
            if fault.times > 0 and fault.when == when and fault.matches(function_name):
                fault.times -= 1
                return fault
    return None


def _raise_fault(fault: Fault, record: InvocationRecord, function_name: str) -> None:
    record.injected, record.error_type = True, fault.error
    logger.info(
        "injected lambda fault",
        extra={"function": function_name, "error": fault.error, "when": fault.when},
    )
    if fault.error in SERVICE_ERRORS:
        from moto.awslambda.exceptions import LambdaClientError

        service_error = LambdaClientError(fault.error.removeprefix("Lambda."), fault.message)
        service_error.code = SERVICE_ERRORS[fault.error]
        raise service_error
    raise InjectedFunctionError(fault.error, fault.message)


def _resolve(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {handler!r} is not 'module.function'")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


def _routed(handler: str | None) -> bool:
    return bool(handler) and any(handler.startswith(prefix) for prefix in _state["prefixes"])


def _invoke(
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes | None:
    function = self.get_function(function_name, qualifier)
    handler_name = getattr(function, "handler", None)
    if not _routed(handler_name):
        return _state["original"](self, function_name, qualifier, body, headers, response_headers)

    if isinstance(body, bytes):
        body = body.decode("utf-8")
    event = json.loads(body) if body else {}
    context = LocalLambdaContext(
        function_name=function.function_name, invoked_function_arn=function.function_arn
    )
    record = InvocationRecord(function_name=function.function_name, handler=handler_name)
    _state["invocations"].append(record)
    invocation_type = (headers or {}).get("X-Amz-Invocation-Type", "RequestResponse")
    try:
        before = _take_fault(function.function_name, "before")
        if before is not None:
            record.ran = False
            _raise_fault(before, record, function.function_name)
        handler = _resolve(handler_name)
        result = handler(event, context)
        after = _take_fault(function.function_name, "after")
        if after is not None:
            _raise_fault(after, record, function.function_name)
    except Exception as error:  # the handler's failure is the function's failure, as in AWS
        if _is_service_error(error):
            raise  # moto answers the Invoke call with this error response
        record.error_type = (
            error.error_type if isinstance(error, InjectedFunctionError) else type(error).__name__
        )
        logger.info(
            "in-process lambda raised",
            extra={"function": function.function_name, "errorType": record.error_type},
        )
        if invocation_type == "Event":
            return b""
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {
                "errorType": record.error_type,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error),
            }
        ).encode("utf-8")
    return json.dumps(result).encode("utf-8")


def _is_service_error(error: Exception) -> bool:
    from moto.awslambda.exceptions import LambdaClientError

    return isinstance(error, LambdaClientError)


def install(prefixes: tuple[str, ...] = DEFAULT_ROUTED_PREFIXES) -> None:
    """Route invokes of functions whose Handler starts with one of ``prefixes`` to real code. Idempotent."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    with _lock:
        check_compatible()
        if _state["original"] is None:
            _state["original"] = LambdaSimpleBackend.invoke
            LambdaSimpleBackend.invoke = _invoke
        _state["prefixes"] = tuple(prefixes)


def uninstall() -> None:
    """Give moto its canned invoke back."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    with _lock:
        if _state["original"] is not None:
            LambdaSimpleBackend.invoke = _state["original"]
            _state["original"] = None
        _state["faults"].clear()
        _state["prefixes"] = DEFAULT_ROUTED_PREFIXES


def installed() -> bool:
    return _state["original"] is not None


def invocations() -> list[InvocationRecord]:
    """Routed invokes since the last ``clear_invocations()`` (oldest first)."""
    return list(_state["invocations"])


def clear_invocations() -> None:
    _state["invocations"].clear()


@contextmanager
def in_process_lambdas(prefixes: tuple[str, ...] = DEFAULT_ROUTED_PREFIXES) -> Iterator[None]:
    """``with in_process_lambdas(): ...`` installs the router for the block and restores moto after."""
    was_installed = installed()
    install(prefixes)
    try:
        yield
    finally:
        if not was_installed:
            uninstall()
