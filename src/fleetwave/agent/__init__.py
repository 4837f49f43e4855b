"""The robot agent (docs/robot-protocol.md).

- `protocol`: `RobotAgent` (what a command means for a robot, the reports it sends), the `Launcher` port,
  `StepFailed`, `plan_steps`. Transport-agnostic: fed payloads, publishes through a callable.
- `process`: `ProcessLauncher`, the real thing (download, etag check, extract, scripts, launch).
- `simulated`: `SimulatedLauncher` and `Behavior` (ok, fail:<code>, silent, delay:<s>, fail-once:<code>,
  silent-once), `SimulatedFleet`.
- `mqtt_link`: `MqttLink`, one MQTT connection shared by many agents on one asyncio loop.
"""

from fleetwave.agent.protocol import Launcher, RobotAgent, StepFailed, plan_steps
from fleetwave.agent.simulated import Behavior, SimulatedFleet, SimulatedLauncher

__all__ = [
    "Behavior",
    "Launcher",
    "RobotAgent",
    "SimulatedFleet",
    "SimulatedLauncher",
    "StepFailed",
    "plan_steps",
]
