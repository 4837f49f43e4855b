"""Every key of the one table, spelled once (docs/storage.md).

A row's key is a ``Key(pk, sk)``; index partitions (``gsi1pk`` / ``gsi2pk`` values) and sort-key prefixes
are named here too, so no other module writes ``"FLEET#"`` or ``"JOB#"`` by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

# The version name of an application's latest (unversioned) sources, on the wire and in keys. Here, not in
# core/wire.py: the rows' keys must not load pydantic (the provisioning hook reads robot rows only).
LATEST = "$LATEST"

# gsi1 partitions: one listing each.
FLEETS = "FLEETS"
ROBOTS = "ROBOTS"
APPS = "APPS"
JOBS = "JOBS"
GG_DEPLOYMENTS = "GGDEPLOYMENTS"
GG_COMPONENTS = "GGCOMPONENTS"
# gsi2 partition of every application row ($LATEST and versions), sorted by ``<name>#<sort key>``.
APP_VERSIONS = "APPVERSIONS"

# Sort-key prefixes of the rows under one partition.
VERSION_PREFIX = "VERSION#"
NUMBERED_VERSION_PREFIX = "VERSION#0"  # every zero-padded number starts with 0; "$LATEST" does not
ROBOT_PREFIX = "ROBOT#"
FIRST_WAVE_SK = "WAVE#000000"
LAST_WAVE_SK = "WAVE#999999"


class Key(NamedTuple):
    pk: str
    sk: str

    def item(self) -> dict[str, str]:
        """The key as item attributes (``{"pk": ..., "sk": ...}``)."""
        return {"pk": self.pk, "sk": self.sk}


# --- fleets and robots ------------------------------------------------------------------------------
def fleet_key(name: str) -> Key:
    return Key(f"FLEET#{name}", "FLEET")


def robot_key(name: str) -> Key:
    return Key(f"ROBOT#{name}", "ROBOT")


def fleet_robots_partition(fleet_name: str) -> str:
    """gsi2: the robots registered in a fleet (present on a robot row only while it is registered)."""
    return f"FLEETROBOTS#{fleet_name}"


# --- robot applications -----------------------------------------------------------------------------
def application_partition(name: str) -> str:
    return f"APP#{name}"


def application_sort_key(version: str) -> str:
    return VERSION_PREFIX + (LATEST if version == LATEST else f"{int(version):010d}")


def application_key(name: str, version: str = LATEST) -> Key:
    return Key(application_partition(name), application_sort_key(version))


# --- deployment jobs and what hangs off them --------------------------------------------------------
def job_partition(job_id: str) -> str:
    return f"JOB#{job_id}"


def job_key(job_id: str) -> Key:
    return Key(job_partition(job_id), "JOB")


def robot_deployment_key(job_id: str, robot_name: str) -> Key:
    """One robot's deployment in one job."""
    return Key(job_partition(job_id), f"{ROBOT_PREFIX}{robot_name}")


def wave_key(job_id: str, wave: int) -> Key:
    return Key(job_partition(job_id), f"WAVE#{wave:06d}")


PLAN_PREFIX = "PLAN#"


def plan_key(job_id: str, wave: int, chunk: int) -> Key:
    """Chunk ``chunk`` of wave ``wave``'s members: many robots in one row until each writes its own
    (engine/store.py, "planned" robots)."""
    return Key(job_partition(job_id), f"{PLAN_PREFIX}{wave:06d}#{chunk:06d}")


def member_prefix(wave: int) -> str:
    return f"MEMBER#{wave:06d}#"


def member_key(job_id: str, wave: int, robot_name: str) -> Key:
    """Membership of a robot in wave ``wave``: a step reads one wave without reading the fleet."""
    return Key(job_partition(job_id), member_prefix(wave) + robot_name)


def queue_key(job_id: str, position: int) -> Key:
    """A target waiting for its batch, in release order (batch sizes are decided as the rollout goes)."""
    return Key(job_partition(job_id), f"QUEUE#{position:09d}")


def token_key(token: str) -> Key:
    """A client request token of CreateDeploymentJob / SyncDeploymentJob."""
    return Key(f"TOKEN#{token}", "TOKEN")


def fleet_jobs_partition(fleet_name: str) -> str:
    """gsi2: a fleet's deployment jobs."""
    return f"FLEETJOBS#{fleet_name}"


def listing_sort_key(row: Mapping[str, Any]) -> str:
    """gsi1sk/gsi2sk of a job or deployment: by creation time; the id keeps two created in the same
    microsecond apart."""
    return f"{row['createdAt']:017.6f}#{row['id']}"


# --- Greengrass -------------------------------------------------------------------------------------
def gg_target_key(target_arn: str) -> Key:
    """A Greengrass target: its revision counter and current deployment."""
    return Key(f"GGTARGET#{target_arn}", "TARGET")


def gg_target_deployments_partition(target_arn: str) -> str:
    """gsi2: the deployments of one Greengrass target."""
    return f"GGTARGETDEPLOYMENTS#{target_arn}"


def gg_component_partition(name: str) -> str:
    return f"GGCOMPONENT#{name}"


def gg_component_key(name: str, version: str) -> Key:
    return Key(gg_component_partition(name), f"{VERSION_PREFIX}{version}")
