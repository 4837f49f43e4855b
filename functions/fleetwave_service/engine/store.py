"""DynamoDB access for the rollout engine (docs/storage.md, docs/rollout.md), on core/dynamo.py.

Rows this module writes, all under the job's partition ``JOB#<id>`` (so they share its TTL):
- ``JOB``: engine attributes on the job row (status transitions, counters, ``waveToken``, ``currentWave``).
- ``ROBOT#<name>``: one robot's deployment in this job; the API returns it as ``robotDeploymentSummary``.
  In a plan of waves a robot has none until its first write of its own (its first report, its outcome,
  the sweep, finalize): until then it is "planned", one entry of a ``PLAN#`` row.
- ``PLAN#<n:06>#<k:06>``: chunk k of wave n's robots (name, arn, architecture, in name order), written by
  prepare instead of a ``ROBOT#`` row per robot (``plan_chunks``); the wave's row lists each chunk's first
  name (``chunks``). Readers show a planned robot as the ``ROBOT#`` row prepare used to write
  (PendingNewDeployment, then Deploying once its wave is released: ``as_released``).
- ``WAVE#<n:06>``: one wave: ``size``, the counters ``succeededCount``/``failedCount``/``noResponseCount``,
  and where its robots are (``wave_members``): the range of robot names its ``ROBOT#`` rows fall in
  (``firstRobot``/``lastRobot``, plans in waves), or its range of the queue (``queueStart``/``size``,
  queued plans), so a step reads one wave's robots without reading the whole job (cost O(N) per
  deployment, not O(N x waves)) and without a row per member.
- ``QUEUE#<position:09>``: a target waiting for its batch (queued plans, engine/policy.py ``Plan``).
- ``MEMBER#<n:06>#<name>``: a robot of wave n, written by earlier versions instead of the ranges above
  (still read for jobs that were started before).
And on a robot's own row (``ROBOT#<name>`` / ``ROBOT``) its status as its deployments go, and what its
agent says of itself (``applicationHealth``, ``connectivity``: engine/robot_messages.py).

Rows read here come without their keys, and a row past its ``expiresAt`` is not returned (TTL deletion
lags by days). A robot row moves into a terminal state with one conditional write, and only that success
bumps the wave's counter: counters never count a robot twice (they can only fall short, see
``finish_robot``).
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fleetwave_service.core import dynamo, keys
from fleetwave_service.core.dynamo import KeyLike, Row
from fleetwave_service.core.ids import now as clock_now
from fleetwave_service.core.keys import job_key, robot_deployment_key, robot_key, wave_key

# A job as a robot's own row records it as its last deployment: its arn and its creation time.
JobRef = tuple[str, Any]
COUNTER_FOR_STATUS = {"InSync": "succeededCount", "Failed": "failedCount", "NoResponse": "noResponseCount"}
# A held rollout (approval gate or pause): its task token, why it waits, the wave it waits before.
HOLD_ATTRIBUTES = ("holdToken", "holdReason", "holdWave")
HOLD_FOR_APPROVAL = "approval"
HOLD_FOR_PAUSE = "pause"
# What only an active job shows: gone once it is finished, however it finished.
_ACTIVE_ONLY_ATTRIBUTES = ("waveToken", *HOLD_ATTRIBUTES, "waitingForApproval", "paused", "pausedAt")
# A job's statuses while its rollout runs (core/wire.py's, whose pydantic the steps never load).
ACTIVE_STATUSES = ("Pending", "Preparing", "InProgress")
_ACTIVE = dict(zip((":p", ":pr", ":ip"), ACTIVE_STATUSES, strict=True))
_IS_ACTIVE = "#st IN (:p, :pr, :ip)"


def _unchanged(row: Row) -> tuple[str, dict[str, Any]]:
    """A condition that holds while a Deploying robot row is still as it was read: same attempt, same seq.

    A robot's report is checked against its row as read (engine/reports.py: its live attempt, a newer seq, a
    step that does not go backwards, before its deadline); the write then applies it only if nothing moved
    the row meanwhile. Everything that moves a Deploying row changes its status (outcome, sweep, finalize),
    its attempt (a new release) or its seq (another report), so this is the same guarantee as checking the
    rules in the write itself, with a smaller condition.
    """
    if row.get(RELEASED_BY_WAVE):
        # Deploying by its wave's release, not yet written since (``as_released``): still so.
        return "#st = :pending AND attribute_not_exists(seq)", {":pending": "PendingNewDeployment"}
    values: dict[str, Any] = {":deploying": "Deploying", ":attempt": row.get("attempt", 0)}
    if row.get("seq") is None:
        return "#st = :deploying AND attempt = :attempt AND attribute_not_exists(seq)", values
    return "#st = :deploying AND attempt = :attempt AND seq = :read_seq", {**values, ":read_seq": row["seq"]}


# Marks a robot deployment row that ``as_released`` made Deploying (its stored status is still pending).
RELEASED_BY_WAVE = "releasedByWave"
# Marks a robot deployment row read from its wave's plan (``PLAN#``): the robot has no row of its own yet.
PLANNED = "planned"
# What a planned robot's first write stores besides its news: what prepare used to write on its row.
_PLANNED_FIELDS = ("robotName", "arn", "architecture", "wave", "expiresAt")
# How much of robots' names, arns and architectures a plan row holds at most. DynamoDB: an item is at most
# 400 KB; a write costs a unit per KB (a row per robot: at least one each), a strongly consistent read a unit
# per 4 KB. The wave's row lists each plan row's first name: at 64 KB, even robots with 255-character names
# (about 100 to a plan row) leave room in it for waves of 150,000 robots.
PLAN_CHUNK_BYTES = 64 * 1024


def releases_in_place(wave: Row) -> bool:
    """Whether a wave's release writes nothing per robot: its robots' rows are the plan's rows (they carry
    the wave's number from prepare), and the wave's row says when it was released (``as_released``).
    Queued plans (Greengrass) and waves planned by earlier versions (``MEMBER#`` rows) mark each robot."""
    return "firstRobot" in wave


def as_released(row: Row, waves: Mapping[int, Row]) -> Row:
    """A robot deployment row as its wave's release left it.

    The release of a wave writes one row, the wave's (its attempt, the robots' deadline, ``releasedAt``),
    not one per robot: a robot of a released wave whose row is still PendingNewDeployment is Deploying,
    with the wave's attempt, deadline and start, and no report yet. The robot's first write of its own (its
    first report, its outcome, the sweep, finalize) then stores its status; the wave's attempt, deadline and
    start fill in what that write did not store. ``waves``: the job's wave rows by number.
    """
    wave = waves.get(int(row.get("wave", 0) or 0))
    if wave is None or "releasedAt" not in wave or not releases_in_place(wave):
        return row
    released = {
        "attempt": int(wave.get("attempt", 1)),
        "deadline": wave.get("robotDeadline"),
        "deploymentStartTime": wave["releasedAt"],
    }
    if row.get("status") == "PendingNewDeployment":
        return {
            **row,
            **released,
            "status": "Deploying",
            "seq": -1,
            "progressDetail": {"percentDone": 0.0},
            RELEASED_BY_WAVE: True,
        }
    return {**released, **row}


def all_as_released(rows: list[Row], read_waves: Callable[[list[int]], Iterable[Row]]) -> list[Row]:
    """One job's robot deployment rows ``as_released``. ``read_waves(numbers)`` reads those wave rows of the
    job, by key (a query of the job's partition would read every robot row on the way, in moto); called
    only for the waves of rows that may need them (rows with no start of their own)."""
    numbers = sorted(
        {int(row["wave"]) for row in rows if "deploymentStartTime" not in row and row.get("wave")}
    )
    if not numbers:
        return rows
    waves = {int(wave.get("wave", 0)): wave for wave in read_waves(numbers)}
    return [as_released(row, waves) for row in rows]


def _first_own_write(read: Row) -> dict[str, Any]:
    """What a robot's first write of its own stores of its plan and its release (``as_released``): a planned
    robot's row then holds what prepare used to write, and a row made Deploying by its wave its status,
    attempt, deadline and start like a row the release wrote."""
    planned = _planned_fields(read)
    if not read.get(RELEASED_BY_WAVE):
        return planned
    fields = ("status", "attempt", "deadline", "deploymentStartTime")
    return {**planned, **{name: read[name] for name in fields if read.get(name) is not None}}


def _planned_fields(read: Row) -> dict[str, Any]:
    """What prepare used to write on a planned robot's row (nothing for a robot with a row of its own)."""
    if not read.get(PLANNED):
        return {}
    return {name: read[name] for name in _PLANNED_FIELDS if read.get(name) is not None}


def plan_chunks(
    job: Row, wave: int, robots: list[Row], plan_id: str
) -> tuple[dict[str, Any], list[tuple[keys.Key, Row]]]:
    """A wave's robots as plan rows: (what the wave's row says of its members, the ``PLAN#`` rows).

    In name order, cut into chunks of at most ``PLAN_CHUNK_BYTES`` (a robot's name, arn and architecture):
    the wave's row lists each chunk's first name (``chunks``), so a robot's chunk is found by its name
    without reading the others (``chunks_holding``). ``plan_id``: the prepare run's, on the wave's row and
    every plan row (``RolloutStore._plan_rows`` keeps plan rows it read by it).
    """
    ordered = sorted(robots, key=lambda robot: str(robot["name"]))
    chunks: list[list[list[Any]]] = []
    size = PLAN_CHUNK_BYTES
    for robot in ordered:
        entry = [robot["name"], robot["arn"], *([robot["architecture"]] if robot.get("architecture") else [])]
        weight = sum(len(str(value).encode()) + 8 for value in entry)
        if size + weight > PLAN_CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += weight
    members = {
        **wave_members_of([str(robot["name"]) for robot in ordered]),
        "chunks": [chunk[0][0] for chunk in chunks],
        "planId": plan_id,
    }
    rows = [
        (
            keys.plan_key(job["id"], wave, index),
            {"wave": wave, "chunk": index, "robots": chunk, "planId": plan_id, "expiresAt": job["expiresAt"]},
        )
        for index, chunk in enumerate(chunks)
    ]
    return members, rows


def planned_rows(plan: Row) -> Iterator[Row]:
    """The robots of a ``PLAN#`` row as the ``ROBOT#`` rows prepare used to write (``PLANNED``)."""
    for entry in plan.get("robots") or []:
        yield {
            "robotName": entry[0],
            "arn": entry[1],
            "architecture": entry[2] if len(entry) > 2 else None,
            "wave": int(plan["wave"]),
            "status": "PendingNewDeployment",
            "expiresAt": plan.get("expiresAt"),
            PLANNED: True,
        }


def with_planned(rows: Iterable[Row], plans: Iterable[Row], wanted: Iterable[str] | None = None) -> list[Row]:
    """A job's robot deployment rows and its planned robots that have none of their own yet, in name order
    (``wanted``: only these robots)."""
    stored = {str(row["robotName"]): row for row in rows if row.get("robotName")}
    names = None if wanted is None else set(wanted)
    merged = dict(stored)
    for plan in plans:
        for row in planned_rows(plan):
            name = str(row["robotName"])
            if name not in stored and (names is None or name in names):
                merged[name] = row
    return [merged[name] for name in sorted(merged)]


def chunks_holding(waves: Iterable[Row], robot_names: Iterable[str]) -> list[tuple[int, int]]:
    """(wave, chunk) of the plan rows that may hold one of ``robot_names``: in a wave whose range of names
    holds the name, the last plan row whose first name is not after it."""
    found: set[tuple[int, int]] = set()
    names = set(robot_names)
    for wave in waves:
        firsts = wave.get("chunks") or []
        if not firsts:
            continue
        for name in names:
            if wave["firstRobot"] <= name <= wave["lastRobot"]:
                found.add((int(wave["wave"]), bisect.bisect_right(firsts, name) - 1))
    return sorted(found)


class _LastRead:
    """The last ``size`` rows read by key, for rows that never change once written (plan rows)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._rows: OrderedDict[tuple[Any, ...], Row] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Row | None:
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                self._rows.move_to_end(key)
            return row

    def put(self, key: tuple[Any, ...], row: Row) -> None:
        with self._lock:
            self._rows[key] = row
            self._rows.move_to_end(key)
            while len(self._rows) > self._size:
                self._rows.popitem(last=False)


# 64 plan rows of at most 64 KB each: a few MB, the plans of the jobs this process serves now (a wave of
# 10,000 robots with 20-character names takes about 20).
_PLAN_CACHE = _LastRead(64)


def wave_members_of(robot_names: list[str]) -> dict[str, Any]:
    """What a wave's row says of its robots in a plan of waves: how many, and the range of their names."""
    return {"size": len(robot_names), "firstRobot": min(robot_names), "lastRobot": max(robot_names)}


def queue_members_of(start: int, size: int) -> dict[str, Any]:
    """What a batch's row says of its robots in a queued plan: its range of the queue."""
    return {"size": size, "queueStart": start}


class RolloutStore:
    """The engine's repository over the one Fleetwave table."""

    def __init__(self, table_name: str, workers: int = 8) -> None:
        self._table_name = table_name
        self._workers = workers

    # --- reading ------------------------------------------------------------------------------------------
    @staticmethod
    def _live(row: Row | None, at: float | None = None) -> Row | None:
        if row is None or dynamo.is_expired(row, clock_now() if at is None else at):
            return None
        return dynamo.without_keys(row)

    def _get(self, key: keys.Key) -> Row | None:
        return self._live(dynamo.get(*key, table=self._table_name))

    def _query(
        self,
        condition: str,
        values: Mapping[str, Any],
        *,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
    ) -> Iterator[Row]:
        """The job partition's rows matching ``condition`` (consistent reads), page by page."""
        kwargs: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": {k: dynamo.attribute_value(v) for k, v in values.items()},
            "ConsistentRead": True,
        }
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        if names:
            kwargs["ExpressionAttributeNames"] = names
        for page, _ in dynamo.query_pages(**kwargs):
            now = clock_now()
            for row in page:
                live = self._live(row, now)
                if live is not None:
                    yield live

    def batch_get(self, row_keys: list[KeyLike]) -> list[Row]:
        now = clock_now()
        rows = (self._live(row, now) for row in dynamo.batch_get(row_keys, table=self._table_name))
        return [row for row in rows if row is not None]

    def get_job(self, job_id: str) -> Row | None:
        return self._get(job_key(job_id))

    def _as_released(self, job_id: str, rows: list[Row]) -> list[Row]:
        return all_as_released(rows, lambda numbers: self.batch_get([wave_key(job_id, n) for n in numbers]))

    def _plans(self, job_id: str) -> list[Row]:
        """Every ``PLAN#`` row of the job (none in queued plans and jobs planned by earlier versions)."""
        prefix = keys.PLAN_PREFIX
        return list(
            self._query(
                "pk = :pk AND begins_with(sk, :prefix)",
                {":pk": keys.job_partition(job_id), ":prefix": prefix},
            )
        )

    def job_robot_deployments(self, job_id: str, statuses: Iterable[str] = ()) -> Iterator[Row]:
        """The job's robot deployment rows as released (``as_released``), planned robots included, in name
        order; those in ``statuses`` if given."""
        wanted = list(statuses)
        values: dict[str, Any] = {":pk": keys.job_partition(job_id), ":prefix": keys.ROBOT_PREFIX}
        plans = self._plans(job_id)
        filter_expression = None
        names = None
        if wanted and not plans:
            # A Deploying robot's row may still say PendingNewDeployment (its wave's release wrote none).
            # (With plan rows every robot row is read: a planned robot is one with no row.)
            stored = [*wanted, "PendingNewDeployment"] if "Deploying" in wanted else wanted
            stored = list(dict.fromkeys(stored))
            values.update({f":w{i}": status for i, status in enumerate(stored)})
            filter_expression = f"#st IN ({', '.join(f':w{i}' for i in range(len(stored)))})"
            names = {"#st": "status"}
        rows = self._query(
            "pk = :pk AND begins_with(sk, :prefix)", values, filter_expression=filter_expression, names=names
        )
        released = self._as_released(job_id, with_planned(rows, plans) if plans else list(rows))
        return iter([row for row in released if not wanted or row.get("status") in wanted])

    def get_robot_deployment(self, job_id: str, robot_name: str) -> Row | None:
        return self._robot_rows(job_id, [robot_name]).get(robot_name)

    def robot_deployments(self, job_id: str, robot_names: Iterable[str]) -> dict[str, Row]:
        """These robots' rows in the job (as released: ``as_released``; planned robots included), by robot
        name (consistent reads, 100 per request); robots the job does not target are absent."""
        return self._robot_rows(job_id, robot_names)

    def _robot_rows(self, job_id: str, robot_names: Iterable[str]) -> dict[str, Row]:
        names = list(dict.fromkeys(robot_names))
        rows = self.batch_get([robot_deployment_key(job_id, name) for name in names])
        found = {row.get("robotName") for row in rows}
        missing = [name for name in names if name not in found]
        if not missing:
            released = self._as_released(job_id, rows)
        else:
            waves = self.waves(job_id)
            by_number = {int(wave.get("wave", 0)): wave for wave in waves}
            rows = [*rows, *self._planned(job_id, missing, waves)]
            released = all_as_released(
                rows, lambda numbers: [by_number[n] for n in numbers if n in by_number]
            )
        return {row["robotName"]: row for row in released if row.get("robotName")}

    def _planned(self, job_id: str, robot_names: list[str], waves: list[Row]) -> list[Row]:
        """The planned robots among ``robot_names`` (no row of their own), read from their plan rows: the
        job's ``waves`` say which chunk may hold each name."""
        where = chunks_holding(waves, robot_names)
        if not where:
            return []
        plan_ids = {int(wave.get("wave", 0)): wave.get("planId") for wave in waves}
        plans = self._plan_rows(job_id, [(wave, chunk, plan_ids.get(wave)) for wave, chunk in where])
        return with_planned([], plans, robot_names)

    def _plan_rows(self, job_id: str, where: list[tuple[int, int, str | None]]) -> list[Row]:
        """The plan rows (wave, chunk) of the prepare run ``plan id`` (their wave row's), by key.

        A prepare run's plan rows never change (a retried prepare writes its own, under a new id), so this
        process keeps the last ones it read (``_PLAN_CACHE``): the status path reads a wave's plan for each
        batch of first reports. A row read while a retried prepare rewrites it (another id) is used, not kept.
        """
        found: list[Row] = []
        wanted: list[tuple[int, int, str | None]] = []
        for wave, chunk, plan_id in where:
            cached = _PLAN_CACHE.get((self._table_name, job_id, wave, chunk, plan_id)) if plan_id else None
            if cached is not None:
                found.append(cached)
            else:
                wanted.append((wave, chunk, plan_id))
        if wanted:
            rows = self.batch_get([keys.plan_key(job_id, wave, chunk) for wave, chunk, _ in wanted])
            plan_ids = {(wave, chunk): plan_id for wave, chunk, plan_id in wanted}
            for row in rows:
                place = (int(row.get("wave", 0)), int(row.get("chunk", -1)))
                plan_id = plan_ids.get(place)
                if plan_id and row.get("planId") == plan_id:
                    _PLAN_CACHE.put((self._table_name, job_id, *place, plan_id), row)
                found.append(row)
        return found

    def wave_members(self, job_id: str, wave: int) -> list[Row]:
        """The robots of a wave (``robotName``, ``arn``, ``architecture``): found where its row says."""
        return self._wave_rows(job_id, wave, self.get_wave(job_id, wave) or {})[0]

    def _wave_rows(self, job_id: str, wave: int, row: Row) -> tuple[list[Row], bool]:
        """(the wave's members, whether they are its robot deployment rows themselves); ``row``: its row."""
        partition = keys.job_partition(job_id)
        if "firstRobot" in row:
            stored = self._query(
                "pk = :pk AND sk BETWEEN :first AND :last",
                {
                    ":pk": partition,
                    ":first": robot_deployment_key(job_id, row["firstRobot"]).sk,
                    ":last": robot_deployment_key(job_id, row["lastRobot"]).sk,
                    ":wave": wave,
                },
                # Robots that failed before release (wave 0) may fall in the range: rows of this wave only.
                filter_expression="#wave = :wave",
                names={"#wave": "wave"},
            )
            chunks = len(row.get("chunks") or [])
            if not chunks:
                return list(stored), True
            plans = self._plan_rows(job_id, [(wave, index, row.get("planId")) for index in range(chunks)])
            return with_planned(stored, plans), True
        if "queueStart" in row:
            queued = self.queued_robots(job_id, int(row["queueStart"]), int(row.get("size", 0)))
            return [{**member, "wave": wave} for member in queued], False
        members = self._query(
            "pk = :pk AND begins_with(sk, :prefix)", {":pk": partition, ":prefix": keys.member_prefix(wave)}
        )
        return list(members), False

    def queued_robots(self, job_id: str, start: int, count: int) -> list[Row]:
        """The queued targets at positions start .. start + count - 1 (one query)."""
        if count <= 0:
            return []
        return list(
            self._query(
                "pk = :pk AND sk BETWEEN :first AND :last",
                {
                    ":pk": keys.job_partition(job_id),
                    ":first": keys.queue_key(job_id, start).sk,
                    ":last": keys.queue_key(job_id, start + count - 1).sk,
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

    def wave_robot_deployments(self, job_id: str, wave: int) -> list[Row]:
        """The wave's robot deployment rows, as released (``as_released``) by the wave's row as read once."""
        wave_row = self.get_wave(job_id, wave) or {}
        members, are_rows = self._wave_rows(job_id, wave, wave_row)
        if are_rows:
            # Rows of this wave only (``_wave_rows`` filters the range on it): its row is the one they need.
            return all_as_released(members, lambda numbers: [wave_row])
        return list(self.robot_deployments(job_id, [m["robotName"] for m in members]).values())

    def get_wave(self, job_id: str, wave: int) -> Row | None:
        return self._get(wave_key(job_id, wave))

    def waves(self, job_id: str) -> list[Row]:
        return list(
            self._query(
                "pk = :pk AND sk BETWEEN :first AND :last",
                {":pk": keys.job_partition(job_id), ":first": keys.FIRST_WAVE_SK, ":last": keys.LAST_WAVE_SK},
            )
        )

    # --- writing helpers ----------------------------------------------------------------------------------
    def _update(self, key: KeyLike, **kwargs: Any) -> bool:
        """One conditional UpdateItem; False when its condition does not hold."""
        return dynamo.update(key, table=self._table_name, **kwargs)

    def _update_returning(self, key: KeyLike, **kwargs: Any) -> Row | None:
        """One conditional UpdateItem returning the row as it is now; None when its condition fails."""
        row = dynamo.update_returning(key, table=self._table_name, **kwargs)
        return None if row is None else dynamo.without_keys(row)

    def put_rows(self, rows: Iterable[tuple[KeyLike, Mapping[str, Any]]]) -> int:
        """Batch-write whole rows, 25 per request, retrying what DynamoDB leaves unprocessed."""
        return dynamo.put_rows(rows, table=self._table_name)

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
            removes=_ACTIVE_ONLY_ATTRIBUTES,
            condition=_IS_ACTIVE,
            names={"#st": "status"},
            values=_ACTIVE,
        )

    def update_status(
        self, job_id: str, status: str, from_statuses: tuple[str, ...], fields: dict[str, Any] | None = None
    ) -> bool:
        """Move a job to ``status`` (and set ``fields``) only from one of ``from_statuses``: a front door's
        cancel (Canceled), or a start that failed (Failed). The wave token stays for the cancel hook."""
        allowed = {f":from{i}": value for i, value in enumerate(from_statuses)}
        return self._update(
            job_key(job_id),
            sets={"status": status, **(fields or {})},
            condition=f"#status IN ({', '.join(allowed)})",
            names={"#status": "status"},
            values=allowed,
        )

    def update_finished_job(self, job_id: str, fields: dict[str, Any]) -> None:
        """Counters and finish time on a job that something else (cancel) already made terminal."""
        self._update(
            job_key(job_id), sets=fields, removes=_ACTIVE_ONLY_ATTRIBUTES, condition="attribute_exists(pk)"
        )

    # --- wave token ---------------------------------------------------------------------------------------
    def open_wave(self, job_id: str, wave: int, token: str, fields: dict[str, Any]) -> Row | None:
        """Store the wave's task token on the job (only while InProgress) and return the wave row as released.

        The first release of a wave stamps ``fields`` on its row (``releasedAt`` marks it); a retried release
        (Step Functions retries the step with a new token) only replaces the token and counts the release,
        and gets the first release's row back, so it re-sends the same commands (same attempt, deadline).
        None when the job is no longer InProgress (canceled): the caller must then fail the token itself.
        """
        opened = dynamo.transact_updates(
            [
                dynamo.update_params(
                    job_key(job_id),
                    sets={"waveToken": token, "currentWave": wave},
                    # The gate before this wave, if any, was passed.
                    removes=("waitingForApproval",),
                    condition="#st = :ip",
                    names={"#st": "status"},
                    values={":ip": "InProgress"},
                    table=self._table_name,
                ),
                dynamo.update_params(
                    wave_key(job_id, wave), adds={"releaseCount": 1}, table=self._table_name
                ),
            ]
        )
        if not opened:
            return None
        first = self._update(
            wave_key(job_id, wave), sets=fields, condition="attribute_not_exists(releasedAt)"
        )
        row = self.get_wave(job_id, wave) or {}
        return {**row, "firstRelease": first}

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

    # --- holds: approval gates and pause (engine/control.py) -----------------------------------------------
    def record_gate(self, job_id: str, wave: int, since: float, deadline: float) -> bool:
        """The rollout reached the approval gate before ``wave``: ``waitingForApproval``, once per gate, so a
        retried evaluate keeps the first clock. False: recorded already, or the job is not InProgress."""
        return self._update(
            job_key(job_id),
            sets={"waitingForApproval": {"wave": wave, "since": since, "deadline": deadline}},
            condition=(
                "#st = :ip AND (attribute_not_exists(waitingForApproval) OR waitingForApproval.wave <> :wave)"
            ),
            names={"#st": "status"},
            values={":ip": "InProgress", ":wave": wave},
        )

    def approve_wave(self, job_id: str, wave: int) -> bool:
        """Record ``wave`` as approved (a set: approving it again changes nothing) and stop showing the job as
        waiting for it. False: the job is no longer active."""
        approved = self._update(
            job_key(job_id),
            adds={"approvedWaves": {wave}},
            condition=_IS_ACTIVE,
            names={"#st": "status"},
            values=_ACTIVE,
        )
        if approved:
            self._update(
                job_key(job_id),
                removes=("waitingForApproval",),
                condition="waitingForApproval.wave = :wave",
                values={":wave": wave},
            )
        return approved

    def set_paused(self, job_id: str, paused: bool, now: float) -> bool:
        """Pause (``paused`` true, ``pausedAt``) or resume an active job. False when nothing changed: it
        already was so, or it is no longer active (the caller reads the job to tell which)."""
        if paused:
            return self._update(
                job_key(job_id),
                sets={"paused": True, "pausedAt": now},
                condition=f"{_IS_ACTIVE} AND attribute_not_exists(paused)",
                names={"#st": "status"},
                values=_ACTIVE,
            )
        return self._update(
            job_key(job_id),
            removes=("paused", "pausedAt"),
            condition=f"{_IS_ACTIVE} AND attribute_exists(paused)",
            names={"#st": "status"},
            values=_ACTIVE,
        )

    def open_hold(self, job_id: str, token: str, reason: str, wave: int) -> bool:
        """Store the hold's task token while its reason still holds: the job InProgress and, for an approval,
        ``wave`` not approved yet; for a pause, the job still paused. False: the caller ends the wait itself
        (an approval or resume, or a cancel, got in first)."""
        values: dict[str, Any] = {":ip": "InProgress"}
        if reason == HOLD_FOR_APPROVAL:
            still, values[":wave"] = "NOT contains(approvedWaves, :wave)", wave
        else:
            still = "attribute_exists(paused)"
        return self._update(
            job_key(job_id),
            sets={"holdToken": token, "holdReason": reason, "holdWave": wave},
            condition=f"#st = :ip AND {still}",
            names={"#st": "status"},
            values=values,
        )

    def claim_hold_token(
        self, job_id: str, reason: str | None = None, wave: int | None = None
    ) -> tuple[str, int] | None:
        """Take the held token exactly once (conditional remove), only when the job is held for ``reason``
        (and before ``wave``); any hold when they are None. Returns (token, the wave it holds before), or
        None: no such hold."""
        job = self.get_job(job_id) or {}
        token = job.get("holdToken")
        if not token or reason not in (None, job.get("holdReason")):
            return None
        if wave is not None and job.get("holdWave") != wave:
            return None
        claimed = self._update(
            job_key(job_id),
            removes=HOLD_ATTRIBUTES,
            condition="holdToken = :token",
            values={":token": token},
        )
        return (token, int(job.get("holdWave", 0))) if claimed else None

    def restore_hold_token(self, job_id: str, token: str, reason: str, wave: int) -> None:
        """Put back a claimed hold token whose SendTaskSuccess failed transiently, so a retry can claim it."""
        self._update(
            job_key(job_id),
            sets={"holdToken": token, "holdReason": reason, "holdWave": wave},
            condition="attribute_not_exists(holdToken) AND #st = :ip",
            names={"#st": "status"},
            values={":ip": "InProgress"},
        )

    def set_wave_fields(self, job_id: str, wave: int, fields: dict[str, Any]) -> None:
        self._update(wave_key(job_id, wave), sets=fields, condition="attribute_exists(pk)")

    # --- robot rows ---------------------------------------------------------------------------------------
    def update_robot_progress(
        self,
        job_id: str,
        robot_name: str,
        *,
        read: Row,
        seq: int,
        step_index: int,
        progress: dict[str, Any],
        now: float,
        sent_at: float,
    ) -> bool:
        """A non-terminal report accepted against the row as ``read``; False when the row moved since (then
        nothing changed). ``sent_at``: when the robot sent it (its clock), for the next report's interval."""
        return self._write_as_read(
            robot_deployment_key(job_id, robot_name),
            read,
            {
                **_first_own_write(read),
                "progressDetail": progress,
                "seq": seq,
                "stepIndex": step_index,
                "lastReportAt": now,
                "progressSentAt": sent_at,
            },
        )

    def _write_as_read(self, key: keys.Key, read: Row, sets: dict[str, Any]) -> bool:
        """Write ``sets`` on a robot row that must be as ``read`` (``_unchanged``); False when it moved.

        A planned robot's first write puts its whole row, on the condition that it has none yet: the same
        single item write as an UpdateItem, without an update expression of a dozen attributes to evaluate.
        """
        if read.get(PLANNED):
            return self._put_whole(key, sets) is not None
        condition, values = _unchanged(read)
        return self._update(key, sets=sets, condition=condition, names={"#st": "status"}, values=values)

    def _put_whole(self, key: keys.Key, fields: dict[str, Any]) -> Row | None:
        """A planned robot's row, put whole on condition it has none yet: the row as written, or None when
        one exists (written meanwhile)."""
        row = {name: value for name, value in fields.items() if value is not None}
        return row if dynamo.put_new({**row, **key.item()}, table=self._table_name) else None

    def finish_robot(
        self,
        job_id: str,
        robot_name: str,
        *,
        status: str,
        fields: dict[str, Any],
        read: Row | None = None,
        from_statuses: tuple[str, ...] = ("Deploying",),
        count: bool = True,
        as_read: Row | None = None,
    ) -> Row | None:
        """Move one robot row into a terminal status (conditional: exactly once), then count it on its wave.

        ``read``: a robot's own report accepted against the row as read; the row must not have moved since.
        Otherwise the row must be in one of ``from_statuses``; ``as_read``, the row as the caller read it: a
        planned robot's (no row of its own yet, ``PLANNED``) is then written whole if it still has none.
        Returns the row as it is now, or None when the condition did not hold: then nothing changed.

        The counter is bumped only after the transition succeeded, and the transition succeeds once per
        robot, so a wave counter never counts a robot twice. A crash between the two writes leaves the
        counter one short: the wave then ends on its timeout, whose sweep recounts from the rows. (One
        transaction would make the two writes atomic, at twice the write cost in DynamoDB; under-counting is
        the safe direction: it can delay a wave, never end it early or breach a threshold falsely.)
        """
        key, sets = robot_deployment_key(job_id, robot_name), {**fields, "status": status}
        row: Row | None
        if "Deploying" in from_statuses:
            # A robot is Deploying from its wave's release on, while its row may still say pending
            # (``as_released``); callers name Deploying robots they read as such, in released waves.
            from_statuses = tuple(dict.fromkeys((*from_statuses, "PendingNewDeployment")))
        if read is not None:
            sets = {**_first_own_write(read), **sets}
            # The row is known (as read, unchanged since): no need to have it sent back.
            written = self._write_as_read(key, read, sets)
            now_row = {**read, **{k: v for k, v in sets.items() if v is not None}}
            row = {k: v for k, v in now_row.items() if k != PLANNED} if written else None
        else:
            row = None
            if as_read is not None and as_read.get(PLANNED) and "PendingNewDeployment" in from_statuses:
                # Still without a row of its own: its row is put whole (one write, as a report's first);
                # written since (its report came first), it is moved as any row below.
                row = self._put_whole(key, {**_planned_fields(as_read), **sets})
            if row is None:
                values = {f":from{i}": s for i, s in enumerate(from_statuses)}
                row = self._update_returning(
                    key,
                    sets=sets,
                    condition=f"#st IN ({', '.join(values)})",
                    names={"#st": "status"},
                    values=values,
                )
        if row is not None and count:
            self._update(wave_key(job_id, int(row.get("wave", 0))), adds={COUNTER_FOR_STATUS[status]: 1})
        return row

    def add_wave_counts(self, job_id: str, wave: int, counts: Mapping[str, int]) -> None:
        """Count robots that finished on their wave's counters, in one update (``finish_robot(count=False)``
        moved each of them into its terminal status first)."""
        adds = {name: n for name, n in counts.items() if n}
        if adds:
            self._update(wave_key(job_id, wave), adds=adds)

    # --- robot and fleet entities -------------------------------------------------------------------------
    def update_robot_entity(
        self, robot_name: str, fleet_name: str | None, fields: dict[str, Any], job: JobRef | None = None
    ) -> bool:
        """Status on the robot itself, only while it still exists in this fleet.

        ``job``: the deployment the status comes from (its arn and creation time), recorded as the robot's
        last deployment (``lastDeploymentJob``, ``lastDeploymentTime``) unless the robot's last deployment is
        a newer job already: a late outcome of an older job never overwrites what a newer job did to the
        robot. (A fleet runs one RoboMaker job at a time, so creation times order a robot's jobs.)
        """
        if not fleet_name:
            return False  # a Greengrass deployment to a robot outside any fleet: the robot row is not its
        condition = "attribute_exists(pk) AND fleetName = :fleet"
        values: dict[str, Any] = {":fleet": fleet_name}
        if job is not None:
            job_arn, created_at = job
            condition += (
                " AND (lastDeploymentJob = :job OR attribute_not_exists(lastDeploymentTime)"
                " OR lastDeploymentTime < :created)"
            )
            values.update({":job": job_arn, ":created": created_at})
            fields = {**fields, "lastDeploymentJob": job_arn, "lastDeploymentTime": created_at}
        return self._update(robot_key(robot_name), sets=fields, condition=condition, values=values)

    def robots_outside_fleet(self, robot_names: Iterable[str], fleet_name: str) -> list[str]:
        """The robots of ``robot_names`` that are gone, or no longer in ``fleet_name`` (consistent reads)."""
        names = list(robot_names)
        inside = {
            row.get("name")
            for row in self.batch_get([robot_key(name) for name in names])
            if row.get("fleetName") == fleet_name
        }
        return [name for name in names if name not in inside]

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
            robot_key(robot_name),
            sets=fields,
            condition=(
                "attribute_exists(pk) AND fleetName = :fleet AND lastDeploymentJob = :job AND #st = :silent"
            ),
            names={"#st": "status"},
            values={":fleet": fleet_name, ":job": job_arn, ":silent": "NoResponse"},
        )

    def update_robot_entities(
        self, updates: list[tuple[str, str | None, dict[str, Any], JobRef | None]]
    ) -> list[str]:
        """Many robot updates, in parallel: one UpdateItem each (DynamoDB has no batch update). Returns the
        robots whose condition did not hold (gone from the fleet, or a newer job's)."""
        if len(updates) <= 1 or self._workers <= 1:
            applied = [self.update_robot_entity(*update) for update in updates]
        else:
            with ThreadPoolExecutor(max_workers=self._workers) as pool:
                applied = list(pool.map(lambda update: self.update_robot_entity(*update), updates))
        return [update[0] for update, done in zip(updates, applied, strict=True) if not done]

    # --- what robots say about themselves -----------------------------------------------------------------
    # Kept on the robot row with a condition on the time the robot (or the service, for a last will) stamped
    # them, so a report that arrives late (QoS 1 redelivery, an outbox replayed after a restart) never
    # overwrites a newer one; and only while the robot exists, so a deleted robot's report does not bring
    # its row back.
    def _record_robot_attribute(self, robot_name: str, attribute: str, value: dict[str, Any]) -> bool:
        # ``<=``, not ``<``: the same report delivered again (SQS redelivers a record whose handling failed
        # after this write) is applied again, so what the handler does after it is not skipped as stale.
        return self._update(
            robot_key(robot_name),
            sets={attribute: value},
            condition="attribute_exists(pk) AND (attribute_not_exists(#a) OR #a.updatedAt <= :at)",
            names={"#a": attribute},
            values={":at": value["updatedAt"]},
        )

    def record_health(self, robot_name: str, health: dict[str, Any]) -> bool:
        """Keep the robot's application health (``updatedAt`` required); False when older than the one
        kept. The same report again is kept again (idempotent), so its follow-up writes happen on a retry."""
        return self._record_robot_attribute(robot_name, "applicationHealth", health)

    def record_component_states(self, robot_name: str, states: dict[str, Any]) -> bool:
        """Keep the lifecycle states of the robot's Greengrass components (``updatedAt`` required, the
        robot's time of the snapshot); False when older than the one kept."""
        return self._record_robot_attribute(robot_name, "componentStates", states)

    def record_connectivity(self, robot_name: str, connectivity: dict[str, Any]) -> bool:
        """Keep whether the robot's agent is connected (``updatedAt`` required)."""
        return self._record_robot_attribute(robot_name, "connectivity", connectivity)

    def mark_not_running(self, robot_name: str, job_arn: str) -> bool:
        """An InSync robot whose application of its last deployment (``job_arn``) no longer runs is Failed,
        remembering why (``healthFailedJob``); False when the robot is not InSync with that job."""
        return self._update(
            robot_key(robot_name),
            sets={"status": "Failed", "healthFailedJob": job_arn},
            condition="attribute_exists(pk) AND lastDeploymentJob = :job AND #st = :insync",
            names={"#st": "status"},
            values={":job": job_arn, ":insync": "InSync"},
        )

    def mark_running_again(self, robot_name: str, job_arn: str) -> bool:
        """Undo `mark_not_running` once that application runs again (never a deployment's own failure)."""
        return self._update(
            robot_key(robot_name),
            sets={"status": "InSync"},
            removes=("healthFailedJob",),
            condition=(
                "attribute_exists(pk) AND lastDeploymentJob = :job AND #st = :failed"
                " AND healthFailedJob = :job"
            ),
            names={"#st": "status"},
            values={":job": job_arn, ":failed": "Failed"},
        )
