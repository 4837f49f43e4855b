"""RoboMaker rows (docs/storage.md): robot applications, deployment jobs and client request tokens.

- application: ``APP#<name>`` / ``VERSION#$LATEST`` and ``VERSION#<n, 10 digits>``. gsi1 ``APPS`` lists the
  applications (their $LATEST rows); gsi2 ``APPVERSIONS`` lists every row of every application, sorted by
  ``<name>#<sort key>`` so that an application's versions sit together, $LATEST first.
- deployment job: ``JOB#<id>`` / ``JOB``, listed through gsi1 ``JOBS`` and gsi2 ``FLEETJOBS#<fleet>``; its
  robot rows ``JOB#<id>`` / ``ROBOT#<name>`` (the engine writes them).
- client request token: ``TOKEN#<token>`` / ``TOKEN``.

Job and token rows carry ``expiresAt``; reads here never return a row past it (TTL deletion lags).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from typing import Any

from fleetwave_service.core import dynamo, ids, keys
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.keys import LATEST, application_key, fleet_key, job_key, token_key
from fleetwave_service.engine.store import RolloutStore
from fleetwave_service.fleet import store as fleet_store

_CONFLICT_RETRIES = 5


# --- robot applications -----------------------------------------------------------------------------
def _application_item(row: Row) -> Row:
    key = application_key(row["name"], row["version"])
    item = dict(row, **key.item(), gsi2pk=keys.APP_VERSIONS, gsi2sk=f"{row['name']}#{key.sk}")
    if row["version"] == LATEST:
        item.update(gsi1pk=keys.APPS, gsi1sk=row["name"])
    return item


def create_application(row: Row) -> bool:
    """Store a new application ($LATEST row); False when one of that name exists."""
    return dynamo.put_new(_application_item(row))


def get_latest(name: str) -> Row | None:
    return dynamo.get(*application_key(name))


def get_version(name: str, version: str) -> Row | None:
    return dynamo.get(*application_key(name, version))


def update_latest(name: str, expected_revision: str, changes: dict[str, Any]) -> bool:
    """Apply ``changes`` to $LATEST if its revision is still ``expected_revision``."""
    return dynamo.update(
        application_key(name),
        sets=changes,
        condition="revisionId = :expected",
        values={":expected": expected_revision},
    )


def create_version(version_row: Row, previous_number: int, expected_revision: str) -> bool:
    """Store version ``version_row`` and advance $LATEST's counter, both or neither.

    False when $LATEST changed since it was read (another version or an update got in first).
    """
    name = version_row["name"]
    try:
        dynamo.client().transact_write_items(
            TransactItems=[
                {
                    "Update": dynamo.update_params(
                        application_key(name),
                        sets={"lastVersionNumber": int(version_row["version"])},
                        condition="lastVersionNumber = :previous AND revisionId = :revision",
                        values={":previous": previous_number, ":revision": expected_revision},
                    )
                },
                {
                    "Put": {
                        "TableName": dynamo.table_name(),
                        "Item": dynamo.serialize(_application_item(version_row)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except Exception as error:
        if dynamo.is_transaction_cancelled(error):
            return False
        raise
    return True


def _numbered_versions(name: str) -> dict[str, Any]:
    return {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :numbered)",
        "ExpressionAttributeValues": dynamo.values(
            pk=keys.application_partition(name), numbered=keys.NUMBERED_VERSION_PREFIX
        ),
    }


def count_versions(name: str) -> int:
    return dynamo.count(**_numbered_versions(name))


def delete_version(name: str, version: str) -> bool:
    return dynamo.delete(application_key(name, version), condition="attribute_exists(pk)")


def delete_application(name: str) -> None:
    """Delete $LATEST first (the application is gone from then on), then every version."""
    dynamo.delete(application_key(name))
    for row in dynamo.query_all(**_numbered_versions(name), ProjectionExpression="pk, sk"):
        dynamo.delete((row["pk"], row["sk"]))


def list_applications_page(
    limit: int, start_key: dict[str, Any] | None, *, name: str | None = None, all_versions: bool = False
) -> tuple[list[Row], dict[str, Any] | None]:
    if all_versions:
        condition = "gsi2pk = :p" + (" AND begins_with(gsi2sk, :n)" if name is not None else "")
        params = {"p": keys.APP_VERSIONS, **({"n": f"{name}#"} if name is not None else {})}
        index = "gsi2"
    else:
        condition = "gsi1pk = :p" + (" AND gsi1sk = :n" if name is not None else "")
        params = {"p": keys.APPS, **({"n": name} if name is not None else {})}
        index = "gsi1"
    return dynamo.query_page(
        limit,
        start_key,
        IndexName=index,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=dynamo.values(**params),
    )


# --- deployment jobs --------------------------------------------------------------------------------
def _live(row: Row | None) -> Row | None:
    return None if row is None or dynamo.is_expired(row) else row


def get_job(job_id: str) -> Row | None:
    return _live(dynamo.get(*job_key(job_id)))


def get_token(token: str) -> Row | None:
    return _live(dynamo.get(*token_key(token)))


class CreateOutcome(enum.Enum):
    CREATED = "created"
    TOKEN_TAKEN = "token taken"  # the client request token was used before (look it up)
    FLEET_BUSY = "fleet busy"  # the fleet has an active job, or is gone


def create_with_lock(job: Row, token: Row, also: list[dict[str, Any]] | None = None) -> CreateOutcome:
    """Store the token row, the job row and the fleet's ``activeJobId`` lock in one transaction, with
    ``also`` (more Update actions, such as ``retry_link``).

    Either all are written or none is, so a job never exists without its lock or its token, and
    two identical requests racing each other create exactly one job.
    """
    now = ids.now()
    listing = keys.listing_sort_key(job)
    job_item = dict(
        job,
        **job_key(job["id"]).item(),
        gsi1pk=keys.JOBS,
        gsi1sk=listing,
        gsi2pk=keys.fleet_jobs_partition(job["fleetName"]),
        gsi2sk=listing,
    )
    items = [
        {
            "Put": {
                "TableName": dynamo.table_name(),
                "Item": dynamo.serialize(dict(token, **token_key(token["clientRequestToken"]).item())),
                # An expired token row that TTL has not deleted yet no longer holds its token.
                "ConditionExpression": "attribute_not_exists(pk) OR expiresAt < :now",
                "ExpressionAttributeValues": dynamo.values(now=now),
            }
        },
        {
            "Put": {
                "TableName": dynamo.table_name(),
                "Item": dynamo.serialize(job_item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {
            "Update": {
                "TableName": dynamo.table_name(),
                "Key": dynamo.key(*fleet_key(job["fleetName"])),
                "UpdateExpression": "SET activeJobId = :job",
                "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(activeJobId)",
                "ExpressionAttributeValues": dynamo.values(job=job["id"]),
            }
        },
        *({"Update": update} for update in also or ()),
    ]
    for attempt in range(_CONFLICT_RETRIES):
        try:
            dynamo.client().transact_write_items(TransactItems=items)
            fleet_store.forget_active_job(job["fleetName"])
            return CreateOutcome.CREATED
        except Exception as error:
            if not dynamo.is_transaction_cancelled(error):
                raise
            codes = dynamo.cancellation_codes(error)
            # Reasons come back in item order: 0 token, 1 job, 2 fleet lock.
            if codes and codes[0] == "ConditionalCheckFailed":
                return CreateOutcome.TOKEN_TAKEN
            if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
                return CreateOutcome.FLEET_BUSY
            if "TransactionConflict" not in codes or attempt == _CONFLICT_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def retry_link(job_id: str, retry_arn: str) -> dict[str, Any]:
    """The Update that appends a retry's ARN to ``retriedBy`` of the job it retries (which must exist)."""
    return {
        "TableName": dynamo.table_name(),
        "Key": dynamo.key(*job_key(job_id)),
        "UpdateExpression": "SET retriedBy = list_append(if_not_exists(retriedBy, :none), :retry)",
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeValues": dynamo.values(none=[], retry=[retry_arn]),
    }


def update_status(job_id: str, status: str, from_statuses: tuple[str, ...], **attributes: Any) -> bool:
    """Move a job to ``status`` (and set ``attributes``) only from one of ``from_statuses``."""
    allowed = {f":from{i}": value for i, value in enumerate(from_statuses)}
    return dynamo.update(
        job_key(job_id),
        sets={"status": status, **attributes},
        condition=f"#status IN ({', '.join(allowed)})",
        names={"#status": "status"},
        values=allowed,
    )


def robot_deployments(job_id: str) -> list[Row]:
    """Every robot row of a job, all pages (a fleet can have thousands of robots), in name order, as the
    engine shows them (engine/store.py: a robot whose wave is released is Deploying although the release
    wrote no row, and a robot with no write of its own yet is read from its wave's plan rows)."""
    return list(RolloutStore(dynamo.table_name()).job_robot_deployments(job_id))


def latest_for_fleet(fleet_name: str) -> Row | None:
    """The fleet's most recently created job that has not expired."""
    rows, _ = dynamo.query_page(
        1,
        None,
        IndexName="gsi2",
        KeyConditionExpression="gsi2pk = :p",
        FilterExpression="expiresAt > :now",
        ExpressionAttributeValues=dynamo.values(p=keys.fleet_jobs_partition(fleet_name), now=ids.now()),
        ScanIndexForward=False,
    )
    # The index lags the table: read the job itself for its current status.
    return get_job(rows[0]["id"]) if rows else None


def fleet_jobs(fleet_name: str) -> Iterator[Row]:
    """The fleet's jobs that have not expired, newest first, page by page as the caller reads on (index
    rows: their status may lag the table's)."""
    for page, _ in dynamo.query_pages(
        IndexName="gsi2",
        KeyConditionExpression="gsi2pk = :p",
        FilterExpression="expiresAt > :now",
        ExpressionAttributeValues=dynamo.values(p=keys.fleet_jobs_partition(fleet_name), now=ids.now()),
        ScanIndexForward=False,
    ):
        yield from page


def list_jobs_page(
    limit: int,
    start_key: dict[str, Any] | None,
    *,
    fleet_name: str | None = None,
    status: str | None = None,
) -> tuple[list[Row], dict[str, Any] | None]:
    """Newest first."""
    if fleet_name is not None:
        index, partition = "gsi2", keys.fleet_jobs_partition(fleet_name)
    else:
        index, partition = "gsi1", keys.JOBS
    return dynamo.index_page(
        limit,
        start_key,
        index,
        partition,
        {"status": status} if status is not None else {},
        condition="expiresAt > :now",
        condition_values={"now": ids.now()},
        newest_first=True,
    )
