"""What the stores leave in DynamoDB, read raw: the bytes of rows whose encoding differed between the API's
storage functions and the engine's store before both used core/dynamo.py.

- A Greengrass recipe (the API's encoding) keeps its nulls: nested None is stored as NULL.
- A job's ``resolvedSources`` (the engine's) never held a None: a source without an ETag has no ``etag``.
"""

from __future__ import annotations

import base64
import json

from fakes.robomaker import BUCKET
from fleetwave_service.core.settings import get_settings
from fleetwave_service.engine import steps
from fleetwave_service.engine.ports import get_ports


def _raw(aws, pk: str, sk: str) -> dict:
    client = aws.client("dynamodb")
    return client.get_item(TableName=get_settings().table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}})[
        "Item"
    ]


def test_stored_component_recipe_keeps_nested_nulls(api, aws):
    # Given a recipe whose default configuration holds nulls
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "com.example.Nulls",
        "ComponentVersion": "1.0.0",
        "ComponentConfiguration": {"DefaultConfiguration": {"greeting": None, "levels": [1, None]}},
    }
    inline = base64.b64encode(json.dumps(recipe).encode()).decode()

    # When the component version is created
    created = api.request("POST", "/greengrass/v2/createComponentVersion", {"inlineRecipe": inline})
    assert created.status == 201, created.json

    # Then the stored recipe holds NULL where the recipe held null, and reads back as it was sent
    item = _raw(aws, "GGCOMPONENT#com.example.Nulls", "VERSION#1.0.0")
    default = item["recipe"]["M"]["ComponentConfiguration"]["M"]["DefaultConfiguration"]["M"]
    assert default == {"greeting": {"NULL": True}, "levels": {"L": [{"N": "1"}, {"NULL": True}]}}
    arn = created.json["arn"].replace(":", "%3A")
    got = api.request("GET", f"/greengrass/v2/components/{arn}")
    assert json.loads(base64.b64decode(got.json["recipe"])) == recipe


def test_stored_resolved_sources_leave_out_a_missing_etag(given, api, aws):
    # Given a version with one bundle uploaded (etag pinned) and one that was missing when versioned
    fleet = given.fleet("warehouse")
    given.robot("r1", fleet=fleet)
    etag = given.bundle("nav/x86.tar.gz")
    sources = [
        {"s3Bucket": BUCKET, "s3Key": "nav/x86.tar.gz", "architecture": "X86_64"},
        {"s3Bucket": BUCKET, "s3Key": "nav/never-uploaded.tar.gz", "architecture": "ARM64"},
    ]
    application = given.ok(
        "createRobotApplication",
        {"name": "nav", "sources": sources, "robotSoftwareSuite": {"name": "ROS2", "version": "Foxy"}},
    )
    version = given.ok("createRobotApplicationVersion", {"application": application["arn"]})
    job = given.job(fleet, version)
    job_id = job["arn"].rsplit("/", 1)[-1]

    # When the engine prepares the job
    assert steps.prepare(job_id, get_ports())["action"] == "evaluate"

    # Then the job row's resolved sources carry the etag that exists and no etag attribute for the other
    resolved = _raw(aws, f"JOB#{job_id}", "JOB")["resolvedSources"]["M"]
    assert resolved == {
        "X86_64": {"M": {"s3Bucket": {"S": BUCKET}, "s3Key": {"S": "nav/x86.tar.gz"}, "etag": {"S": etag}}},
        "ARM64": {"M": {"s3Bucket": {"S": BUCKET}, "s3Key": {"S": "nav/never-uploaded.tar.gz"}}},
    }
