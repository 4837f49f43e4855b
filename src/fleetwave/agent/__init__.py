"""The robot agent (docs/robot-agent.md, docs/robot-protocol.md).

- `protocol`: `RobotAgent` (what a command means for a robot, the reports it sends, what it remembers
  across restarts), the `Launcher` port, `StepFailed`, `plan_steps`. Transport-agnostic.
- `process`: `ProcessLauncher`, the real thing: download beside the running version, scripts, switch,
  health window, last-known-good rollback, supervision, recovery after a restart.
- `supervisor`: one long-running process (own process group, adoptable, restarted, broken past a limit).
- `state`, `lock`, `outbox`: the state file, one agent per work directory, reports kept until acknowledged.
- `connection`: one robot's own MQTT connection (persistent session, last will, reconnect forever, fresh
  links); `backoff`, `presigned`: jittered backoff, presigned-URL expiry.
- `config`, `runner`, `logs`, `systemd`: what `fleetwave agent` runs with, its lifecycle, its log lines,
  its systemd unit.
- `simulated`: `SimulatedLauncher` and `Behavior` (ok, fail:<code>, silent, delay:<s>, fail-once:<code>,
  silent-once), `SimulatedFleet`.
- `mqtt_link`: `MqttLink`, one MQTT connection shared by many simulated agents on one asyncio loop.

Everything the agent imports runs on Python 3.10 with pydantic and paho-mqtt only
(tests/unit/agent/test_agent_python310.py).
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
