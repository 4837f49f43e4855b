"""CDK entry point: `cdk synth` / `cdk deploy` run `python -m infra.app` (see cdk.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import StageConfig
from infra.stack import FleetwaveStack

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """The context cdk.json gives the CLI; tests pass it too so they synthesize what gets deployed."""
    return dict(json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {}))


def build_app(
    context: dict[str, Any] | None = None, outdir: str | None = None, **stack_kwargs: Any
) -> tuple[cdk.App, FleetwaveStack]:
    app = cdk.App(context=context, outdir=outdir)
    config = StageConfig.from_context(app.node)
    stack = FleetwaveStack(
        app,
        f"Fleetwave-{config.stage}",
        config=config,
        description="Fleetwave: serverless deployment service for robot fleets",
        **stack_kwargs,
    )
    cdk.Tags.of(stack).add("application", "fleetwave")
    cdk.Tags.of(stack).add("stage", config.stage)
    # cdk-nag runs as a validation plugin: synth fails on any finding that is not acknowledged.
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
    )
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
