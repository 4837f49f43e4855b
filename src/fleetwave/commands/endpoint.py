"""Where an operator's command sends its calls and what it signs them with: ``--endpoint``, ``--profile``,
``--region``, shared by simulate, jobs, deployments and console.

`fleetwave serve` accepts its own local key pair, so a loopback endpoint without ``--profile`` signs with
it; anything else signs with the AWS credential chain (environment, profile, SSO, instance role).
"""

from __future__ import annotations

import argparse
import os
from typing import Any
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "http://127.0.0.1:8787/"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class EndpointError(Exception):
    """No way to call the API: missing credentials, or an endpoint that does not answer. One line."""


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("FLEETWAVE_ENDPOINT_URL") or DEFAULT_ENDPOINT,
        help="Fleetwave API URL (default: FLEETWAVE_ENDPOINT_URL, else %(default)s)",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help="region the API is in, for signing (default: AWS_REGION, else %(default)s)",
    )
    parser.add_argument("--profile", default=None, help="AWS profile to sign with (deployed stacks)")


def is_local(endpoint: str) -> bool:
    return (urlsplit(endpoint).hostname or "") in LOOPBACK


def api_client(args: argparse.Namespace, timeout: float | None = None) -> Any:
    """A FleetwaveClient for the parsed ``--endpoint``/``--profile``/``--region``; EndpointError when no
    credentials can be found (a profile that does not exist, an empty chain)."""
    from fleetwave.sdk import FleetwaveClient, local_credentials

    credentials = local_credentials() if is_local(args.endpoint) and not args.profile else None
    extra = {} if timeout is None else {"timeout": timeout}
    try:
        return FleetwaveClient(
            args.endpoint, region=args.region, credentials=credentials, profile=args.profile, **extra
        )
    except Exception as error:  # botocore's NoCredentialsError, ProfileNotFound
        raise EndpointError(f"no credentials to sign with: {error}") from None


def describe_transport_error(endpoint: str, error: BaseException) -> str | None:
    """One line for an endpoint that cannot be reached or does not speak the API; None for other errors."""
    import urllib3.exceptions

    if isinstance(error, urllib3.exceptions.HTTPError | OSError):
        reason = getattr(error, "reason", None) or error
        return f"cannot reach the Fleetwave API at {endpoint}: {reason}"
    return None
