"""Reading resource ARNs back out of requests."""

from __future__ import annotations

import pytest
from fleetwave_service.core import arns
from fleetwave_service.core.errors import InvalidParameterError

PREFIX = "arn:aws:robomaker:us-east-1:123456789012"


@pytest.mark.parametrize(
    "arn,kind,name",
    [
        (f"{PREFIX}:deployment-fleet/warehouse/1700000000000", arns.FLEET, "warehouse"),
        (f"{PREFIX}:robot/r-1/1700000000000", arns.ROBOT, "r-1"),
        (f"{PREFIX}:robot-application/nav_2/1", arns.ROBOT_APPLICATION, "nav_2"),
        (f"{PREFIX}:deployment-job/deployment-abcdef123456", arns.DEPLOYMENT_JOB, "deployment-abcdef123456"),
        ("arn:aws-cn:robomaker:cn-north-1:1:robot/r/1", arns.ROBOT, "r"),
    ],
)
def test_parse_reads_kind_and_name(arn, kind, name):
    assert arns.parse(arn) == arns.ResourceArn(kind, name)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:s3:::bucket",
        f"{PREFIX}:robot/r",
        f"{PREFIX}:robot/r/1/extra",
        f"{PREFIX}:deployment-job/",
        f"{PREFIX}:simulation-job/sim-1",
        "arn:aws:robomaker",
        "not-an-arn",
    ],
)
def test_parse_returns_none_for_anything_else(arn):
    assert arns.parse(arn) is None


def test_name_of_names_the_field_when_the_kind_is_wrong():
    with pytest.raises(InvalidParameterError) as raised:
        arns.name_of(f"{PREFIX}:robot/r/1", arns.FLEET, "fleet")

    assert raised.value.message.startswith("fleet:")
    assert "fleet ARN" in raised.value.message
