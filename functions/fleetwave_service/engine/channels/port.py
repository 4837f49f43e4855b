"""The robot channel port: the only way the service talks to robots (docs/robot-protocol.md).

A command is published **retained, QoS 1** on ``fleetwave/robots/{robotName}/deployment``: the broker keeps
the latest one per robot, so a robot that is offline now receives it when it next subscribes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    # Only the commands' builders load the message models (pydantic): a step that publishes nothing, or
    # the API, never does (docs/performance.md, "Cold import per function").
    from fleetwave_service.engine.messages import AbortCommand, DeploymentCommand

    Command = DeploymentCommand | AbortCommand


class ChannelError(Exception):
    """A command could not be handed to the broker (after the adapter's own retries)."""

    def __init__(self, robot_name: str, reason: str) -> None:
        super().__init__(f"publish to robot {robot_name} failed: {reason}")
        self.robot_name = robot_name
        self.reason = reason


@dataclass(frozen=True)
class PublishFailure:
    robot_name: str
    reason: str


@runtime_checkable
class RobotChannel(Protocol):
    def publish_command(self, robot_name: str, command: Command) -> None:
        """Retain ``command`` as the robot's current command; raises ChannelError when it cannot."""
        ...

    def publish_commands(self, items: Iterable[tuple[str, Command]]) -> list[PublishFailure]:
        """Publish many commands; never raises for a single robot, returns the ones that failed."""
        ...

    def clear_command(self, robot_name: str) -> None:
        """Remove the robot's retained command (robot deleted), so a later robot of that name starts clean."""
        ...

    def publish_reply(self, robot_name: str, topic: str, payload: bytes) -> None:
        """An answer to one robot's request (QoS 1, not retained), e.g. fresh links; raises ChannelError."""
        ...


def encode_command(command: Command) -> bytes:
    """The wire payload: compact JSON, absent optionals omitted (the agent parses it with parse_command)."""
    return command.model_dump_json(exclude_none=True).encode()
