"""In-memory fakes for the rollout engine's ports (logic/rollout_ports.py).

tokens = FakeTaskTokens()                 # records SendTaskSuccess/SendTaskFailure
tokens.failing = ConnectionError("down")  # the next calls raise (a transient Step Functions error)
events = FakeEvents()                     # records published events
use_ports(tokens=tokens, events=events)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TokenCall:
    token: str
    outcome: str  # "success" | "failure"
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None


@dataclass
class FakeTaskTokens:
    calls: list[TokenCall] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    failing: Exception | None = None

    def _send(self, call: TokenCall) -> bool:
        if self.failing is not None:
            raise self.failing
        if call.token in self.finished:
            return False  # as Step Functions: a finished token is rejected (TaskTimedOut/InvalidToken)
        self.finished.add(call.token)
        self.calls.append(call)
        return True

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        return self._send(TokenCall(token, "success", output=output))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send(TokenCall(token, "failure", error=error, cause=cause))


@dataclass
class FakeEvents:
    published: list[tuple[str, dict[str, Any], list[str]]] = field(default_factory=list)

    def publish(self, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
        self.published.append((detail_type, detail, resources))
