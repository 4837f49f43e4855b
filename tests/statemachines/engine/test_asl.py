"""statemachines/rollout.asl.json as a document: what moto runs unpatched, readable, parameterised alike."""

from __future__ import annotations

import json
import re

import pytest

from fleetwave.local.stepfunctions import (
    ASL_PATH,
    LOCAL_SUBSTITUTION_NAMES,
    asl_placeholders,
    render_definition,
)

ALLOWED_RESOURCES = {
    "arn:${Partition}:states:::lambda:invoke",
    "arn:${Partition}:states:::lambda:invoke.waitForTaskToken",
}
ALLOWED_TYPES = {"Task", "Choice", "Pass", "Wait", "Succeed", "Fail"}


@pytest.fixture(scope="module")
def asl():
    return json.loads(ASL_PATH.read_text())


def test_rollout_asl_placeholders_match_local_and_cdk_substitutions():
    assert asl_placeholders() == set(LOCAL_SUBSTITUTION_NAMES)
    rollout_infra = pytest.importorskip("infra.engine")
    assert asl_placeholders() == set(rollout_infra.SUBSTITUTION_KEYS)


def test_rollout_asl_uses_only_what_moto_runs_unpatched(asl):
    assert asl.get("QueryLanguage", "JSONPath") == "JSONPath"
    for name, state in asl["States"].items():
        assert state["Type"] in ALLOWED_TYPES, name
        assert state.get("QueryLanguage", "JSONPath") == "JSONPath", name
        if state["Type"] == "Task":
            assert state["Resource"] in ALLOWED_RESOURCES, name
            assert re.fullmatch(r"\$\{[A-Z][A-Za-z0-9]*\}", state["Parameters"]["FunctionName"]), name


def test_rollout_asl_reads_as_a_document(asl):
    text = ASL_PATH.read_text()
    assert asl["Comment"]
    assert not re.search(r"\d{12}", text), "no account ids in the ASL"
    assert "arn:aws:lambda" not in text
    for name, state in asl["States"].items():
        assert name[0].isupper() and name[1:] == name[1:].lower(), f"sentence case: {name!r}"
        if state["Type"] == "Choice":
            assert state.get("Comment"), f"Choice {name!r} needs a Comment"


def test_rollout_asl_every_task_ends_in_finalize_on_any_error(asl):
    for name, state in asl["States"].items():
        if state["Type"] != "Task" or name == "Finalize the job":
            continue
        catches = {error: catch["Next"] for catch in state["Catch"] for error in catch["ErrorEquals"]}
        assert catches.get("States.ALL") == "Record the internal error", name
    release = asl["States"]["Release the wave"]
    assert release["TimeoutSecondsPath"] == "$.timeoutSeconds"
    catches = {error: catch["Next"] for catch in release["Catch"] for error in catch["ErrorEquals"]}
    assert catches["States.Timeout"] == "Sweep the silent robots"
    assert catches["DeploymentCanceled"] == "Mark the job canceled"
    assert [c["ErrorEquals"] for c in release["Catch"]][-1] == ["States.ALL"], "States.ALL must come last"


def test_rollout_asl_render_refuses_missing_substitutions():
    with pytest.raises(ValueError, match="placeholders"):
        render_definition({"PrepareFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:p"})
