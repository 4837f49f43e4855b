"""Timeouts, limits, layers and partitions that fit AWS (issue 11), read from the synthesized template."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fleetwave_service.lambdas import LAMBDAS
from support.infra_template import REPO_ROOT, Synthesized

from infra import layers
from infra.stack import FUNCTION_SPECS, STATUS_MAX_RECEIVES, STATUS_VISIBILITY_FACTOR

pytestmark = pytest.mark.infra

API_GATEWAY_INTEGRATION_TIMEOUT = 29


def _functions(synthesized: Synthesized) -> dict[str, dict]:
    by_handler = {spec.handler: spec.name for spec in LAMBDAS}
    return {
        by_handler[f["Properties"]["Handler"]]: f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] in by_handler
    }


def test_the_api_function_ends_before_api_gateway_gives_up(synthesized: Synthesized) -> None:
    assert _functions(synthesized)["api"]["Timeout"] < API_GATEWAY_INTEGRATION_TIMEOUT


def test_every_function_has_its_timeout_memory_and_concurrency_written_down(synthesized: Synthesized) -> None:
    functions = _functions(synthesized)
    assert set(functions) == {spec.name for spec in LAMBDAS}
    for spec in LAMBDAS:
        properties = functions[spec.name]
        assert properties["Timeout"] == spec.timeout_seconds <= 900, spec.name
        assert properties["MemorySize"] == spec.memory_mb, spec.name
        assert properties.get("ReservedConcurrentExecutions") == spec.reserved_concurrency, spec.name
        # The reason names each of the three choices
        assert len(spec.why) > 80 and "concurrency" in spec.why, spec.name


def test_the_status_queue_fits_the_status_function(synthesized: Synthesized) -> None:
    timeout = FUNCTION_SPECS["status"].timeout_seconds
    queues = synthesized.resources("AWS::SQS::Queue")
    (queue,) = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    properties = queue["Properties"]
    # AWS: visibility timeout >= 6 x the function timeout for a Lambda event source
    assert properties["VisibilityTimeout"] >= 6 * timeout
    assert properties["VisibilityTimeout"] == STATUS_VISIBILITY_FACTOR * timeout
    # at least 5 receives before the dead-letter queue, and a retention that outlives every retry
    assert properties["RedrivePolicy"]["maxReceiveCount"] == STATUS_MAX_RECEIVES >= 5
    assert properties["MessageRetentionPeriod"] > STATUS_MAX_RECEIVES * properties["VisibilityTimeout"]
    dead_letter_id = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    dead_letters = queues[dead_letter_id]["Properties"]
    assert dead_letters["MessageRetentionPeriod"] > properties["MessageRetentionPeriod"]
    # and the event source reports partial batch failures, within the function's time budget
    (mapping,) = synthesized.resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] < timeout
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] >= 2


def test_dead_letters_and_a_backlog_raise_alarms(synthesized: Synthesized) -> None:
    alarms = synthesized.resources("AWS::CloudWatch::Alarm").values()
    metrics = {(a["Properties"].get("Namespace"), a["Properties"].get("MetricName")) for a in alarms}
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metrics
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage") in metrics
    assert all(a["Properties"]["AlarmActions"] for a in alarms)


def test_the_powertools_layer_is_resolved_from_its_public_ssm_parameter(synthesized: Synthesized) -> None:
    # A dynamic reference: CloudFormation reads the layer ARN in the deploying region and partition
    expected = (
        "{{resolve:ssm:/aws/service/powertools/python/arm64/python3.14/" + layers.POWERTOOLS_VERSION + "}}"
    )
    for name, properties in _functions(synthesized).items():
        assert expected in properties["Layers"], (name, properties["Layers"])


def test_the_powertools_layer_is_the_release_the_service_is_tested_with() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    (lower,) = re.findall(r'"aws-lambda-powertools\[[^\]]*\]>=([0-9.]+),', pyproject)
    assert lower == layers.POWERTOOLS_VERSION or layers.POWERTOOLS_VERSION.startswith(lower + ".")


def test_the_pyyaml_layer_is_pure_python_and_loads_yaml(synthesized: Synthesized) -> None:
    (layer,) = synthesized.resources("AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    for properties in _functions(synthesized).values():
        assert {"Ref": next(iter(synthesized.resources("AWS::Lambda::LayerVersion")))} in properties["Layers"]
    directory = layers.pyyaml_layer_directory()
    package = directory / "python" / "yaml"
    assert (package / "__init__.py").is_file()
    assert not [p for p in package.iterdir() if p.suffix not in (".py",)]
    # In a fresh interpreter that has only the layer: YAML loads (pure Python, no C extension)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import yaml; "
        "assert not yaml.__with_libyaml__; print(yaml.safe_load('RecipeFormatVersion: 2020-01-25')"
        "['RecipeFormatVersion'])"
    )
    answer = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", script, str(directory / "python")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.strip() == "2020-01-25"


def test_no_arn_is_written_for_one_partition(synthesized: Synthesized) -> None:
    text = json.dumps(synthesized.template)
    assert re.findall(r".{60}arn:aws:.{60}", text) == []
    for path in list((REPO_ROOT / "infra").glob("*.py")) + list(
        (REPO_ROOT / "functions" / "fleetwave_service").rglob("*.py")
    ):
        code = "\n".join(
            line for line in path.read_text().splitlines() if not line.strip().startswith(("#", "``", "-"))
        )
        assert not re.search(r"[\"']arn:aws:", code), path


def test_cfn_lint_finds_no_error_in_the_synthesized_template(
    synthesized: Synthesized, tmp_path: Path
) -> None:
    template = tmp_path / "fleetwave.template.json"
    template.write_text(json.dumps(synthesized.template))
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", "--", str(template)],
        capture_output=True,
        text=True,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)
