"""The API's own OpenAPI document (Powertools' get_openapi_json_schema over both front doors' routes)."""

from __future__ import annotations

import json
from pathlib import Path

from fleetwave_service import handlers  # noqa: F401 - the composition root, as for a request
from fleetwave_service.api import openapi_document

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_what_the_api_produces():
    # Regenerate with: python -c "..." (docs/reliability.md, "OpenAPI document")
    assert json.loads(COMMITTED.read_text()) == openapi_document(), (
        "docs/openapi.json drifted from the routes: regenerate it (docs/reliability.md)"
    )


def test_the_openapi_document_has_every_route_of_both_front_doors():
    from infra.routes import ROUTES

    paths = openapi_document()["paths"]
    documented = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    routed = {(route.method, route.path.replace("{resourceArn+}", "{resourceArn}")) for route in ROUTES}
    assert documented == routed
