"""DynamoDB access for the rollout engine (docs/storage.md, docs/rollout.md).

Rows this module writes, all under the job's partition ``JOB#<id>`` (so they share its TTL):
- ``JOB``: engine attributes on the job row (status transitions, counters, ``waveToken``, ``currentWave``).
- ``ROBOT#<name>``: one robot's deployment in this job; the API returns it as ``robotDeploymentSummary``.
- ``WAVE#<n:06>``: one wave: ``size`` and the counters ``succeededCount``/``failedCount``/``noResponseCount``.
- ``MEMBER#<n:06>#<name>``: membership of a robot in wave n, so a step reads one wave's robots without
  reading the whole fleet (cost O(N) per deployment, not O(N x waves)).

A robot row moves into a terminal state with one conditional write, and only that success bumps the wave's
counter: counters never count a robot twice (they can only fall short, see ``finish_robot``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from fleetwave_service.core.ids import now as clock_now

COUNTER_FOR_STATUS = {"InSync": "succeededCount", "Failed": "failedCount", "NoResponse": "noResponseCount"}


def job_key(job_id: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": "JOB"}


def robot_deployment_key(job_id: str, robot_name: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": f"ROBOT#{robot_name}"}


def wave_key(job_id: str, wave: int) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": f"WAVE#{wave:06d}"}


def member_key(job_id: str, wave: int, robot_name: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": f"MEMBER#{wave:06d}#{robot_name}"}


def queue_key(job_id: str, position: int) -> dict[str, str]:
    """A Greengrass target waiting for its batch, in release order (batch sizes are decided as it goes)."""
    return {"pk": f"JOB#{job_id}", "sk": f"QUEUE#{position:09d}"}


_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_dynamo(value: Any) -> Any:
    """Python values -> what the serializer accepts (floats must be Decimals; None attributes are dropped)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else Decimal(0)
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """DynamoDB values -> plain JSON-able Python (Decimals become int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(from_dynamo(v) for v in value)
    return value


def serialize(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(to_dynamo(v)) for k, v in row.items() if v is not None}


def _value(value: Any) -> dict[str, Any]:
    return _SERIALIZER.serialize(to_dynamo(value))


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: from_dynamo(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


def _strip_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")}


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _key(key: dict[str, str]) -> dict[str, Any]:
    return {name: {"S": value} for name, value in key.items()}


def _update_params(
    table_name: str,
    key: dict[str, str],
    *,
    sets: dict[str, Any] | None = None,
    adds: dict[str, Any] | None = None,
    removes: Iterable[str] = (),
    condition: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """UpdateItem (or transaction Update) parameters from plain dicts; attribute names always aliased."""
    attr_names: dict[str, str] = dict(names or {})
    attr_values: dict[str, Any] = {k: _value(v) for k, v in (values or {}).items()}
    clauses = []
    set_parts = []
    for index, (name, value) in enumerate((sets or {}).items()):
        if value is None:
            continue
        attr_names[f"#s{index}"] = name
        attr_values[f":s{index}"] = _value(value)
        set_parts.append(f"#s{index} = :s{index}")
    if set_parts:
        clauses.append("SET " + ", ".join(set_parts))
    add_parts = []
    for index, (name, value) in enumerate((adds or {}).items()):
        attr_names[f"#a{index}"] = name
        attr_values[f":a{index}"] = _value(value)
        add_parts.append(f"#a{index} :a{index}")
    if add_parts:
        clauses.append("ADD " + ", ".join(add_parts))
    remove_parts = []
    for index, name in enumerate(removes):
        attr_names[f"#r{index}"] = name
        remove_parts.append(f"#r{index}")
    if remove_parts:
        clauses.append("REMOVE " + ", ".join(remove_parts))
    params: dict[str, Any] = {
        "TableName": table_name,
        "Key": _key(key),
        "UpdateExpression": " ".join(clauses),
    }
    if attr_names:
        params["ExpressionAttributeNames"] = attr_names
    if attr_values:
        params["ExpressionAttributeValues"] = attr_values
    if condition:
        params["ConditionExpression"] = condition
    return params


# The exactly-once conditions on a robot's own report: its live attempt, a newer seq, a step that does not
# go backwards, before the deadline the service gave it.
_REPORT_CONDITION = (
    "attempt = :attempt AND seq < :seq AND deadline > :now"
    " AND (attribute_not_exists(stepIndex) OR stepIndex <= :step)"
)


class RolloutStore:
    """The engine's repository over the one Fleetwave table (low-level client: thread-safe)."""

    def __init__(self, table_name: str, region: str, client: Any | None = None, workers: int = 8) -> None:
        self._table_name = table_name
        self._client = client or boto3.client(
            "dynamodb", region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 5})
        )
        self._workers = workers

    # --- reading ------------------------------------------------------------------------------------------
    def _live(self, item: dict[str, Any] | None) -> dict[str, Any] | None:
        if item is None:
            return None
        row = deserialize(item)
        expires = row.get("expiresAt")
        # TTL deletion lags by days: an expired row is gone as far as anyone can tell.
        if expires is not None and expires < clock_now():
            return None
        return _strip_keys(row)

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table_name, Key=_key(key), ConsistentRead=True)
        return self._live(response.get("Item"))

    def _query(
        self,
        condition: str,
        values: dict[str, Any],
        *,
        index: str | None = None,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": {k: _value(v) for k, v in values.items()},
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = True
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        if names:
            kwargs["ExpressionAttributeNames"] = names
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                row = self._live(item)
                if row is not None:
                    yield row
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def batch_get(self, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self._table_name: {
                    "Keys": [_key(k) for k in keys[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table_name, []):
                    row = self._live(item)
                    if row is not None:
                        found.append(row)
                request = response.get("UnprocessedKeys") or {}
        return found

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return self._get(job_key(job_id))

    def get_fleet(self, fleet_name: str) -> dict[str, Any] | None:
        return self._get({"pk": f"FLEET#{fleet_name}", "sk": "FLEET"})

    def get_application_version(self, application_name: str, version: str) -> dict[str, Any] | None:
        sort = "VERSION#$LATEST" if version == "$LATEST" else f"VERSION#{int(version):010d}"
        return self._get({"pk": f"APP#{application_name}", "sk": sort})

    def fleet_robots(self, fleet_name: str) -> list[dict[str, Any]]:
        """Robots registered in the fleet (gsi2), re-read consistently so a just-deregistered one is gone."""
        listed = list(self._query("gsi2pk = :pk", {":pk": f"FLEETROBOTS#{fleet_name}"}, index="gsi2"))
        robots = self.batch_get([{"pk": f"ROBOT#{r['name']}", "sk": "ROBOT"} for r in listed])
        return [robot for robot in robots if robot.get("fleetName") == fleet_name]

    def job_robot_deployments(self, job_id: str, statuses: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        wanted = list(statuses)
        values: dict[str, Any] = {":pk": f"JOB#{job_id}", ":prefix": "ROBOT#"}
        filter_expression = None
        names = None
        if wanted:
            values.update({f":w{i}": status for i, status in enumerate(wanted)})
            filter_expression = f"#st IN ({', '.join(f':w{i}' for i in range(len(wanted)))})"
            names = {"#st": "status"}
        return self._query(
            "pk = :pk AND begins_with(sk, :prefix)", values, filter_expression=filter_expression, names=names
        )

    def get_robot_deployment(self, job_id: str, robot_name: str) -> dict[str, Any] | None:
        return self._get(robot_deployment_key(job_id, robot_name))

    def wave_members(self, job_id: str, wave: int) -> list[dict[str, Any]]:
        return list(
            self._query(
                "pk = :pk AND begins_with(sk, :prefix)",
                {":pk": f"JOB#{job_id}", ":prefix": f"MEMBER#{wave:06d}#"},
            )
        )

    def queued_robots(self, job_id: str, start: int, count: int) -> list[dict[str, Any]]:
        """The queued targets at positions start .. start + count - 1 (one query)."""
        if count <= 0:
            return []
        return list(
            self._query(
                "pk = :pk AND sk BETWEEN :first AND :last",
                {
                    ":pk": f"JOB#{job_id}",
                    ":first": queue_key(job_id, start)["sk"],
                    ":last": queue_key(job_id, start + count - 1)["sk"],
                },
            )
        )

    def plan_next_batch(self, job_id: str, wave: int, fields: dict[str, Any]) -> bool:
        """Record the plan of batch ``wave`` on the job, once: False when it is already planned or the job is
        no longer InProgress (a retried evaluate then reuses the recorded plan)."""
        return self._update(
            job_key(job_id),
            sets={**fields, "plannedWave": wave},
            condition="#st = :ip AND (attribute_not_exists(plannedWave) OR plannedWave < :wave)",
            names={"#st": "status"},
            values={":ip": "InProgress", ":wave": wave},
        )

    def wave_robot_deployments(self, job_id: str, wave: int) -> list[dict[str, Any]]:
        members = self.wave_members(job_id, wave)
        return self.batch_get([robot_deployment_key(job_id, m["robotName"]) for m in members])

    def get_wave(self, job_id: str, wave: int) -> dict[str, Any] | None:
        return self._get(wave_key(job_id, wave))

    def waves(self, job_id: str) -> list[dict[str, Any]]:
        return list(
            self._query(
                "pk = :pk AND sk BETWEEN :first AND :last",
                {":pk": f"JOB#{job_id}", ":first": "WAVE#000000", ":last": "WAVE#999999"},
            )
        )

    # --- writing helpers ----------------------------------------------------------------------------------
    def _update(self, key: dict[str, str], **kwargs: Any) -> bool:
        """One conditional UpdateItem; False when its condition does not hold."""
        return self._update_returning(key, **kwargs) is not None

    def _update_returning(self, key: dict[str, str], **kwargs: Any) -> dict[str, Any] | None:
        """One conditional UpdateItem returning the row as it is now; None when its condition fails."""
        try:
            response = self._client.update_item(
                **_update_params(self._table_name, key, **kwargs), ReturnValues="ALL_NEW"
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise
        return _strip_keys(deserialize(response.get("Attributes", {})))

    def _transact(self, updates: list[dict[str, Any]]) -> bool:
        """All-or-nothing; False when the first item's condition failed (the others carry no condition)."""
        try:
            self._client.transact_write_items(TransactItems=[{"Update": u} for u in updates])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def put_rows(self, rows: Iterable[tuple[dict[str, str], dict[str, Any]]]) -> int:
        """Batch-write whole rows, 25 per request, retrying what DynamoDB leaves unprocessed."""
        count = 0
        chunk: list[dict[str, Any]] = []
        for key, attributes in rows:
            chunk.append({"PutRequest": {"Item": serialize({**attributes, **key})}})
            count += 1
            if len(chunk) == 25:
                self._batch_write(chunk)
                chunk = []
        if chunk:
            self._batch_write(chunk)
        return count

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self._table_name: requests}
        attempt = 0
        while pending:
            response = self._client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            attempt += 1
            if pending and attempt > 8:
                raise RuntimeError(f"batch write left {len(pending[self._table_name])} items unprocessed")

    # --- job row ------------------------------------------------------------------------------------------
    def claim_job_for_preparing(self, job_id: str, now: float) -> bool:
        """Pending -> Preparing (a retried prepare finds it Preparing and goes on). False: not preparable."""
        return self._update(
            job_key(job_id),
            sets={"status": "Preparing", "preparingAt": now},
            condition="attribute_exists(pk) AND #st IN (:pending, :preparing)",
            names={"#st": "status"},
            values={":pending": "Pending", ":preparing": "Preparing"},
        )

    def mark_job_in_progress(self, job_id: str, fields: dict[str, Any]) -> bool:
        return self._update(
            job_key(job_id),
            sets={**fields, "status": "InProgress"},
            condition="#st = :preparing",
            names={"#st": "status"},
            values={":preparing": "Preparing"},
        )

    def record_job_totals(self, job_id: str, totals: dict[str, Any]) -> None:
        self._update(job_key(job_id), sets=dict(totals), condition="attribute_exists(pk)")

    def finish_job(self, job_id: str, status: str, fields: dict[str, Any]) -> bool:
        """Active -> terminal status. False when the job is already terminal (never overwritten)."""
        return self._update(
            job_key(job_id),
            sets={**fields, "status": status},
            removes=("waveToken",),
            condition="#st IN (:p, :pr, :ip)",
            names={"#st": "status"},
            values={":p": "Pending", ":pr": "Preparing", ":ip": "InProgress"},
        )

    def update_finished_job(self, job_id: str, fields: dict[str, Any]) -> None:
        """Counters and finish time on a job that something else (cancel) already made terminal."""
        self._update(job_key(job_id), sets=fields, removes=("waveToken",), condition="attribute_exists(pk)")

    # --- wave token ---------------------------------------------------------------------------------------
    def open_wave(self, job_id: str, wave: int, token: str, fields: dict[str, Any]) -> int | None:
        """Store the wave's task token on the job (only while InProgress) and stamp the wave row.

        Returns the release attempt (1 on the first release of this wave), or None when the job is no longer
        InProgress (canceled): the caller must then fail the token itself.
        """
        opened = self._transact(
            [
                _update_params(
                    self._table_name,
                    job_key(job_id),
                    sets={"waveToken": token, "currentWave": wave},
                    condition="#st = :ip",
                    names={"#st": "status"},
                    values={":ip": "InProgress"},
                ),
                _update_params(
                    self._table_name, wave_key(job_id, wave), sets=fields, adds={"releaseCount": 1}
                ),
            ]
        )
        if not opened:
            return None
        return int((self.get_wave(job_id, wave) or {}).get("releaseCount", 1))

    def claim_wave_token(self, job_id: str, wave: int | None = None) -> str | None:
        """Take the job's current task token exactly once (conditional remove). None: nobody holds one."""
        job = self.get_job(job_id) or {}
        token = job.get("waveToken")
        if not token or (wave is not None and job.get("currentWave") != wave):
            return None
        claimed = self._update(
            job_key(job_id),
            removes=("waveToken",),
            condition="waveToken = :token AND currentWave = :wave",
            values={":token": token, ":wave": job.get("currentWave")},
        )
        return token if claimed else None

    def restore_wave_token(self, job_id: str, wave: int, token: str) -> None:
        """Put back a claimed token whose SendTask* call failed transiently, so a retry can claim it again."""
        self._update(
            job_key(job_id),
            sets={"waveToken": token},
            condition="attribute_not_exists(waveToken) AND currentWave = :wave AND #st = :ip",
            names={"#st": "status"},
            values={":wave": wave, ":ip": "InProgress"},
        )

    def set_wave_fields(self, job_id: str, wave: int, fields: dict[str, Any]) -> None:
        self._update(wave_key(job_id, wave), sets=fields, condition="attribute_exists(pk)")

    # --- robot rows ---------------------------------------------------------------------------------------
    def update_robot_progress(
        self,
        job_id: str,
        robot_name: str,
        *,
        attempt: int,
        seq: int,
        step_index: int,
        progress: dict[str, Any],
        now: float,
    ) -> bool:
        """A non-terminal report; False when the exactly-once conditions reject it (nothing changed)."""
        return self._update(
            robot_deployment_key(job_id, robot_name),
            sets={"progressDetail": progress, "seq": seq, "stepIndex": step_index, "lastReportAt": now},
            condition="#st = :deploying AND " + _REPORT_CONDITION,
            names={"#st": "status"},
            values={
                ":deploying": "Deploying",
                ":attempt": attempt,
                ":seq": seq,
                ":now": now,
                ":step": step_index,
            },
        )

    def finish_robot(
        self,
        job_id: str,
        robot_name: str,
        *,
        status: str,
        fields: dict[str, Any],
        report: dict[str, Any] | None = None,
        now: float | None = None,
        from_statuses: tuple[str, ...] = ("Deploying",),
        count: bool = True,
    ) -> dict[str, Any] | None:
        """Move one robot row into a terminal status (conditional: exactly once), then count it on its wave.

        ``report`` ({attempt, seq, stepIndex}) adds the exactly-once conditions of a robot's own report.
        Returns the row as it is now, or None when the row was not in a state that allows this transition
        (duplicate, stale, late, unknown): then nothing changed.

        The counter is bumped only after the transition succeeded, and the transition succeeds once per
        robot, so a wave counter never counts a robot twice. A crash between the two writes leaves the
        counter one short: the wave then ends on its timeout, whose sweep recounts from the rows. (One
        transaction would make the two writes atomic, but moto copies every table on each transaction,
        which makes the local runtime quadratic in fleet size; under-counting is the safe direction: it can
        delay a wave, never end it early or breach a threshold falsely.)
        """
        values: dict[str, Any] = {f":from{i}": s for i, s in enumerate(from_statuses)}
        condition = f"#st IN ({', '.join(values)})"
        if report is not None:
            condition += " AND " + _REPORT_CONDITION
            values.update(
                {
                    ":attempt": report["attempt"],
                    ":seq": report["seq"],
                    ":now": now,
                    ":step": report["stepIndex"],
                }
            )
        row = self._update_returning(
            robot_deployment_key(job_id, robot_name),
            sets={**fields, "status": status},
            condition=condition,
            names={"#st": "status"},
            values=values,
        )
        if row is not None and count:
            self._update(wave_key(job_id, int(row.get("wave", 0))), adds={COUNTER_FOR_STATUS[status]: 1})
        return row

    # --- robot and fleet entities -------------------------------------------------------------------------
    def update_robot_entity(
        self, robot_name: str, fleet_name: str | None, fields: dict[str, Any], job_arn: str | None = None
    ) -> bool:
        """Status/last deployment on the robot itself, only while it still exists in this fleet.

        ``job_arn``: only while the robot's last deployment is still that job, so that a late report of an
        older job never overwrites what a newer job did to the robot.
        """
        if not fleet_name:
            return False  # a Greengrass deployment to a robot outside any fleet: the robot row is not its
        condition = "attribute_exists(pk) AND fleetName = :fleet"
        values = {":fleet": fleet_name}
        if job_arn:
            condition += " AND lastDeploymentJob = :job"
            values[":job"] = job_arn
        return self._update(
            {"pk": f"ROBOT#{robot_name}", "sk": "ROBOT"}, sets=fields, condition=condition, values=values
        )

    def settle_robot_after_timeout(
        self, robot_name: str, fleet_name: str | None, job_arn: str, fields: dict[str, Any]
    ) -> bool:
        """A robot that timed out in ``job_arn`` finished it after all: its own row takes the outcome, once.

        Only while the robot is still NoResponse from that job (its last deployment, still in this fleet):
        a duplicate report, or one of an older job, finds the condition false and changes nothing.
        """
        if not fleet_name:
            return False
        return self._update(
            {"pk": f"ROBOT#{robot_name}", "sk": "ROBOT"},
            sets=fields,
            condition=(
                "attribute_exists(pk) AND fleetName = :fleet AND lastDeploymentJob = :job AND #st = :silent"
            ),
            names={"#st": "status"},
            values={":fleet": fleet_name, ":job": job_arn, ":silent": "NoResponse"},
        )

    def update_robot_entities(self, updates: list[tuple[str, str, dict[str, Any], str | None]]) -> None:
        """Many robot updates, in parallel: one UpdateItem each (DynamoDB has no batch update)."""
        if len(updates) <= 1 or self._workers <= 1:
            for update in updates:
                self.update_robot_entity(*update)
            return
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            list(pool.map(lambda update: self.update_robot_entity(*update), updates))

    def finish_fleet_deployment(self, fleet_name: str, job_id: str, fields: dict[str, Any]) -> bool:
        """Record the fleet's last deployment and drop its lock when the lock is still this job's.

        When cancel already dropped the lock, the last-deployment fields are still written unless a newer job
        holds the fleet now (that job is the fleet's last deployment, not this one). True: lock released here.
        """
        key = {"pk": f"FLEET#{fleet_name}", "sk": "FLEET"}
        if self._update(
            key,
            sets=fields,
            removes=("activeJobId",),
            condition="activeJobId = :job",
            values={":job": job_id},
        ):
            return True
        self._update(key, sets=fields, condition="attribute_exists(pk) AND attribute_not_exists(activeJobId)")
        return False
