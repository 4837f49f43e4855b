"""boto3's own Greengrass V2 client, pointed at Fleetwave.

Fleetwave serves the Greengrass V2 deployments API behind API Gateway, which verifies SigV4 for the service
``execute-api``; the botocore model signs for ``greengrass``. The switch is one ``before-sign`` handler that
sets the signing name in the request's signing context, which botocore's signer reads last.
"""

from __future__ import annotations

from typing import Any

import boto3

SIGNING_NAME = "execute-api"


def use_execute_api_signing(request: Any, **_: Any) -> None:
    request.context.setdefault("signing", {})["signing_name"] = SIGNING_NAME


def greengrassv2_client(
    endpoint_url: str, session: boto3.session.Session | None = None, **kwargs: Any
) -> Any:
    """``boto3.client("greengrassv2", endpoint_url=...)`` that signs for execute-api.

    Extra keyword arguments go to ``client()`` (region_name, aws_access_key_id, config...);
    the region defaults to us-east-1.
    """
    kwargs.setdefault("region_name", "us-east-1")
    client = (session or boto3).client("greengrassv2", endpoint_url=endpoint_url, **kwargs)
    client.meta.events.register("before-sign.greengrassv2", use_execute_api_signing)
    return client
