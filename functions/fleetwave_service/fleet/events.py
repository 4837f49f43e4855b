"""What the fleet registry tells the rest of the service, which subscribes in one place
(fleetwave_service.handlers, the composition root).

fleet/ imports only core, yet three of its operations reach further:

- ``fleet_deleting(fleet)``: before DeleteFleet deregisters the fleet's robots. RoboMaker cancels the job
  that holds the fleet's lock; a listener that raises stops the delete.
- ``robot_deleted(robot)``: after DeleteRobot removed the row and the IoT thing. The engine clears the
  robot's retained command, so a later robot of the same name starts clean.
- ``robot_joined(robot, fleet)``: after RegisterRobot put the robot in the fleet. Greengrass sends it the
  fleet's thing-group deployment (continuous deployment).
- ``robot_left(robot, fleet)``: after DeregisterRobot took the robot out of the fleet. The engine stops
  the fleet's running deployment to that robot (its command becomes an abort).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Event:
    """Listeners called in subscription order; what a listener raises reaches the operation."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Callable[..., Any]] = []

    def subscribe(self, listener: Callable[..., Any]) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def __call__(self, *args: Any) -> None:
        for listener in list(self._listeners):
            listener(*args)


fleet_deleting = Event("fleet_deleting")
robot_deleted = Event("robot_deleted")
robot_joined = Event("robot_joined")
robot_left = Event("robot_left")
