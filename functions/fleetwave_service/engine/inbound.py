"""What robots tell the service, as the status function reads it: without pydantic on a well-formed message.

The robot protocol's messages are pydantic models shared with the agent (engine/messages.py), and loading
pydantic and building a model cost the status function about half of ``import boto3`` at every cold start,
which is when a rollout's reports arrive fastest (docs/performance.md, cold import). So the messages the
status path keeps (a deployment's `StatusReport`, and the `HealthReport`, `PresenceReport` and
`ComponentStatesReport` robots send beside it) are read here, into frozen dataclasses with the models'
field names, when every field present has exactly the JSON type its model declares and meets its
constraints: what the agent sends. Anything else (a number in a string, a missing field, a value out of
range) goes to the model, whose verdict stands: it reads what pydantic coerces, and what it refuses raises
`UnreadableMessage` with pydantic's errors. So the service reads exactly what it read with the models alone,
and loads pydantic only for a message the agent would not send.

tests/unit/engine/test_inbound.py holds each dataclass to its model: the same fields and defaults, and for
any message (the samples, the agent's own, generated ones) the same reading or the model's refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any, TypeVar

from fleetwave_service.engine.protocol import (
    SCHEMA_VERSION,
    ApplicationState,
    LifecycleState,
    ProgressStep,
    RobotReportStatus,
)

Reader = Callable[[Any], Any]


class _NotAsDeclared(Exception):
    """A value that is not exactly of its field's JSON type, or breaks its constraint: the model decides."""


class UnreadableMessage(ValueError):
    """The model refused the message: ``errors`` as pydantic lists them (without documentation links)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


# --- readers: a field's JSON type and constraints, checked; anything else raises _NotAsDeclared ----------
def _text(*, min_length: int = 0, max_length: int | None = None) -> Reader:
    def read(value: Any) -> str:
        if not isinstance(value, str) or len(value) < min_length:
            raise _NotAsDeclared
        if max_length is not None and len(value) > max_length:
            raise _NotAsDeclared
        return value

    return read


def _whole(*, ge: int | None = None) -> Reader:
    def read(value: Any) -> int:
        if type(value) is not int or (ge is not None and value < ge):
            raise _NotAsDeclared
        return value

    return read


def _number(*, ge: float | None = None, le: float | None = None) -> Reader:
    def read(value: Any) -> float:
        if type(value) not in (int, float):
            raise _NotAsDeclared
        try:
            number = float(value)
        except OverflowError:
            raise _NotAsDeclared from None
        # Compared as pydantic compares: NaN meets no bound, so it is refused where a bound is declared.
        if (ge is not None and not number >= ge) or (le is not None and not number <= le):
            raise _NotAsDeclared
        return number

    return read


def _flag(value: Any) -> bool:
    if type(value) is not bool:
        raise _NotAsDeclared
    return value


def _one_of(choices: Callable[[str], Any]) -> Reader:
    """A string that ``choices`` accepts (an enum, or a Literal's strings): the value it returns."""

    def read(value: Any) -> Any:
        if not isinstance(value, str):
            raise _NotAsDeclared
        try:
            return choices(value)
        except ValueError:
            raise _NotAsDeclared from None

    return read


def _literal(*allowed: str) -> Reader:
    def choose(value: str) -> str:
        if value not in allowed:
            raise ValueError(value)
        return value

    return _one_of(choose)


def _optional(read: Reader) -> Reader:
    return lambda value: None if value is None else read(value)


def _texts(value: Any) -> list[str]:
    if type(value) is not list or not all(isinstance(item, str) for item in value):
        raise _NotAsDeclared
    return list(value)


def _mapping_of(read: Reader) -> Reader:
    def read_mapping(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise _NotAsDeclared
        return {key: read(item) for key, item in value.items()}

    return read_mapping


def _nested(cls: type[Any]) -> Reader:
    return lambda value: _read(cls, value)


def _spec(reader: Reader, **kwargs: Any) -> Any:
    """A dataclass field read by ``reader`` (its default, if any, as ``dataclasses.field`` takes it)."""
    return field(metadata={"read": reader}, **kwargs)


def _schema() -> Any:
    return _spec(_literal(SCHEMA_VERSION), default=SCHEMA_VERSION)


# --- the messages: field for field their models in engine/messages.py -----------------------------------
@dataclass(frozen=True, kw_only=True)
class ComponentResult:
    status: str = _spec(_literal("SUCCEEDED", "FAILED", "ROLLED_BACK", "SKIPPED"))
    version: str | None = _spec(_optional(_text()), default=None)
    reason: str | None = _spec(_optional(_text()), default=None)


@dataclass(frozen=True, kw_only=True)
class StatusReport:
    schemaVersion: str = _schema()
    jobId: str = _spec(_text())
    attempt: int = _spec(_whole(ge=1))
    seq: int = _spec(_whole(ge=0))
    step: ProgressStep = _spec(_one_of(ProgressStep))
    status: RobotReportStatus = _spec(_one_of(RobotReportStatus))
    percentDone: float = _spec(_number(ge=0, le=100), default=0.0)
    estimatedTimeRemainingSeconds: int | None = _spec(_optional(_whole(ge=0)), default=None)
    failureCode: str | None = _spec(_optional(_text()), default=None)
    failureReason: str | None = _spec(_optional(_text(max_length=1024)), default=None)
    components: dict[str, ComponentResult] | None = _spec(
        _optional(_mapping_of(_nested(ComponentResult))), default=None
    )
    sentAt: float = _spec(_number())


@dataclass(frozen=True, kw_only=True)
class HealthReport:
    schemaVersion: str = _schema()
    kind: str = _spec(_literal("health"), default="health")
    state: ApplicationState = _spec(_one_of(ApplicationState))
    jobId: str | None = _spec(_optional(_text()), default=None)
    attempt: int | None = _spec(_optional(_whole(ge=1)), default=None)
    application: str | None = _spec(_optional(_text()), default=None)
    applicationVersion: str | None = _spec(_optional(_text()), default=None)
    restartCount: int = _spec(_whole(ge=0), default=0)
    exitCode: int | None = _spec(_optional(_whole()), default=None)
    reason: str | None = _spec(_optional(_text(max_length=1024)), default=None)
    sentAt: float = _spec(_number())


@dataclass(frozen=True, kw_only=True)
class ComponentState:
    componentVersion: str = _spec(_text())
    lifecycleState: LifecycleState = _spec(_one_of(LifecycleState))
    lifecycleStateDetails: str | None = _spec(_optional(_text(max_length=1024)), default=None)
    lifecycleStatusCodes: list[str] = _spec(_texts, default_factory=list)
    isRoot: bool = _spec(_flag, default=True)
    lastStatusChangeTimestamp: float = _spec(_number())
    lastInstallationSource: str | None = _spec(_optional(_text()), default=None)


@dataclass(frozen=True, kw_only=True)
class ComponentStatesReport:
    schemaVersion: str = _schema()
    kind: str = _spec(_literal("components"), default="components")
    components: dict[str, ComponentState] = _spec(_mapping_of(_nested(ComponentState)))
    sentAt: float = _spec(_number())


@dataclass(frozen=True, kw_only=True)
class PresenceReport:
    schemaVersion: str = _schema()
    kind: str = _spec(_literal("presence"), default="presence")
    connected: bool = _spec(_flag)
    agentVersion: str | None = _spec(_optional(_text()), default=None)
    sentAt: float | None = _spec(_optional(_number()), default=None)


Message = TypeVar("Message", StatusReport, HealthReport, ComponentStatesReport, PresenceReport)

# Per dataclass: (name, reader, whether the message must carry it), in declaration order.
_FIELDS: dict[type[Any], tuple[tuple[str, Reader, bool], ...]] = {}


def _fields_of(cls: type[Any]) -> tuple[tuple[str, Reader, bool], ...]:
    spec = _FIELDS.get(cls)
    if spec is None:
        spec = tuple(
            (f.name, f.metadata["read"], f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls)
        )
        _FIELDS[cls] = spec
    return spec


def _read(cls: type[Any], body: Any) -> Any:
    if type(body) is not dict:
        raise _NotAsDeclared
    values: dict[str, Any] = {}
    for name, read, required in _fields_of(cls):
        if name in body:
            values[name] = read(body[name])
        elif required:
            raise _NotAsDeclared
    return cls(**values)


def read(cls: type[Message], body: Mapping[str, Any]) -> Message:
    """``body`` (a message's JSON, parsed) as ``cls``: read here when it is exactly as its model declares
    it, else read by its model (engine/messages.py), which coerces what pydantic coerces and refuses the
    rest with `UnreadableMessage`. Keys a model does not declare are ignored, as the models ignore them."""
    try:
        return _read(cls, body)
    except _NotAsDeclared:
        pass
    from pydantic import ValidationError  # only for a message the agent would not send

    import fleetwave_service.engine.messages as models

    model = getattr(models, cls.__name__)
    try:
        validated = model.model_validate(body)
    except ValidationError as error:
        raise UnreadableMessage(error.errors(include_url=False)) from None
    # What pydantic accepted it has made exactly as declared: read again, it reads here.
    return _read(cls, validated.model_dump())


def dump(message: Any) -> dict[str, Any]:
    """A (nested) message's fields as JSON values, those that are None left out: what the model's
    ``model_dump(mode="json", exclude_none=True)`` gives."""
    out: dict[str, Any] = {}
    for name, _, _ in _fields_of(type(message)):
        value = getattr(message, name)
        if value is None:
            continue
        if isinstance(value, dict):
            value = {key: dump(item) if is_dataclass(item) else item for key, item in value.items()}
        elif isinstance(value, list):
            value = list(value)
        elif isinstance(value, Enum):
            value = value.value
        out[name] = value
    return out
