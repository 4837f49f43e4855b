"""Fuzzing `fleetwave serve` over signed HTTP (bounded; `make fuzz` runs 10,000+).

Every operation of both front doors is generated, from AWS's API descriptions and from the API's own OpenAPI
document (tests/support/fuzzing.py);
the property: no 5xx, no error type the operation's model does not list, no traceback in a response, and
the server still answers afterwards.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from botocore.credentials import Credentials
from support import fuzzing

REPO = Path(__file__).resolve().parents[3]
CASES = 1500


def _openapi(serve) -> dict:
    with urllib.request.urlopen(serve.api_url.rstrip("/") + "/openapi.json", timeout=30) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/json"
        return json.loads(answer.read())


def test_serve_publishes_the_committed_openapi_document_unsigned(serve):
    assert _openapi(serve) == json.loads((REPO / "docs" / "openapi.json").read_text())


def test_fuzzing_both_apis_finds_no_5xx_no_unmodeled_error_and_no_traceback(serve, api):
    openapi = _openapi(serve)
    models = [fuzzing.robomaker_model(), fuzzing.greengrass_model()]
    served = [op.name for model in models for op in fuzzing.served_operations(model, openapi)]
    # Every RoboMaker operation Fleetwave serves, and Greengrass's, are in the run
    assert len(served) >= 35
    arns = fuzzing.seed_resources(api.client, serve.aws_client("s3"))

    report = fuzzing.run(
        serve.api_url, Credentials("testing", "testing"), openapi, CASES, seed=11, known_arns=arns
    )

    print(report.figures())
    assert report.violations == [], report.figures()
    # every operation AWS describes, and every route of the API's own document, was exercised
    routes = {f"openapi:{m.upper()} {path}" for path, methods in openapi["paths"].items() for m in methods}
    assert set(report.operations) == set(served) | routes
    assert api.call("listFleets", {}).status == 200
