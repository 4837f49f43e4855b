"""An in-memory RobotChannel: what the broker would hold, without a broker.

Every command goes through the real wire encoding and parser, so a command the fake accepts is one a
robot could read. Use it wherever the rollout code publishes:

    channel = FakeRobotChannel()
    channel.on_publish(lambda robot, command: ...)    # e.g. feed a RobotAgent, or record an order
    channel.unreachable.add("robot-7")                # publishes to robot-7 now fail
    channel.retained["robot-1"]                       # the robot's current (retained) command
    channel.commands_for("robot-1")                   # everything sent to it, oldest first
    channel.replies                                   # answers to robots' requests (fresh links)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fleetwave_service.engine.channels.port import ChannelError, PublishFailure, encode_command
from fleetwave_service.engine.messages import AbortCommand, Command, DeploymentCommand, parse_command


class FakeRobotChannel:
    def __init__(self) -> None:
        self.published: list[tuple[str, Command]] = []
        self.retained: dict[str, Command] = {}
        self.unreachable: set[str] = set()
        self.replies: list[tuple[str, str, bytes]] = []  # (robot, topic, payload) of publish_reply
        self._listeners: list[Callable[[str, Command], None]] = []

    # --- the RobotChannel port -------------------------------------------------------------------
    def publish_command(self, robot_name: str, command: Command) -> None:
        if robot_name in self.unreachable:
            raise ChannelError(robot_name, "robot unreachable (fake)")
        on_the_wire = parse_command(encode_command(command))
        self.published.append((robot_name, on_the_wire))
        self.retained[robot_name] = on_the_wire
        for listener in list(self._listeners):
            listener(robot_name, on_the_wire)

    def publish_commands(self, items: Iterable[tuple[str, Command]]) -> list[PublishFailure]:
        failures: list[PublishFailure] = []
        for robot_name, command in items:
            try:
                self.publish_command(robot_name, command)
            except ChannelError as error:
                failures.append(PublishFailure(robot_name, error.reason))
        return failures

    def clear_command(self, robot_name: str) -> None:
        self.retained.pop(robot_name, None)

    def publish_reply(self, robot_name: str, topic: str, payload: bytes) -> None:
        if robot_name in self.unreachable:
            raise ChannelError(robot_name, "robot unreachable (fake)")
        self.replies.append((robot_name, topic, payload))

    # --- what tests look at ----------------------------------------------------------------------
    def on_publish(self, listener: Callable[[str, Command], None]) -> None:
        """Call ``listener(robot_name, command)`` after each successful publish, in the publishing thread."""
        self._listeners.append(listener)

    def commands_for(self, robot_name: str) -> list[Command]:
        return [command for name, command in self.published if name == robot_name]

    def deployments_for(self, robot_name: str) -> list[DeploymentCommand]:
        return [c for c in self.commands_for(robot_name) if isinstance(c, DeploymentCommand)]

    def aborts_for(self, robot_name: str) -> list[AbortCommand]:
        return [c for c in self.commands_for(robot_name) if isinstance(c, AbortCommand)]

    def robots_commanded(self) -> list[str]:
        """Robot names in first-publish order, each once."""
        return list(dict.fromkeys(name for name, _ in self.published))
