"""`make synth` end to end: the pinned CDK CLI synthesizes the app offline, with no AWS credentials."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.infra_template import REPO_ROOT

pytestmark = [pytest.mark.infra, pytest.mark.slow]

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.skipif(not CDK.exists(), reason="the pinned CDK CLI is not installed: run `npm ci` (make does)")
def test_cdk_cli_synthesizes_offline_without_credentials(tmp_path: Path) -> None:
    # Given no AWS credentials or config at all, and no instance metadata to fall back on
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CDK_"))
    } | {
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    assert shutil.which("node", path=environment.get("PATH")), "node must be on PATH"
    # When the pinned CLI runs the app the way `make synth` does
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "--output", str(tmp_path / "cdk.out")],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    # Then it succeeds (the CLI reads this aws-cdk-lib's assembly, cdk-nag finds nothing) ...
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # ... and writes the template a reviewer can read
    template = json.loads((tmp_path / "cdk.out" / "Fleetwave-prod.template.json").read_text())
    assert any(r["Type"] == "AWS::StepFunctions::StateMachine" for r in template["Resources"].values())
