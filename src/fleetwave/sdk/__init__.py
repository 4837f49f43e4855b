"""Python SDK for the Fleetwave API: boto3 clients that know its models (``client("robomaker", ...)``), a
SigV4 (execute-api) signing client, and the boto3 Greengrass V2 helper."""

from fleetwave.sdk.client import (
    ApiResponse,
    FleetwaveApiError,
    FleetwaveClient,
    local_credentials,
    sign_request,
)
from fleetwave.sdk.greengrass import greengrassv2_client
from fleetwave.sdk.service_models import client, install_models

__all__ = [
    "ApiResponse",
    "client",
    "install_models",
    "FleetwaveApiError",
    "FleetwaveClient",
    "greengrassv2_client",
    "local_credentials",
    "sign_request",
]
