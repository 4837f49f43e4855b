"""What robots tell the service besides deployment steps: application health, presence, link requests.

Through the status handler (SQS records as the IoT rule sends them), moto for the table, the fake robot
channel for replies; read back through the API the way users read it.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes.channel import FakeRobotChannel
from fakes.faults import FlakyStore
from fleetwave_service.core.keys import job_key, robot_deployment_key
from fleetwave_service.engine.messages import LinkReply
from fleetwave_service.engine.ports import get_ports, reset_ports, use_ports
from support.rollout_harness import call_status_handler, call_status_handler_event, sqs_event

from fleetwave.sdk import service_models

JOB = "deployment-0123456789ab"


@pytest.fixture
def channel(aws):
    fake = FakeRobotChannel()
    use_ports(channel=fake)
    yield fake
    reset_ports()


@pytest.fixture
def robot(given, channel):
    fleet = given.fleet("warehouse")
    return given.robot("r1", fleet=fleet)


def deliver(robot_name: str, message: dict) -> dict:
    """One message published on the robot's status topic, as the IoT rule hands it to the handler."""
    return call_status_handler([(robot_name, message)])


def health(state: str, sent_at: float, **extra) -> dict:
    return {"schemaVersion": "1", "kind": "health", "state": state, "sentAt": sent_at, **extra}


def test_robot_health_is_shown_by_describe_robot_and_a_late_older_report_changes_nothing(api, robot):
    # When the robot reports its application restarting, then broken
    now = time.time()
    deliver("r1", health("Restarting", now, jobId=JOB, attempt=1, applicationVersion="4", exitCode=6))
    deliver("r1", health("Broken", now + 1, jobId=JOB, restartCount=5, exitCode=6, reason="restart limit 5"))
    # and an older report arrives late (redelivered)
    assert deliver("r1", health("Running", now - 5)) == {"batchItemFailures": []}

    # Then DescribeRobot shows the newest
    described = api.call("describeRobot", {"robot": robot["arn"]}).json
    assert described["applicationHealth"] == {
        "status": "Broken",
        "deploymentJob": f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}",
        "restartCount": 5,
        "lastExitCode": 6,
        "reason": "restart limit 5",
        "updatedAt": now + 1,
    }
    assert described["status"] == "Registered"  # the deployment status is its own
    # And the Greengrass view of the same robot is UNHEALTHY
    device = api.request("GET", "/greengrass/v2/coreDevices/r1").json
    assert device["status"] == "UNHEALTHY" and device["lastStatusUpdateTimestamp"] == now + 1


def test_robot_whose_deployed_application_no_longer_runs_is_not_shown_in_sync(api, robot, channel):
    # Given a robot InSync with its last deployment
    job_arn = f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}"
    get_ports().store.update_robot_entity(
        "r1", "warehouse", {"status": "InSync", "lastDeploymentJob": job_arn}
    )
    now = time.time()

    def status() -> str:
        return api.call("describeRobot", {"robot": robot["arn"]}).json["status"]

    # When its application of that deployment is broken, it is Failed
    deliver("r1", health("Broken", now, jobId=JOB, reason="restart limit 5"))
    assert status() == "Failed"
    # and the application of another (older) deployment running changes nothing
    deliver("r1", health("Running", now + 1, jobId="deployment-000000000000"))
    assert status() == "Failed"
    # When it runs again (the agent restarted it), it is InSync again
    deliver("r1", health("Running", now + 2, jobId=JOB))
    assert status() == "InSync"


@pytest.mark.chaos
@pytest.mark.parametrize(
    ("method", "after"),
    [("mark_not_running", False), ("record_health", True)],
    ids=["follow-up write throttled", "health written, answer lost"],
)
def test_a_health_report_redelivered_after_a_partial_failure_is_applied_once_and_completely(
    api, robot, method, after
):
    # Given a robot InSync with its last deployment, and DynamoDB throttling one write of the health path:
    # the robot's Failed mark after the health was kept, or the health write itself after it succeeded
    job_arn = f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}"
    get_ports().store.update_robot_entity(
        "r1", "warehouse", {"status": "InSync", "lastDeploymentJob": job_arn}
    )
    store = FlakyStore(get_ports().store)
    store.plan(method, after=after)
    use_ports(store=store)
    broken = health("Broken", time.time(), jobId=JOB, reason="restart limit 5")

    # When the report fails part way in a batch (beside a presence message), the handler reports just it
    # failed (partial batch response)
    event = sqs_event([("r1", broken), ("r1", {"schemaVersion": "1", "kind": "presence", "connected": True})])
    failed = call_status_handler_event(event)["batchItemFailures"]
    assert failed == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    # and SQS delivers it again
    assert deliver("r1", broken) == {"batchItemFailures": []}

    # Then it took full effect: the health is kept and the robot is no longer shown InSync
    assert store.injected and store.pending() == 0
    described = api.call("describeRobot", {"robot": robot["arn"]}).json
    assert described["applicationHealth"]["status"] == "Broken"
    assert described["status"] == "Failed"
    # and a third copy changes nothing more
    assert deliver("r1", broken) == {"batchItemFailures": []}
    assert api.call("describeRobot", {"robot": robot["arn"]}).json == described


def test_robot_presence_follows_connect_and_last_will(api, robot):
    deliver("r1", {"schemaVersion": "1", "kind": "presence", "connected": True, "agentVersion": "0.1.0"})
    online = api.call("describeRobot", {"robot": robot["arn"]}).json["connectivity"]
    assert online["status"] == "Online" and online["agentVersion"] == "0.1.0"
    deliver("r1", {"schemaVersion": "1", "kind": "presence", "connected": False})  # the last will
    assert api.call("describeRobot", {"robot": robot["arn"]}).json["connectivity"]["status"] == "Offline"


def test_robot_messages_for_an_unknown_robot_or_unreadable_change_nothing(api, robot):
    assert deliver("ghost", health("Broken", time.time())) == {"batchItemFailures": []}
    assert deliver("r1", {"kind": "health", "state": "Exploded", "sentAt": 1}) == {"batchItemFailures": []}
    assert "applicationHealth" not in api.call("describeRobot", {"robot": robot["arn"]}).json
    assert api.call("listRobots", {}).json["robots"][0]["name"] == "r1"  # no ghost row appeared


CONDITION = {"bucket": "b", "key": "cond.sh", "etag": "e1"}
SOURCES = {"ARM64": {"s3Bucket": "b", "s3Key": "nav/arm64.tar.gz", "etag": "e2"}}


def _deployment_rows(robot_name: str = "r1") -> None:
    now = time.time()
    get_ports().store.put_rows(
        [
            (
                job_key(JOB),
                {
                    "id": JOB,
                    "arn": f"arn:aws:robomaker:us-east-1:123456789012:deployment-job/{JOB}",
                    "status": "Succeeded",
                    "createdAt": now,
                    "expiresAt": int(now) + 86400,
                    "deploymentConfig": {"downloadConditionFile": CONDITION},
                    "resolvedSources": SOURCES,
                },
            ),
            (
                robot_deployment_key(JOB, robot_name),
                {"robotName": robot_name, "architecture": "ARM64", "status": "NoResponse", "attempt": 1,
                 "expiresAt": int(now) + 86400},
            ),
        ]
    )  # fmt: skip


def link_request(request_id: str = "req-1") -> dict:
    return {"schemaVersion": "1", "kind": "linkRequest", "requestId": request_id, "jobId": JOB, "attempt": 1,
            "sentAt": time.time()}  # fmt: skip


def test_link_request_is_answered_with_fresh_links_of_the_robots_architecture(channel, robot):
    _deployment_rows()

    deliver("r1", link_request())

    [(robot_name, topic, payload)] = channel.replies
    assert (robot_name, topic) == ("r1", "fleetwave/robots/r1/links")
    reply = LinkReply.model_validate_json(payload)
    assert reply.requestId == "req-1" and reply.error is None
    assert (reply.bundle.s3Key, reply.bundle.etag, reply.bundle.architecture) == (
        "nav/arm64.tar.gz",
        "e2",
        "ARM64",
    )
    query = {key.lower() for key in parse_qs(urlsplit(reply.bundle.url).query)}
    assert query & {"x-amz-signature", "signature"}  # presigned, no credentials needed on the robot
    assert (
        urlsplit(reply.downloadCondition.url).path.endswith("/cond.sh")
        and reply.downloadCondition.etag == "e1"
    )


def test_link_request_of_a_robot_the_job_does_not_target_is_refused(channel, given):
    _deployment_rows("r1")
    given.robot("r2")

    deliver("r2", link_request("req-2"))

    reply = LinkReply.model_validate_json(channel.replies[0][2])
    assert reply.bundle is None and reply.error == f"robot r2 has no deployment in job {JOB}"


# AWS's own RoboMaker model as botocore shipped it while the service existed (tests/data/aws/README.md): a
# client built on it must keep reading DescribeRobot.
HISTORIC_MODEL = (
    Path(__file__).resolve().parents[2] / "data" / "aws" / "robomaker" / "2018-06-29" / "service-2.json"
)


def _parse_describe_robot(model: dict, response) -> dict:
    """DescribeRobot's answer as a botocore client built on ``model`` reads it."""
    from botocore.model import ServiceModel
    from botocore.parsers import create_parser

    shape = ServiceModel(model).operation_model("DescribeRobot").output_shape
    return create_parser("rest-json").parse(
        {"status_code": 200, "headers": dict(response.headers), "body": json.dumps(response.json).encode()},
        shape,
    )


def test_historic_botocore_robomaker_client_reads_describe_robot_with_the_added_members(api, robot):
    deliver("r1", health("Broken", time.time(), restartCount=5))
    deliver("r1", {"schemaVersion": "1", "kind": "presence", "connected": True})
    response = api.call("describeRobot", {"robot": robot["arn"]})
    assert {"applicationHealth", "connectivity"} <= set(response.json)

    # AWS's model: the added members are ignored, not an error
    parsed = _parse_describe_robot(json.loads(HISTORIC_MODEL.read_text()), response)
    assert parsed["name"] == "r1" and parsed["status"] == "Registered" and parsed["arn"] == robot["arn"]
    assert "applicationHealth" not in parsed and "connectivity" not in parsed
    # Fleetwave's shipped model reads them, times as datetimes
    parsed = _parse_describe_robot(service_models.shipped_model(), response)
    health_read = parsed["applicationHealth"]
    assert (health_read["status"], health_read["restartCount"]) == ("Broken", 5)
    assert isinstance(health_read["updatedAt"], datetime.datetime)
    assert parsed["connectivity"]["status"] == "Online"
