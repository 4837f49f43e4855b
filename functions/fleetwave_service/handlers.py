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
from fleetwave_service.engine import policy, status, step_handlers, steps
from fleetwave_service.engine.channels import get_channel
from fleetwave_service.engine.ports import get_ports
from fleetwave_service.fleet import events, provisioning, registry
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.greengrass import continuous
from fleetwave_service.greengrass.policy import GreengrassPolicy
from fleetwave_service.robomaker import jobs
from fleetwave_service.robomaker.policy import RoboMakerPolicy


def _clear_retained_command(robot: Row) -> None:
    """A later robot of the same name must not pick up a deleted robot's retained deployment command."""
    registry.best_effort(get_channel(get_settings()).clear_command, robot["name"])


def _stop_deployment_to_departed_robot(robot: Row, fleet: Row) -> None:
    """A robot deregistered from a fleet mid-rollout must not go on deploying the fleet's job."""

    def abort_robot_deployment(job_id: str, robot_name: str) -> None:
        steps.abort_robot(job_id, robot_name, "The robot was deregistered from the fleet.", get_ports())

    if fleet.get("activeJobId"):
        registry.best_effort(abort_robot_deployment, fleet["activeJobId"], robot["name"])


def _robot_of_derived_thing(thing: str) -> str | None:
    row = fleet_store.find_by_thing_name(thing)
    return str(row["name"]) if row is not None else None


status.resolve_derived_things_with(_robot_of_derived_thing)
policy.register(RoboMakerPolicy())
policy.register(GreengrassPolicy())
events.fleet_deleting.subscribe(jobs.cancel_for_fleet_deletion)
events.robot_deleted.subscribe(_clear_retained_command)
events.robot_joined.subscribe(continuous.on_robot_joined)
events.robot_left.subscribe(_stop_deployment_to_departed_robot)

api_handler = api.lambda_handler
prepare_handler = step_handlers.prepare_handler
evaluate_handler = step_handlers.evaluate_handler
release_wave_handler = step_handlers.release_wave_handler
hold_handler = step_handlers.hold_handler
sweep_handler = step_handlers.sweep_handler
finalize_handler = step_handlers.finalize_handler
status_handler = status.lambda_handler


def provisioning_hook_handler(event: dict, context: object) -> dict:
    """IoT Core's pre-provisioning hook (the stack's provisioning template): ``allowProvisioning``."""
    return provisioning.pre_provisioning_hook(event)
