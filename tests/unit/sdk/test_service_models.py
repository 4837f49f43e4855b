"""The shipped botocore models: generated from the route table (no drift), compatible with AWS's historic
RoboMaker model (tests/data/aws), installable where botocore and the AWS CLI look."""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
import pytest
from pydantic import BaseModel

from fleetwave.sdk import generate, service_models

HISTORIC = Path(__file__).resolve().parents[2] / "data" / "aws"
OLD = json.loads((HISTORIC / "robomaker" / "2018-06-29" / "service-2.json").read_text())
OLD_PAGINATORS = json.loads((HISTORIC / "robomaker" / "2018-06-29" / "paginators-1.json").read_text())
NEW = service_models.shipped_model()
# Members of AWS's model Fleetwave does not serve: container-image robot applications (a script using them
# gets botocore's "Unknown parameter" instead of a version that would silently ignore its image).
NOT_SERVED = {"environment", "imageDigest"}
SAME_TYPE = {"long": "integer", "float": "double"}


def _kind(model: dict, ref: dict) -> str:
    kind = model["shapes"][ref["shape"]]["type"]
    return SAME_TYPE.get(kind, kind)


def _differences(old_shape: str, new_shape: str, path: str) -> list[str]:
    """Every member of AWS's shape, recursively, that Fleetwave's lacks or types differently."""
    found = []
    old_members = OLD["shapes"][old_shape].get("members", {})
    new_members = NEW["shapes"][new_shape].get("members", {})
    for member, old_ref in old_members.items():
        if member in NOT_SERVED:
            continue
        new_ref = new_members.get(member)
        if new_ref is None:
            found.append(f"{path}.{member}: missing")
            continue
        if _kind(OLD, old_ref) != _kind(NEW, new_ref):
            found.append(f"{path}.{member}: {_kind(OLD, old_ref)} became {_kind(NEW, new_ref)}")
            continue
        if old_ref.get("location") != new_ref.get("location"):
            found.append(f"{path}.{member}: sent in {old_ref.get('location')}, now {new_ref.get('location')}")
        old_target, new_target = OLD["shapes"][old_ref["shape"]], NEW["shapes"][new_ref["shape"]]
        if old_target["type"] == "list":
            old_target, new_target = (OLD["shapes"][old_target["member"]["shape"]],
                                      NEW["shapes"][new_target["member"]["shape"]])  # fmt: skip
            if old_target["type"] == "structure":
                found += _differences(
                    OLD["shapes"][old_ref["shape"]]["member"]["shape"],
                    NEW["shapes"][new_ref["shape"]]["member"]["shape"],
                    f"{path}.{member}[]",
                )
        elif old_target["type"] == "structure":
            found += _differences(old_ref["shape"], new_ref["shape"], f"{path}.{member}")
    return found


def test_service_models_committed_model_is_what_the_routes_generate() -> None:
    # Given the route table and the request/response models as they are now
    # When the model is generated again
    generated = generate.generate()
    # Then it is byte for byte the committed one (a changed route or model needs `make models`)
    for file_name, document in generated.items():
        committed = (service_models.source_model_dir() / file_name).read_text(encoding="utf-8")
        assert committed == generate.render(document), f"{file_name} is stale: run `make models`"


def test_service_models_every_route_outside_greengrass_is_an_operation() -> None:
    from fleetwave_service import api

    app = api.include_front_doors()
    routes = {
        (route.method.upper(), route.openapi_path)
        for route in [*app._static_routes, *app._dynamic_routes]
        if not route.openapi_path.startswith("/greengrass/")
    }
    modelled = {(op["http"]["method"], op["http"]["requestUri"]) for op in NEW["operations"].values()}
    assert modelled == routes


def test_service_models_signs_for_execute_api_under_robomakers_names() -> None:
    metadata = NEW["metadata"]
    assert metadata["signingName"] == "execute-api"
    assert (metadata["endpointPrefix"], metadata["apiVersion"], metadata["protocol"]) == (
        "robomaker", "2018-06-29", "rest-json")  # fmt: skip
    assert metadata["serviceId"] == "RoboMaker"  # so AWS_ENDPOINT_URL_ROBOMAKER and the CLI's names work


def test_service_models_aws_operations_keep_their_names_paths_and_members() -> None:
    # Given AWS's historic model of the 24 fleet-management operations
    assert len(OLD["operations"]) == 24
    problems = []
    for name, old in OLD["operations"].items():
        new = NEW["operations"].get(name)
        if new is None:
            problems.append(f"{name}: not in the model")
            continue
        # Then each keeps its method and path, and every request and response member AWS had (same type)
        if new["http"] != old["http"]:
            problems.append(f"{name}: {old['http']} became {new['http']}")
        problems += _differences(old["input"]["shape"], new["input"]["shape"], f"{name} request")
        problems += _differences(old["output"]["shape"], new["output"]["shape"], f"{name} response")
        # And every error AWS declared for it is a modelled exception of the service
        for error in old.get("errors", []):
            shape = NEW["shapes"].get(error["shape"], {})
            if not shape.get("exception"):
                problems.append(f"{name}: error {error['shape']} not modelled")
    assert problems == []


def test_service_models_operations_aws_never_had_are_marked_as_extensions() -> None:
    for name, operation in NEW["operations"].items():
        extension = name not in OLD["operations"]
        assert operation.get("documentation", "").startswith(generate.EXTENSION_NOTE) == extension, name


def test_service_models_constraints_come_from_the_request_models() -> None:
    shapes = NEW["shapes"]

    def target(operation: str, *path: str) -> dict:
        shape = shapes[NEW["operations"][operation]["input"]["shape"]]
        for member in path:
            shape = shapes[shape["members"][member]["shape"]]
            if shape["type"] == "list" and member != path[-1]:
                shape = shapes[shape["member"]["shape"]]
        return shape

    assert target("CreateDeploymentJob", "clientRequestToken") == {
        "type": "string", "min": 1, "max": 64, "pattern": "^[a-zA-Z0-9_\\-=]*$"}  # fmt: skip
    config = target("CreateDeploymentJob", "deploymentConfig", "concurrentDeploymentPercentage")
    assert (config["min"], config["max"]) == (1, 100)
    timeout = target("CreateDeploymentJob", "deploymentConfig", "robotDeploymentTimeoutInSeconds")
    assert (timeout["min"], timeout["max"]) == (60, 7 * 24 * 3600)
    assert target("CreateRobot", "architecture")["enum"] == ["X86_64", "ARM64", "ARMHF"]
    assert target("CreateDeploymentJob", "deploymentApplicationConfigs") | {"member": None} == {
        "type": "list", "member": None, "min": 1, "max": 1}  # fmt: skip
    assert "fleet" in shapes["CreateDeploymentJobRequest"]["required"]
    # Errors carry the status the API answers with
    assert shapes["ConcurrentDeploymentException"]["error"]["httpStatusCode"] == 400
    assert shapes["InternalServerException"]["error"]["httpStatusCode"] == 500
    # Timestamps are timestamps (botocore hands scripts datetimes), not floats
    created = shapes["DescribeDeploymentJobResponse"]["members"]["createdAt"]["shape"]
    assert shapes[created]["type"] == "timestamp"


def test_service_models_paginators_match_aws() -> None:
    ours = service_models.shipped_model(service_models.PAGINATORS_FILE)["pagination"]
    for name, paginator in OLD_PAGINATORS["pagination"].items():
        assert ours[name] == paginator


@pytest.mark.parametrize("module", ["fleet", "robomaker"])
def test_service_models_every_time_member_is_a_timestamp(module: str) -> None:
    # A float member named like a time (createdAt, lastDeploymentTime, ...) must use core.wire.Timestamp,
    # or the generated model hands scripts a float where AWS's handed them a datetime.
    import importlib

    models = importlib.import_module(f"fleetwave_service.{module}.models")
    untyped = []
    for name, value in vars(models).items():
        if isinstance(value, type) and issubclass(value, BaseModel):
            schema = value.model_json_schema()
            for defined in [schema, *schema.get("$defs", {}).values()]:
                for member, member_schema in defined.get("properties", {}).items():
                    options = member_schema.get("anyOf", [member_schema])
                    numbers = [o for o in options if o.get("type") == "number"]
                    timelike = re.search(r"(At|Time|Timestamp)$", member)
                    if timelike and any(option.get("format") != "unix-time" for option in numbers):
                        untyped.append(f"{name}.{member}")
    assert untyped == []


def test_service_models_botocore_builds_a_client_from_the_shipped_model() -> None:
    # Given the package's model directory as botocore's first search path (what sdk.client does)
    session = service_models.session_with_models()
    # When botocore loads robomaker
    model = session._session.get_service_model("robomaker")
    # Then it is Fleetwave's (execute-api), whatever botocore itself ships
    assert model.signing_name == "execute-api"
    assert "CreateDeploymentJob" in model.operation_names
    client = session.client("robomaker", endpoint_url="http://127.0.0.1:9/", region_name="us-east-1")
    assert client.can_paginate("list_fleets")
    assert hasattr(client.exceptions, "ConcurrentDeploymentException")


# --- install-models --------------------------------------------------------------------------------


def test_service_models_install_writes_the_add_model_layout(tmp_path: Path) -> None:
    # When the models are installed into a directory
    written = service_models.install_models(tmp_path)
    # Then each is where `aws configure add-model` puts a model: <service>/<api version>/service-2.json
    relative = sorted(str(path.relative_to(tmp_path)) for path in written)
    assert relative == [
        "greengrassv2/2020-11-30/service-2.json",
        "robomaker/2018-06-29/paginators-1.json",
        "robomaker/2018-06-29/service-2.json",
    ]
    # And botocore reading that directory (AWS_DATA_PATH) signs both services for execute-api
    session = botocore.session.Session()
    session.set_config_variable("data_path", str(tmp_path))
    for service in ("robomaker", "greengrassv2"):
        assert session.get_service_model(service).signing_name == "execute-api"
    # And Greengrass keeps every operation of botocore's own model
    stock = botocore.session.Session().get_service_model("greengrassv2")
    assert session.get_service_model("greengrassv2").operation_names == stock.operation_names


def test_service_models_default_directory_honours_aws_data_path(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert service_models.default_models_dir({"AWS_DATA_PATH": f"{first}:{second}"}) == first
    assert service_models.default_models_dir({}) == Path("~/.aws/models").expanduser()


def test_service_models_remove_takes_away_only_fleetwaves_files(tmp_path: Path) -> None:
    # Given Fleetwave's models installed, and someone else's model of another API version next to them
    service_models.install_models(tmp_path)
    other = tmp_path / "greengrassv2" / "2019-01-01" / "service-2.json"
    other.parent.mkdir(parents=True)
    other.write_text(json.dumps({"metadata": {"signingName": "greengrass"}}))
    # When they are removed
    removed = service_models.remove_models(tmp_path)
    # Then Fleetwave's files are gone and the other model stays
    assert len(removed) == 3
    assert not (tmp_path / "robomaker").exists()
    assert other.is_file()
