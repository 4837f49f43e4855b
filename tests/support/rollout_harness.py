"""Simulated robots and a driver for rollouts executed by moto (the real ASL, Lambda steps in process).

Robots sit behind the FakeRobotChannel. Their reports are queued when a command arrives (in the state
machine's thread, inside the release step) and delivered by the test's thread through the real status
handler, as an SQS batch shaped like the IoT rule -> SQS path delivers it:

    robots.behave("r-1", fail_at("DownloadingExtracting", "ExtractingBundleFailure"))
    robots.behave("r-2", HOLD)            # received, then nothing until robots.finish("r-2")
    robots.behave("r-3", SILENT)          # never answers
    job = driver.run(fleet, version, deploymentConfig={...})   # CreateDeploymentJob, pump, Describe
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleetwave_service.engine.messages import AbortCommand, DeploymentCommand, ProgressStep

STEPS = [step.value for step in ProgressStep]
# Generous bounds for a rollout to finish in moto: they only stop a broken test from hanging.
RUN_LIMIT_SECONDS = 90.0


@dataclass(frozen=True)
class Behaviour:
    kind: str  # "succeed" | "fail" | "silent" | "hold"
    fail_step: str | None = None
    failure_code: str | None = None


SUCCEED = Behaviour("succeed")
SILENT = Behaviour("silent")
HOLD = Behaviour("hold")


def fail_at(step: str, failure_code: str) -> Behaviour:
    return Behaviour("fail", fail_step=step, failure_code=failure_code)


def report(job_id: str, attempt: int, seq: int, step: str, status: str = "Deploying", **extra: Any) -> dict:
    index = STEPS.index(step)
    return {
        "schemaVersion": "1",
        "jobId": job_id,
        "attempt": attempt,
        "seq": seq,
        "step": step,
        "status": status,
        "percentDone": 100.0 if status == "InSync" else round(index * 100 / (len(STEPS) - 1), 1),
        "estimatedTimeRemainingSeconds": (len(STEPS) - 1 - index) * 5,
        "sentAt": time.time(),
        **extra,
    }


def reports_for(behaviour: Behaviour, command: DeploymentCommand) -> list[dict]:
    """What a robot with this behaviour publishes for a command, in order."""
    if behaviour.kind == "succeed":
        last = len(STEPS) - 1
        progress = [report(command.jobId, command.attempt, seq, STEPS[seq]) for seq in range(last)]
        return progress + [report(command.jobId, command.attempt, last, STEPS[last], "InSync")]
    if behaviour.kind == "fail":
        index = STEPS.index(behaviour.fail_step or STEPS[0])
        progress = [report(command.jobId, command.attempt, seq, STEPS[seq]) for seq in range(index)]
        failed = report(
            command.jobId,
            command.attempt,
            index,
            STEPS[index],
            "Failed",
            failureCode=behaviour.failure_code,
            failureReason=f"simulated failure at {STEPS[index]}",
        )
        return progress + [failed]
    return []


def sqs_event(records: list[tuple[str, dict]]) -> dict:
    """The SQS batch the status handler receives: body = report + robotName (from the topic, by the rule)."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": json.dumps({**payload, "robotName": robot}),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fleetwave-status",
                "awsRegion": "us-east-1",
            }
            for robot, payload in records
        ]
    }


def call_status_handler(records: list[tuple[str, dict]]) -> dict:
    return call_status_handler_event(sqs_event(records))


def call_status_handler_event(event: dict) -> dict:
    from fleetwave_service.handlers import status_handler as lambda_handler

    from fleetwave.local.lambda_adapter import LocalLambdaContext

    context = LocalLambdaContext(
        function_name="fleetwave-status",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:s",
    )
    return lambda_handler(event, context)


@dataclass
class SimulatedRobots:
    """Robots answering commands from a FakeRobotChannel according to their behaviour (default: succeed)."""

    channel: Any
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    timeline: list[tuple[str, str]] = field(default_factory=list)  # ("deploy"|"abort"|"finished", robot)
    held: dict[str, DeploymentCommand] = field(default_factory=dict)
    _pending: list[tuple[str, dict]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # SQS redelivery of failed records (partial batch response); how many records were delivered again.
    redeliver: bool = False
    redelivered: int = 0

    def __post_init__(self) -> None:
        self.channel.on_publish(self._on_command)

    def behave(self, robot: str, behaviour: Behaviour) -> None:
        self.behaviours[robot] = behaviour

    def _on_command(self, robot: str, command: Any) -> None:
        with self._lock:
            if isinstance(command, AbortCommand):
                self.timeline.append(("abort", robot))
                return
            self.timeline.append(("deploy", robot))
            behaviour = self.behaviours.get(robot, SUCCEED)
            if behaviour.kind == "hold":
                self.held[robot] = command
            self._pending.extend((robot, payload) for payload in reports_for(behaviour, command))

    def finish(self, robot: str, behaviour: Behaviour = SUCCEED) -> None:
        """A held robot now answers its command as ``behaviour`` would."""
        with self._lock:
            command = self.held.pop(robot)
            self._pending.extend((robot, payload) for payload in reports_for(behaviour, command))

    def send(self, robot: str, payload: dict) -> None:
        with self._lock:
            self._pending.append((robot, payload))

    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def deliver(self) -> int:
        """Hand every queued report to the status handler (one SQS batch); returns how many.

        With ``redeliver`` set, the records the handler reports as failed (``batchItemFailures``) are queued
        again, as SQS makes them visible again after the visibility timeout; otherwise a failure fails the
        test."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        event = sqs_event(batch)
        response = call_status_handler_event(event)
        failed_ids = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        if not self.redeliver:
            assert not failed_ids, response
        retry = [
            item
            for record, item in zip(event["Records"], batch, strict=True)
            if record["messageId"] in failed_ids
        ]
        with self._lock:
            self._pending.extend(retry)
            self.redelivered += len(retry)
            self.timeline.extend(
                ("finished", robot)
                for robot, payload in batch
                if payload.get("status") in ("InSync", "Failed") and (robot, payload) not in retry
            )
        return len(batch)

    def commanded(self, kind: str = "deploy") -> list[str]:
        with self._lock:
            return [robot for event, robot in self.timeline if event == kind]


class RolloutDriver:
    """Creates jobs through the API, pumps robot reports until the execution ends, describes the result."""

    def __init__(self, api: Any, given: Any, robots: SimulatedRobots, stepfunctions: Any, machine_arn: str):
        self.api = api
        self.given = given
        self.robots = robots
        self.sfn = stepfunctions
        self.machine_arn = machine_arn

    def execution_arn(self, job: dict) -> str:
        job_id = job["arn"].rsplit("/", 1)[-1]
        return self.machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"

    def fleet_of(self, count: int, name: str = "warehouse", prefix: str = "r") -> dict:
        """A fleet of ``count`` registered robots named ``<prefix>00``, ``<prefix>01``, ..."""
        fleet = self.given.fleet(name)
        for index in range(count):
            self.given.robot(f"{prefix}{index:02d}", fleet=fleet)
        return fleet

    def start(self, fleet: dict, version: dict, **extra: Any) -> dict:
        return self.given.job(fleet, version, **extra)

    def pump_until(self, condition: Callable[[], bool], what: str, limit: float = RUN_LIMIT_SECONDS) -> None:
        deadline = time.monotonic() + limit
        while not condition():
            if not self.robots.deliver():
                if time.monotonic() > deadline:
                    raise AssertionError(f"gave up waiting for: {what}")
                time.sleep(0.02)

    def status(self, job: dict) -> str:
        return self.sfn.describe_execution(executionArn=self.execution_arn(job))["status"]

    def wait(self, job: dict, limit: float = RUN_LIMIT_SECONDS) -> dict:
        """Deliver reports until the rollout's execution has ended; returns DescribeDeploymentJob."""
        self.pump_until(
            lambda: self.status(job) != "RUNNING" and not self.robots.has_pending(), "rollout to end", limit
        )
        return self.describe(job)

    def run(self, fleet: dict, version: dict, **extra: Any) -> dict:
        return self.wait(self.start(fleet, version, **extra))

    def describe(self, job: dict) -> dict:
        return self.given.ok("describeDeploymentJob", {"job": job["arn"]})

    def robot_summary(self, job: dict) -> dict[str, dict]:
        """robotDeploymentSummary keyed by robot name (the ARN's name part)."""
        return {r["arn"].split("/")[-2]: r for r in self.describe(job)["robotDeploymentSummary"]}

    def history(self, job: dict) -> list[dict]:
        events: list[dict] = []
        kwargs = {"executionArn": self.execution_arn(job), "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def transitions(self, job: dict) -> int:
        """State transitions as Step Functions bills them: one per state entered."""
        return sum(1 for event in self.history(job) if event["type"].endswith("StateEntered"))
