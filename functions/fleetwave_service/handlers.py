"""The Lambda entry points (every handler in fleetwave_service.lambdas names one) and the composition root.

The engine imports no front door and fleet/ imports neither front door nor engine (docs/architecture.md);
this module is where they meet: each front door plugs its rollout policy into the engine, and the fleet
registry's events reach the front doors and the engine. Importing it is what every Lambda, the local
runtime and the tests do first.

Importing it is also most of every function's cold start (make bench: cold import / ``import boto3``), so
it imports only what every function needs. The API (its routes, request models, OpenAPI document) is
imported when ``api_handler`` is looked up, which only the API function does; the fleet events' listeners
import their front door when they are called, and only API operations raise those events.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.settings import get_settings
from fleetwave_service.engine import policy, status, step_handlers, steps
from fleetwave_service.engine.channels import get_channel
from fleetwave_service.engine.ports import get_ports
from fleetwave_service.fleet import events, in_flight, provisioning, registry
from fleetwave_service.fleet import store as fleet_store
from fleetwave_service.greengrass.policy import GreengrassPolicy
from fleetwave_service.robomaker.policy import RoboMakerPolicy


def _clear_retained_command(robot: Row) -> None:
    """A later robot of the same name must not pick up a deleted robot's retained deployment command."""
    registry.best_effort(get_channel(get_settings()).clear_command, robot["name"])


def _cancel_for_fleet_deletion(fleet: Row) -> None:
    from fleetwave_service.robomaker import jobs

    jobs.cancel_for_fleet_deletion(fleet)


def _on_robot_joined(robot: Row, fleet: Row) -> None:
    from fleetwave_service.greengrass import continuous

    continuous.on_robot_joined(robot, fleet)


def _stop_deployment_to_departed_robot(robot: Row, fleet: Row) -> None:
    """A robot deregistered from a fleet mid-rollout must not go on deploying the fleet's job."""

    def abort_robot_deployment(job_id: str, robot_name: str) -> None:
        steps.abort_robot(job_id, robot_name, steps.DEPARTED_REASON, get_ports())

    if fleet.get("activeJobId"):
        registry.best_effort(abort_robot_deployment, fleet["activeJobId"], robot["name"])


def _job_robots(job_id: str, robot_names: list[str]) -> tuple[Row | None, dict[str, Row]]:
    """A running job's rows for these robots, as released (what fleet/in_flight.py shows of the robots)."""
    store = get_ports().store
    job = store.get_job(job_id)
    return job, (store.robot_deployments(job_id, robot_names) if job is not None else {})


def _robot_of_derived_thing(thing: str) -> str | None:
    row = fleet_store.find_by_thing_name(thing)
    return str(row["name"]) if row is not None else None


# The parent of the ``Logger(service="fleetwave", child=True)`` loggers (channels, starter...): created here,
# not only by the API module, so that their lines are written in every function and in `fleetwave serve`
# (with the API imported lazily, nothing else configures it before the first request).
logger = Logger(service="fleetwave")

status.resolve_derived_things_with(_robot_of_derived_thing)
policy.register(RoboMakerPolicy())
policy.register(GreengrassPolicy())
events.fleet_deleting.subscribe(_cancel_for_fleet_deletion)
events.robot_deleted.subscribe(_clear_retained_command)
events.robot_joined.subscribe(_on_robot_joined)
events.robot_left.subscribe(_stop_deployment_to_departed_robot)
in_flight.read_jobs_with(_job_robots)

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


def __getattr__(name: str) -> Any:
    # The Lambda runtime looks the handler up by name once the module is imported: the API function's
    # lookup imports the API, no other function's does.
    if name == "api_handler":
        from fleetwave_service import api

        return api.lambda_handler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
