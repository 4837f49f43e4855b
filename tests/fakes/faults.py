"""A rollout store that fails some of its writes the way DynamoDB does under load (fault injection).

Not a stand-in: every call goes to the real store (engine/store.py on moto); a planned fault raises
DynamoDB's throttling error instead, before the write ("the write did not happen") or after it ("it
happened, the answer was lost").

    store = FlakyStore(get_ports().store)
    store.plan("finish_robot", robots={"r01", "r03"}, times=1)
    use_ports(store=store)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


def throttled(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected throttle"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


@dataclass
class Fault:
    method: str
    robots: frozenset[str] | None
    times: int
    after: bool


class FlakyStore:
    def __init__(self, store: Any) -> None:
        self._store = store
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str | None]] = []

    def plan(
        self, method: str, *, robots: set[str] | None = None, times: int = 1, after: bool = False
    ) -> None:
        with self._lock:
            self._faults.append(Fault(method, frozenset(robots) if robots else None, times, after))

    def _take(self, method: str, robot: str | None, after: bool) -> bool:
        with self._lock:
            for fault in self._faults:
                matches = fault.robots is None or robot in fault.robots
                if fault.method == method and fault.after == after and fault.times > 0 and matches:
                    fault.times -= 1
                    self.injected.append((method, robot))
                    return True
        return False

    def pending(self) -> int:
        with self._lock:
            return sum(fault.times for fault in self._faults)

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if not callable(real) or name.startswith("_"):
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            robot = args[1] if len(args) > 1 and isinstance(args[1], str) else kwargs.get("robot_name")
            if self._take(name, robot, after=False):
                raise throttled(name)
            result = real(*args, **kwargs)
            if self._take(name, robot, after=True):
                raise throttled(name)
            return result

        return call
