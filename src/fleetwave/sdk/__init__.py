"""Python SDK for the Fleetwave API: SigV4 (execute-api) signing client and the boto3 Greengrass V2 helper."""

from fleetwave.sdk.client import (
    ApiResponse,
    FleetwaveApiError,
    FleetwaveClient,
    local_credentials,
    sign_request,
)
from fleetwave.sdk.greengrass import greengrassv2_client

__all__ = [
    "ApiResponse",
    "FleetwaveApiError",
    "FleetwaveClient",
    "greengrassv2_client",
    "local_credentials",
    "sign_request",
]
