"""The status function reads robots' messages without pydantic (engine/inbound.py) exactly as the models
read them (engine/messages.py): the same fields and defaults; for any message the same values, or the
model's refusal with the model's errors; and the agent's own messages never need the model."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from fleetwave_service.engine import inbound
from fleetwave_service.engine import messages as models
from fleetwave_service.engine.protocol import (
    ApplicationState,
    LifecycleState,
    ProgressStep,
    RobotReportStatus,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import PydanticUndefined

READ = [inbound.StatusReport, inbound.HealthReport, inbound.PresenceReport, inbound.ComponentStatesReport]
NESTED = [inbound.ComponentResult, inbound.ComponentState]
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "messages"


def _model(cls: type) -> Any:
    return getattr(models, cls.__name__)


@pytest.mark.parametrize("cls", READ + NESTED, ids=lambda cls: cls.__name__)
def test_each_message_has_its_models_fields_in_order_with_its_defaults(cls):
    model_fields = _model(cls).model_fields
    ours = dataclasses.fields(cls)
    assert [f.name for f in ours] == list(model_fields)
    for f in ours:
        theirs = model_fields[f.name]
        if theirs.is_required():
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, f.name
        elif theirs.default_factory is not None:
            assert f.default_factory is not dataclasses.MISSING, f.name
            assert f.default_factory() == theirs.default_factory()
        else:
            assert theirs.default is not PydanticUndefined and f.default == theirs.default, f.name


def _sample_class(path: Path) -> type | None:
    body = json.loads(path.read_text())
    if path.stem.startswith("status_report"):
        return inbound.StatusReport
    return {
        "health": inbound.HealthReport,
        "presence": inbound.PresenceReport,
        "components": inbound.ComponentStatesReport,
    }.get(body.get("kind") if path.stem != "status_rule_record" else None)


SAMPLE_FILES = [path for path in sorted(SAMPLES.glob("*.json")) if _sample_class(path) is not None]


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda path: path.stem)
def test_the_samples_read_without_the_model_as_the_model_reads_them(path):
    body = json.loads(path.read_text())
    cls = _sample_class(path)
    fast = inbound._read(cls, body)  # raises when it would need the model
    assert inbound.dump(fast) == _model(cls).model_validate(body).model_dump(mode="json", exclude_none=True)


def test_the_agents_own_messages_read_without_the_model():
    # As the agent builds and sends them (pydantic, model_dump_json), including values the samples lack.
    sent = [
        models.StatusReport(
            jobId="j",
            attempt=3,
            seq=7,
            step=ProgressStep.LAUNCHING,
            status=RobotReportStatus.FAILED,
            percentDone=100,
            estimatedTimeRemainingSeconds=0,
            failureCode="DownloadConditionFailed",
            failureReason="x" * 1024,
            components={"com.example.A": models.ComponentResult(status="ROLLED_BACK", version="1.0.0")},
            sentAt=1.5,
        ),
        models.HealthReport(state=ApplicationState.BROKEN, jobId="j", attempt=1, exitCode=-9, sentAt=2),
        models.PresenceReport(connected=False),
        models.ComponentStatesReport(
            components={
                "com.example.A": models.ComponentState(
                    componentVersion="1.0.0",
                    lifecycleState=LifecycleState.ERRORED,
                    lifecycleStatusCodes=["NONZERO_EXIT"],
                    isRoot=False,
                    lastStatusChangeTimestamp=3,
                )
            },
            sentAt=3,
        ),
    ]
    for message in sent:
        body = json.loads(message.model_dump_json(exclude_none=True))
        read = inbound._read(getattr(inbound, type(message).__name__), body)
        assert inbound.dump(read) == message.model_dump(mode="json", exclude_none=True)


# --- any message: generated from each model's fields, well typed or not ---------------------------------
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "1", "1.0", " 2 ", "-1", "true", "no", "nan", "inf", "1e3", "0x10", "Running"]),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _texts(max_size: int = 20) -> st.SearchStrategy[str]:
    return st.text(max_size=max_size)


def _bounded_texts(limit: int) -> st.SearchStrategy[str]:
    """Texts of a field with a maximum length: short ones, and ones at and just over the limit."""
    return _texts() | st.sampled_from(["é" * limit, "x" * (limit + 1)])


def _near(*bounds: int, whole: bool = True) -> st.SearchStrategy[Any]:
    """Numbers at and either side of a field's bounds, and any others: ints for an int field, ints and
    floats for a float field (a float for an int field is one of the perturbations, ODD)."""
    if whole:
        return st.sampled_from([edge + delta for edge in bounds for delta in (-1, 0, 1)]) | st.integers()
    edges = [edge + delta for edge in bounds for delta in (-1, -0.5, 0, 0.5, 1)]
    return st.sampled_from(edges + [int(edge) for edge in edges]) | st.integers() | st.floats()


COMPONENT_RESULT = st.fixed_dictionaries(
    {"status": st.sampled_from(["SUCCEEDED", "FAILED", "ROLLED_BACK", "SKIPPED"])},
    optional={"version": _texts(), "reason": _texts()},
)
COMPONENT_STATE = st.fixed_dictionaries(
    {
        "componentVersion": _texts(),
        "lifecycleState": st.sampled_from([state.value for state in LifecycleState]),
        "lastStatusChangeTimestamp": st.floats(allow_nan=False) | st.integers(),
    },
    optional={
        "lifecycleStateDetails": _bounded_texts(1024),
        "lifecycleStatusCodes": st.lists(_texts(), max_size=3),
        "isRoot": st.booleans(),
        "lastInstallationSource": _texts() | st.none(),
    },
)
WELL_TYPED: dict[type, st.SearchStrategy[dict[str, Any]]] = {
    inbound.StatusReport: st.fixed_dictionaries(
        {
            "jobId": _texts(),
            "attempt": _near(1),
            "seq": _near(0),
            "step": st.sampled_from([step.value for step in ProgressStep]),
            "status": st.sampled_from([status.value for status in RobotReportStatus]),
            "sentAt": st.floats(allow_nan=False) | st.integers(),
        },
        optional={
            "schemaVersion": st.sampled_from(["1", "2"]),
            "percentDone": _near(0, 100, whole=False),
            "estimatedTimeRemainingSeconds": _near(0) | st.none(),
            "failureCode": _texts() | st.none(),
            "failureReason": _bounded_texts(1024) | st.none(),
            "components": st.dictionaries(_texts(), COMPONENT_RESULT, max_size=3) | st.none(),
            "robotName": _texts(),  # the IoT rule's: not the report's, ignored
        },
    ),
    inbound.HealthReport: st.fixed_dictionaries(
        {
            "kind": st.just("health"),
            "state": st.sampled_from([state.value for state in ApplicationState]),
            "sentAt": st.floats(allow_nan=False) | st.integers(),
        },
        optional={
            "jobId": _texts() | st.none(),
            "attempt": _near(1) | st.none(),
            "application": _texts() | st.none(),
            "applicationVersion": _texts() | st.none(),
            "restartCount": _near(0),
            "exitCode": _near(0) | st.none(),
            "reason": _bounded_texts(1024) | st.none(),
        },
    ),
    inbound.PresenceReport: st.fixed_dictionaries(
        {"kind": st.just("presence"), "connected": st.booleans()},
        optional={"agentVersion": _texts() | st.none(), "sentAt": st.floats() | st.integers() | st.none()},
    ),
    inbound.ComponentStatesReport: st.fixed_dictionaries(
        {
            "kind": st.just("components"),
            "components": st.dictionaries(_texts(), COMPONENT_STATE, max_size=3),
            "sentAt": st.floats(allow_nan=False) | st.integers(),
        }
    ),
}


@st.composite
def _bodies(draw: st.DrawFn, cls: type) -> dict[str, Any]:
    """A well-typed body of ``cls``, then, often, a field dropped or given a value of another type, here or
    inside a component."""
    body = draw(WELL_TYPED[cls])
    for _ in range(draw(st.integers(0, 2))):
        if not body:
            break
        key = draw(st.sampled_from(sorted(body)))
        target = body
        value = body[key]
        if isinstance(value, dict) and value and draw(st.booleans()):
            inner = value[draw(st.sampled_from(sorted(value)))]
            if isinstance(inner, dict) and inner:
                target, key = inner, draw(st.sampled_from(sorted(inner)))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(ODD)
    return body


def _comparable(value: Any) -> Any:
    """Values as ``==`` can compare them: NaN is equal to itself here, and enum members are their values."""
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool | int | float):
        return type(value).__name__, value  # 1 == 1.0 == True: the type must match too
    return value


@pytest.mark.parametrize("cls", READ, ids=lambda cls: cls.__name__)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_message_reads_as_its_model_reads_it_or_is_refused_with_its_errors(cls, data):
    body = data.draw(_bodies(cls))
    try:
        expected = _model(cls).model_validate(body)
    except ValidationError as error:
        with pytest.raises(inbound.UnreadableMessage) as refused:
            inbound.read(cls, body)
        assert refused.value.errors == error.errors(include_url=False)
        return
    read = inbound.read(cls, body)
    assert type(read) is cls
    ours = dataclasses.asdict(read)
    assert _comparable(ours) == _comparable(expected.model_dump())


@pytest.mark.parametrize("cls", READ, ids=lambda cls: cls.__name__)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_well_typed_message_the_model_accepts_never_needs_the_model(cls, data):
    body = data.draw(WELL_TYPED[cls])
    try:
        _model(cls).model_validate(body)
    except ValidationError:
        return
    inbound._read(cls, body)  # raises when it would need the model


def test_a_value_the_agent_would_not_send_is_read_by_the_model_which_coerces_it():
    # A number in a string: pydantic's lax mode reads it; so does the status function, through the model.
    report = inbound.read(
        inbound.StatusReport,
        {"jobId": "j", "attempt": "2", "seq": 1.0, "step": "Launching", "status": "Deploying", "sentAt": "5"},
    )
    assert (report.attempt, report.seq, report.sentAt, report.step) == (2, 1, 5.0, ProgressStep.LAUNCHING)


_COLD_STATUS = """
import json, sys
import fleetwave_service.handlers as handlers
handlers.status_handler
from fleetwave_service.engine import inbound
for path in sys.argv[1:]:
    body = json.load(open(path))
    cls = inbound.StatusReport if "status_report" in path else {
        "health": inbound.HealthReport, "presence": inbound.PresenceReport,
        "components": inbound.ComponentStatesReport}[body["kind"]]
    inbound.read(cls, body)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core")))
"""


def test_the_status_functions_cold_start_and_the_agents_messages_load_no_pydantic():
    command = [sys.executable, "-c", _COLD_STATUS, *map(str, SAMPLE_FILES)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
