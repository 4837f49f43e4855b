"""The Lambda entry points (every handler in fleetwave_service.lambdas names one) and the composition root.

The engine imports no front door and fleet/ imports neither front door nor engine (docs/architecture.md);
this module is where they meet: each front door plugs its rollout policy into the engine, and the fleet
registry's events reach the front doors and the engine. Importing it is what every Lambda, the local
runtime and the tests do first.
"""

from __future__ import annotations

from fleetwave_service import api
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.settings import get_settings
from fleetwave_service.engine import policy, status, step_handlers
from fleetwave_service.engine.channels import get_channel
from fleetwave_service.fleet import events, registry
from fleetwave_service.greengrass import continuous
from fleetwave_service.greengrass.policy import GreengrassPolicy
from fleetwave_service.robomaker import jobs
from fleetwave_service.robomaker.policy import RoboMakerPolicy


def _clear_retained_command(robot: Row) -> None:
    """A later robot of the same name must not pick up a deleted robot's retained deployment command."""
    registry.best_effort(get_channel(get_settings()).clear_command, robot["name"])


policy.register(RoboMakerPolicy())
policy.register(GreengrassPolicy())
events.fleet_deleting.subscribe(jobs.cancel_for_fleet_deletion)
events.robot_deleted.subscribe(_clear_retained_command)
events.robot_joined.subscribe(continuous.on_robot_joined)

api_handler = api.lambda_handler
prepare_handler = step_handlers.prepare_handler
evaluate_handler = step_handlers.evaluate_handler
release_wave_handler = step_handlers.release_wave_handler
hold_handler = step_handlers.hold_handler
sweep_handler = step_handlers.sweep_handler
finalize_handler = step_handlers.finalize_handler
status_handler = status.lambda_handler
