"""The client side of the gateway: the SDK's signing and the boto3 Greengrass V2 helper (no network)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from fleetwave.sdk import greengrassv2_client, local_credentials
from fleetwave.sdk.client import encode_query, operation_path


class Sent(Exception):
    """Raised from before-send to stop a boto3 call once it is signed, without any network."""

    def __init__(self, request: Any) -> None:
        super().__init__("request captured")
        self.request = request


def capture_signed_request(client: Any, call: str, **kwargs: Any) -> Any:
    def stop(request: Any, **_: Any) -> None:
        raise Sent(request)

    client.meta.events.register("before-send", stop)
    with pytest.raises(Sent) as caught:
        getattr(client, call)(**kwargs)
    return caught.value.request


def authorization_scope(request: Any) -> str:
    header = request.headers["Authorization"]
    header = header.decode() if isinstance(header, bytes) else header
    return header.split("Credential=")[1].split(",")[0]


def test_greengrassv2_client_signs_for_execute_api():
    # Given boto3's Greengrass V2 client built with the SDK helper
    client = greengrassv2_client(
        "http://127.0.0.1:8787", aws_access_key_id="testing", aws_secret_access_key="testing"
    )

    # When it signs a CreateDeployment
    request = capture_signed_request(
        client, "create_deployment", targetArn="arn:aws:iot:us-east-1:123456789012:thinggroup/alpha"
    )

    # Then the credential scope names execute-api in us-east-1, and the path is the Greengrass one
    assert authorization_scope(request).split("/")[2:] == ["us-east-1", "execute-api", "aws4_request"]
    assert request.url == "http://127.0.0.1:8787/greengrass/v2/deployments"


def test_plain_boto3_greengrassv2_client_signs_for_greengrass_which_api_gateway_rejects():
    # Given boto3's Greengrass V2 client without the helper
    client = boto3.client(
        "greengrassv2",
        endpoint_url="http://127.0.0.1:8787",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    # When it signs, Then the scope is "greengrass": the reason the helper exists
    request = capture_signed_request(client, "list_deployments")
    assert authorization_scope(request).split("/")[3] == "greengrass"


def test_sdk_operation_path_maps_operation_names_to_robomaker_paths():
    # Given operation names in either case, and a literal path
    # Then RoboMaker's POST /<lowerCamelOperationName> paths, and paths unchanged
    assert operation_path("CreateDeploymentJob") == "/createDeploymentJob"
    assert operation_path("describeFleet") == "/describeFleet"
    assert operation_path("/greengrass/v2/deployments") == "/greengrass/v2/deployments"


def test_sdk_encode_query_repeats_list_values_and_percent_encodes():
    # Given UntagResource's repeated tagKeys with a space and a plus
    # Then each key is repeated and encoded the SigV4 way (space -> %20, plus -> %2B)
    assert encode_query({"tagKeys": ["a b", "c+d"]}) == "tagKeys=a%20b&tagKeys=c%2Bd"
    assert encode_query(None) == ""


def test_sdk_local_credentials_default_to_testing_and_follow_the_environment():
    # Given no environment, Then testing/testing; Given the FLEETWAVE_LOCAL_* pair, Then that pair
    default = local_credentials({})
    custom = local_credentials(
        {"FLEETWAVE_LOCAL_ACCESS_KEY_ID": "AKIDLOCAL", "FLEETWAVE_LOCAL_SECRET_ACCESS_KEY": "s3cr3t"}
    )
    assert (default.access_key, default.secret_key) == ("testing", "testing")
    assert (custom.access_key, custom.secret_key) == ("AKIDLOCAL", "s3cr3t")
