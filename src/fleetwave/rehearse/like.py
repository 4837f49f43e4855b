"""``fleetwave rehearse --like FLEET``: the robots of an existing fleet (their names, so the waves are the
same, and their architectures), read through the API of a deployed stack or of `fleetwave serve`."""

from __future__ import annotations

import argparse

from fleetwave.rehearse.plan import PlanError


class EndpointUnavailable(RuntimeError):
    """The API to copy the fleet from cannot be called (no credentials, unreachable): one line."""


def fleet_robots(args: argparse.Namespace, fleet: str, limit: int) -> list[tuple[str, str]]:
    """(name, architecture) of every robot registered in ``fleet`` (a name or an ARN)."""
    from fleetwave.commands.endpoint import EndpointError, api_client
    from fleetwave.commands.simulate import ApiFleetLookup, FleetLookupError, fleet_name_of

    try:
        fleet_name_of(fleet)
    except ValueError as error:
        raise PlanError(f"--like {fleet}: {error}") from None
    try:
        lookup = ApiFleetLookup(api_client(args, timeout=60), fleet)
        robots = lookup.summaries()
    except EndpointError as error:
        raise EndpointUnavailable(f"--like {fleet}: {error}") from None
    except FleetLookupError as error:
        if "ResourceNotFound" in str(error):
            raise PlanError(f"--like {fleet}: no such fleet at {args.endpoint}") from None
        raise EndpointUnavailable(f"--like {fleet}: {error}") from None
    if not robots:
        raise PlanError(f"--like {fleet}: the fleet has no robots to copy")
    if len(robots) > limit:
        raise PlanError(
            f"--like {fleet}: {len(robots):,} robots is more than the {limit:,} a rehearsal may simulate"
        )
    # A robot without an architecture fails before release in the real rollout too: keep it that way.
    return sorted((str(robot["name"]), str(robot.get("architecture") or "")) for robot in robots)
