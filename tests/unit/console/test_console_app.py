"""The console's server side without a browser: its files, its forwarding, and what it refuses."""

from __future__ import annotations

import json
from typing import Any

from fleetwave.console.app import ConsoleApp
from fleetwave.sdk import ApiResponse


class RecordingClient:
    """Stands in for the signing API client: records what the console forwards, answers a canned reply."""

    endpoint = "http://api.example"

    def __init__(self, answer: ApiResponse) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any, str, Any]] = []

    def request(self, path: str, body: Any, method: str = "POST", query: Any = None) -> ApiResponse:
        self.calls.append((path, body, method, query))
        return self.answer


CALL = {"Host": "127.0.0.1:8787", "X-Fleetwave-Console": "1"}


def _app(answer: ApiResponse | None = None) -> tuple[ConsoleApp, RecordingClient]:
    client = RecordingClient(answer or ApiResponse(200, {}, {"fleetDetails": []}))
    return ConsoleApp(lambda: client), client


def test_console_app_serves_its_page_and_files() -> None:
    app, _ = _app()
    page = app.handle("GET", "/console/", {"Host": "localhost:8787"}, b"")
    assert page.status == 200 and b"static/app.js" in page.body
    script = app.handle("GET", "/console/static/app.js", {"Host": "localhost:8787"}, b"")
    assert script.status == 200 and ("Content-Type", "text/javascript; charset=utf-8") in script.headers
    # Nothing outside its own folder
    assert app.handle("GET", "/console/static/..%2Fapp.py", {"Host": "localhost"}, b"").status == 404
    assert app.handle("GET", "/console/static/../app.py", {"Host": "localhost"}, b"").status == 404


def test_console_app_forwards_calls_and_hands_back_the_apis_error() -> None:
    # Given an API that refuses with its own error
    refusal = ApiResponse(400, {"x-amzn-ErrorType": "ConcurrentDeploymentException"}, {"message": "busy"})
    app, client = _app(refusal)
    # When the page asks for a sync
    answer = app.handle("POST", "/console/api/syncDeploymentJob", CALL, b'{"fleet": "arn:x"}')
    # Then the call went to the API as it was, and the answer is the API's: status, error name, message
    assert client.calls == [("/syncDeploymentJob", {"fleet": "arn:x"}, "POST", None)]
    assert answer.status == 400
    assert ("x-amzn-ErrorType", "ConcurrentDeploymentException") in answer.headers
    assert json.loads(answer.body) == {"message": "busy"}
    # And a GET keeps its query (repeated keys too)
    app.handle("GET", "/console/api/greengrass/v2/deployments?historyFilter=ALL&a=1&a=2", CALL, b"")
    assert client.calls[-1] == (
        "/greengrass/v2/deployments",
        None,
        "GET",
        {"historyFilter": ["ALL"], "a": ["1", "2"]},
    )


def test_console_app_refuses_calls_another_site_could_make() -> None:
    app, client = _app()
    # Without the console's header (a form or an image on another site)
    bare = app.handle("POST", "/console/api/listFleets", {"Host": "127.0.0.1:8787"}, b"{}")
    # From another origin
    other = app.handle("POST", "/console/api/listFleets", {**CALL, "Origin": "http://evil.example"}, b"{}")
    # Through a name that is not this machine's (DNS rebinding)
    rebound = app.handle("POST", "/console/api/listFleets", {**CALL, "Host": "evil.example:8787"}, b"{}")
    assert [bare.status, other.status, rebound.status] == [403, 403, 403]
    assert client.calls == []


def test_console_app_says_when_the_api_cannot_be_reached() -> None:
    class Unreachable(RecordingClient):
        def request(self, *args: Any, **kwargs: Any) -> ApiResponse:
            raise ConnectionRefusedError("Connection refused")

    app = ConsoleApp(lambda: Unreachable(ApiResponse(200, {}, {})))
    answer = app.handle("POST", "/console/api/listFleets", CALL, b"{}")
    assert answer.status == 502
    assert json.loads(answer.body)["message"].startswith(
        "cannot reach the Fleetwave API at http://api.example"
    )
