"""The Lambda entry points (every handler in fleetwave_service.lambdas names one) and the composition root.

The engine imports no front door and fleet/ imports neither front door nor engine (docs/architecture.md);
this module is where they meet: each front door plugs its rollout policy into the engine, and the fleet
registry's events reach the front doors and the engine. Importing it is what every Lambda, the local
runtime and the tests do first.

Importing it, then looking the function's handler up, is every function's cold start (make bench: cold
import / ``import boto3``), so a function loads only what its own handler needs:

- a handler is imported when the Lambda runtime looks its name up (``__getattr__`` below, ``_HANDLERS``):
  the API function loads the API (routes, request models, OpenAPI validation), a rollout step the engine's
  steps, the status function the status path, the provisioning hook the fleet's robot rows;
- a front door's rollout policy is imported when a job of that front door is first seen
  (``policy.register_lazily``): a step of a RoboMaker job never loads Greengrass's policy, nor the reverse;
- the fleet events' listeners import what they need when they are called (only API operations raise them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from fleetwave_service.engine import policy
from fleetwave_service.fleet import events
from fleetwave_service.greengrass.store import FRONT_DOOR as GREENGRASS

if TYPE_CHECKING:
    from fleetwave_service.core.dynamo import Row


def _robomaker_policy() -> policy.RolloutPolicy:
    from fleetwave_service.robomaker.policy import RoboMakerPolicy

    return RoboMakerPolicy()


def _greengrass_policy() -> policy.RolloutPolicy:
    from fleetwave_service.greengrass.policy import GreengrassPolicy

    return GreengrassPolicy()


def _clear_retained_command(robot: Row) -> None:
    """A later robot of the same name must not pick up a deleted robot's retained deployment command."""
    from fleetwave_service.core.settings import get_settings
    from fleetwave_service.engine.channels import get_channel
    from fleetwave_service.fleet import registry

    registry.best_effort(get_channel(get_settings()).clear_command, robot["name"])


def _cancel_for_fleet_deletion(fleet: Row) -> None:
    from fleetwave_service.robomaker import jobs

    jobs.cancel_for_fleet_deletion(fleet)


def _on_robot_joined(robot: Row, fleet: Row) -> None:
    from fleetwave_service.greengrass import continuous

    continuous.on_robot_joined(robot, fleet)


def _stop_deployment_to_departed_robot(robot: Row, fleet: Row) -> None:
    """A robot deregistered from a fleet mid-rollout must not go on deploying the fleet's job."""
    from fleetwave_service.engine import steps
    from fleetwave_service.engine.ports import get_ports
    from fleetwave_service.fleet import registry

    def abort_robot_deployment(job_id: str, robot_name: str) -> None:
        steps.abort_robot(job_id, robot_name, steps.DEPARTED_REASON, get_ports())

    if fleet.get("activeJobId"):
        registry.best_effort(abort_robot_deployment, fleet["activeJobId"], robot["name"])


def _robot_of_derived_thing(thing: str) -> str | None:
    from fleetwave_service.fleet import store as fleet_store

    row = fleet_store.find_by_thing_name(thing)
    return str(row["name"]) if row is not None else None


def _job_robots(job_id: str, robot_names: list[str]) -> tuple[Row | None, dict[str, Row]]:
    """A running job's rows for these robots, as released (what fleet/in_flight.py shows of the robots)."""
    from fleetwave_service.engine.ports import get_ports

    store = get_ports().store
    job = store.get_job(job_id)
    return job, (store.robot_deployments(job_id, robot_names) if job is not None else {})


def _wire_api(api: Any) -> None:
    # fleet/ shows a robot's deployment in flight (DescribeRobot, ListRobots...) through the engine's rows.
    from fleetwave_service.fleet import in_flight

    in_flight.read_jobs_with(_job_robots)


def _wire_status(status: Any) -> None:
    # The status path asks fleet/ for the robot of a derived (hashed) thing name; the engine has no fleet/.
    status.resolve_derived_things_with(_robot_of_derived_thing)


# The parent of the ``Logger(service="fleetwave", child=True)`` loggers (channels, starter...): created here,
# not only by the API module, so that their lines are written in every function and in `fleetwave serve`
# (with the API imported lazily, nothing else configures it before the first request).
logger = Logger(service="fleetwave")

policy.register_lazily(None, _robomaker_policy)  # RoboMaker's job rows have no frontDoor attribute
policy.register_lazily(GREENGRASS, _greengrass_policy)
events.fleet_deleting.subscribe(_cancel_for_fleet_deletion)
events.robot_deleted.subscribe(_clear_retained_command)
events.robot_joined.subscribe(_on_robot_joined)
events.robot_left.subscribe(_stop_deployment_to_departed_robot)

# Each handler: the module that defines it, the name there, and what the composition root plugs into that
# module once it is loaded (None: nothing).
_HANDLERS: dict[str, tuple[str, str, Callable[[Any], None] | None]] = {
    "api_handler": ("fleetwave_service.api", "lambda_handler", _wire_api),
    "prepare_handler": ("fleetwave_service.engine.step_handlers", "prepare_handler", None),
    "evaluate_handler": ("fleetwave_service.engine.step_handlers", "evaluate_handler", None),
    "release_wave_handler": ("fleetwave_service.engine.step_handlers", "release_wave_handler", None),
    "hold_handler": ("fleetwave_service.engine.step_handlers", "hold_handler", None),
    "sweep_handler": ("fleetwave_service.engine.step_handlers", "sweep_handler", None),
    "finalize_handler": ("fleetwave_service.engine.step_handlers", "finalize_handler", None),
    "status_handler": ("fleetwave_service.engine.status", "lambda_handler", _wire_status),
    "provisioning_hook_handler": ("fleetwave_service.fleet.provisioning", "lambda_handler", None),
}


def __getattr__(name: str) -> Any:
    # The Lambda runtime looks the handler up by name once the module is imported: that lookup loads the
    # handler's module (and wires it), and no other function's.
    try:
        module_name, attribute, wire = _HANDLERS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    if wire is not None:
        wire(module)
    handler = getattr(module, attribute)
    globals()[name] = handler  # later lookups find it without coming here
    return handler


def __dir__() -> list[str]:
    return sorted({*globals(), *_HANDLERS})
