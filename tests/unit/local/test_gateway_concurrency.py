"""The local API Gateway runs one handler invocation at a time, like one warm Lambda instance.

Powertools' event resolvers keep the request being handled on the (module-level) app object, so two
invocations running at once in one process read each other's bodies: under `fleetwave serve`, a
CreateDeploymentJob sent while the simulator listed robots came back "clientRequestToken: is required".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fleetwave.local.gateway import ApiGateway
from fleetwave.sdk import FleetwaveClient


class SharedStateHandler:
    """A fake handler that, like a Powertools resolver, keeps the current event on a shared object."""

    def __init__(self) -> None:
        self.current_event: dict[str, Any] | None = None
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.current_event = event
        time.sleep(0.002)  # lets another request thread run, as real handler work does
        seen = self.current_event
        with self._lock:
            self.in_flight -= 1
        return {"statusCode": 200, "headers": {}, "body": json.dumps({"body": seen["body"]})}


@pytest.fixture
def handler() -> SharedStateHandler:
    return SharedStateHandler()


@pytest.fixture
def gateway(handler: SharedStateHandler) -> Iterator[ApiGateway]:
    server = ApiGateway(handler, {"testing": "testing"}, host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


def test_gateway_concurrent_requests_each_get_the_answer_to_their_own_body(gateway, handler):
    # Given four clients sending different bodies at the same time
    mixed: list[tuple[str, str]] = []

    def send(client_id: int) -> None:
        client = FleetwaveClient(gateway.url, credentials=("testing", "testing"))
        for i in range(15):
            sent = json.dumps({"client": client_id, "request": i})
            answer = client.call("createFleet", json.loads(sent))
            if answer["body"] != sent:
                mixed.append((sent, answer["body"]))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    # When they all run
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every answer is about the request that asked, because invocations never overlapped
    assert mixed == []
    assert handler.most_in_flight == 1
