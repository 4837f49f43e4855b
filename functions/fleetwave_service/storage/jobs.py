"""Deployment job rows (``JOB#<id>`` / ``JOB``), their robot rows, and client request token rows.

Every one of them carries ``expiresAt``; reads here never return a row past it (TTL deletion lags).
"""

from __future__ import annotations

import enum
import time
from typing import Any

from botocore.exceptions import ClientError

from fleetwave_service.core import dynamo, ids
from fleetwave_service.core.dynamo import Row
from fleetwave_service.storage.fleets import fleet_key

LIST_PARTITION = "JOBS"
_ROBOT_PREFIX = "ROBOT#"
_CONFLICT_RETRIES = 5


def job_key(job_id: str) -> tuple[str, str]:
    return f"JOB#{job_id}", "JOB"


def token_key(token: str) -> tuple[str, str]:
    return f"TOKEN#{token}", "TOKEN"


def fleet_partition(fleet_name: str) -> str:
    return f"FLEETJOBS#{fleet_name}"


def _listing_key(row: Row) -> str:
    # Sorts by creation time; the id keeps two jobs created in the same microsecond apart.
    return f"{row['createdAt']:017.6f}#{row['id']}"


def get(job_id: str) -> Row | None:
    row = dynamo.get(*job_key(job_id))
    return None if row is None or dynamo.is_expired(row) else row


def get_token(token: str) -> Row | None:
    row = dynamo.get(*token_key(token))
    return None if row is None or dynamo.is_expired(row) else row


class CreateOutcome(enum.Enum):
    CREATED = "created"
    TOKEN_TAKEN = "token taken"  # the client request token was used before (look it up)
    FLEET_BUSY = "fleet busy"  # the fleet has an active job, or is gone


def create_with_lock(job: Row, token: Row) -> CreateOutcome:
    """Store the token row, the job row and the fleet's ``activeJobId`` lock in one transaction.

    Either all three are written or none is, so a job never exists without its lock or its token, and
    two identical requests racing each other create exactly one job.
    """
    now = ids.now()
    job_pk, job_sk = job_key(job["id"])
    job_item = dict(
        job,
        pk=job_pk,
        sk=job_sk,
        gsi1pk=LIST_PARTITION,
        gsi1sk=_listing_key(job),
        gsi2pk=fleet_partition(job["fleetName"]),
        gsi2sk=_listing_key(job),
    )
    token_pk, token_sk = token_key(token["clientRequestToken"])
    items = [
        {
            "Put": {
                "TableName": dynamo.table_name(),
                "Item": dynamo.serialize(dict(token, pk=token_pk, sk=token_sk)),
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
    ]
    for attempt in range(_CONFLICT_RETRIES):
        try:
            dynamo.client().transact_write_items(TransactItems=items)
            return CreateOutcome.CREATED
        except ClientError as error:
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


def update_status(job_id: str, status: str, from_statuses: tuple[str, ...], **attributes: Any) -> bool:
    """Move a job to ``status`` (and set ``attributes``) only from one of ``from_statuses``."""
    assignments = ["#status = :status"] + [f"#a{i} = :v{i}" for i in range(len(attributes))]
    names = {"#status": "status", **{f"#a{i}": name for i, name in enumerate(attributes)}}
    allowed = {f"from{i}": value for i, value in enumerate(from_statuses)}
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.key(*job_key(job_id)),
            UpdateExpression="SET " + ", ".join(assignments),
            ConditionExpression=f"#status IN ({', '.join(':' + k for k in allowed)})",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=dynamo.values(
                status=status, **allowed, **{f"v{i}": v for i, v in enumerate(attributes.values())}
            ),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def robot_deployments(job_id: str) -> list[Row]:
    """Every robot row of a job, all pages (a fleet can have thousands of robots)."""
    rows = dynamo.query_all(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :robot)",
        ExpressionAttributeValues=dynamo.values(pk=job_key(job_id)[0], robot=_ROBOT_PREFIX),
    )
    now = ids.now()
    return [row for row in rows if not dynamo.is_expired(row, now)]


def latest_for_fleet(fleet_name: str) -> Row | None:
    """The fleet's most recently created job that has not expired."""
    rows, _ = dynamo.query_page(
        1,
        None,
        IndexName="gsi2",
        KeyConditionExpression="gsi2pk = :p",
        FilterExpression="expiresAt > :now",
        ExpressionAttributeValues=dynamo.values(p=fleet_partition(fleet_name), now=ids.now()),
        ScanIndexForward=False,
    )
    # The index lags the table: read the job itself for its current status.
    return get(rows[0]["id"]) if rows else None


def list_page(
    limit: int,
    start_key: dict[str, Any] | None,
    *,
    fleet_name: str | None = None,
    status: str | None = None,
) -> tuple[list[Row], dict[str, Any] | None]:
    """Newest first."""
    params: dict[str, Any] = {"now": ids.now()}
    filters = ["expiresAt > :now"]
    names: dict[str, str] = {}
    if fleet_name is not None:
        request: dict[str, Any] = {"IndexName": "gsi2", "KeyConditionExpression": "gsi2pk = :p"}
        params["p"] = fleet_partition(fleet_name)
    else:
        request = {"IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :p"}
        params["p"] = LIST_PARTITION
    if status is not None:
        names["#status"] = "status"
        params["status"] = status
        filters.append("#status = :status")
    request["FilterExpression"] = " AND ".join(filters)
    if names:
        request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = dynamo.values(**params)
    return dynamo.query_page(limit, start_key, ScanIndexForward=False, **request)
