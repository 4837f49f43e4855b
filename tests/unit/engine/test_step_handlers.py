"""The rollout steps read the machine's state by hand (no pydantic model, engine/step_handlers.py): what
they pass on, and the clear error for a state that is not theirs (a Lambda error the machine's Catch turns
into Finalize)."""

from __future__ import annotations

import pytest
from fleetwave_service.engine import step_handlers
from fleetwave_service.engine.step_handlers import StepInputError


class _Context:
    function_name = "fleetwave-rollout-test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fleetwave-rollout-test"
    aws_request_id = "request"


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple] = []
    for name in ("prepare", "evaluate", "release_wave", "hold", "sweep", "finalize"):
        monkeypatch.setattr(
            step_handlers.steps,
            name,
            lambda *args, _n=name, **kwargs: (
                seen.append((_n, args[:-1] if _n != "finalize" else args[:2], kwargs)) or {}
            ),
        )
    monkeypatch.setattr(step_handlers, "get_ports", lambda: "ports")
    return seen


def test_steps_pass_on_the_machines_state(calls):
    step_handlers.prepare_handler({"jobId": "j1", "extra": 1}, _Context())
    step_handlers.evaluate_handler({"jobId": "j1"}, _Context())
    step_handlers.release_wave_handler(
        {"jobId": "j1", "wave": 2.0, "taskToken": "t", "timeoutSeconds": 30}, _Context()
    )
    step_handlers.hold_handler({"jobId": "j1", "wave": 3, "reason": "pause", "taskToken": "t"}, _Context())
    step_handlers.sweep_handler({"jobId": "j1", "wave": 1}, _Context())
    step_handlers.finalize_handler(
        {"jobId": "j1", "action": "ABORT", "failureCode": "FailureThresholdBreached", "failureReason": None,
         "error": {"Error": "X"}},
        _Context(),
    )  # fmt: skip
    assert calls == [
        ("prepare", ("j1",), {}),
        ("evaluate", ("j1",), {}),
        ("release_wave", ("j1", 2, "t", 30), {}),
        ("hold", ("j1", 3, "pause", "t"), {}),
        ("sweep", ("j1", 1), {}),
        ("finalize", ("j1", "ABORT"),
         {"failure_code": "FailureThresholdBreached", "failure_reason": None, "error": {"Error": "X"}}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("handler", "event", "message"),
    [
        ("prepare_handler", {}, "jobId"),
        ("prepare_handler", {"jobId": ""}, "jobId"),
        ("evaluate_handler", {"jobId": 7}, "jobId"),
        ("sweep_handler", {"jobId": "j", "wave": 0}, "wave"),
        ("sweep_handler", {"jobId": "j", "wave": True}, "wave"),
        ("sweep_handler", {"jobId": "j", "wave": 1.5}, "wave"),
        ("release_wave_handler", {"jobId": "j", "wave": 1, "taskToken": "t"}, "timeoutSeconds"),
        ("release_wave_handler", {"jobId": "j", "wave": 1, "timeoutSeconds": 5}, "taskToken"),
        ("hold_handler", {"jobId": "j", "wave": 2, "reason": "lunch", "taskToken": "t"}, "reason"),
        ("finalize_handler", {"jobId": "j"}, "action"),
        ("finalize_handler", {"jobId": "j", "action": "DONE", "failureCode": 3}, "failureCode"),
        ("finalize_handler", {"jobId": "j", "action": "DONE", "error": "boom"}, "error"),
    ],
)
def test_a_state_that_is_not_the_steps_is_refused_with_the_field_named(calls, handler, event, message):
    with pytest.raises(StepInputError, match=message):
        getattr(step_handlers, handler)(event, _Context())
    assert calls == []
