"""`fleetwave jobs watch` and `fleetwave deployments watch`: follow one rollout live until it ends.

The demo's live view as a command of its own: waves, each robot's step and percent, failures as they
happen, the failure threshold and an ETA from the robots' estimatedTimeRemainingSeconds; a live table on a
terminal, plain lines otherwise. Against `fleetwave serve` (the default endpoint, signed with the local key
pair) or a deployed stack (--endpoint, --profile, --region).

Exit status: 0 when the rollout succeeded (Succeeded; Greengrass COMPLETED), 1 when it ended otherwise,
2 when the job does not exist or the API cannot be called (one line saying why), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from fleetwave.commands.arguments import positive_number
from fleetwave.commands.endpoint import (
    EndpointError,
    add_endpoint_arguments,
    api_client,
    describe_transport_error,
)

USAGE_ERROR = 2
DEFAULT_INTERVAL_SECONDS = 1.0
_interval = positive_number("interval must be greater than 0 seconds, not {text}")
# Answers that say the endpoint does not take these credentials.
_REFUSED = {
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "AccessDeniedException",
    "IncompleteSignatureException",
    "ExpiredTokenException",
}
# API Gateway's answer for a method and path it has no route for, and Fleetwave's (the local gateway
# answers alike). Watch always signs its requests, so here it means the URL is not the API's: another API,
# or a deployed stack's URL without its stage.
_NO_ROUTE = "MissingAuthenticationTokenException"


NOUNS = {
    "jobs": ("RoboMaker deployment job", "JOB", "the job's ARN, or its id (deployment-...)"),
    "deployments": ("Greengrass deployment", "DEPLOYMENT_ID", "the deployment's id"),
}


def register_watch(subparsers: argparse._SubParsersAction, noun: str) -> None:
    """`fleetwave <noun> watch TARGET` (commands/jobs.py and commands/deployments.py register theirs)."""
    what, target, help_text = NOUNS[noun]
    description = __doc__.split("\n\n")[1] if __doc__ else None
    parser = subparsers.add_parser(noun, help=f"follow a {what}", description=description)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    watch = actions.add_parser(
        "watch",
        help=f"follow a {what} live until it ends",
        description=description,
        epilog=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    watch.add_argument("target", metavar=target, help=help_text)
    add_endpoint_arguments(watch)
    watch.add_argument(
        "--interval",
        type=_interval,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="how often to read the rollout (default: %(default)s)",
    )
    parser.set_defaults(handler=main, noun=noun)


def main(args: argparse.Namespace) -> int:
    from fleetwave.sdk import FleetwaveApiError
    from fleetwave.watch.display import make_console

    command = f"fleetwave {args.noun} watch"
    console = make_console()
    try:
        client = api_client(args)
        return watch(client, args, console)
    except EndpointError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return USAGE_ERROR
    except FleetwaveApiError as error:
        print(f"{command}: {_explain(args.endpoint, error)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        reason = describe_transport_error(args.endpoint, error)
        if reason is None:
            raise
        print(f"{command}: {reason}", file=sys.stderr)
        return USAGE_ERROR


def _explain(endpoint: str, error: Any) -> str:
    if error.error_type == _NO_ROUTE:
        return (
            f"{endpoint} has no Fleetwave API at that path (HTTP {error.status} {error.error_type}); "
            "give the stack's ApiUrl output, stage included"
        )
    if error.error_type in _REFUSED:
        return f"{endpoint} refused the credentials ({error.error_type}): {error.message}"
    if error.error_type == "UnknownError":  # no AWS error type at all: not an API Gateway API
        said = f": {error.message}" if error.message else ""
        return f"{endpoint} does not answer like a Fleetwave API (HTTP {error.status}{said})"
    return f"{error.error_type}: {error.message}"


def watch(
    client: Any, args: argparse.Namespace, console: Any, sleep: Callable[[float], None] = time.sleep
) -> int:
    from fleetwave.watch.display import ProgressDisplay, outcome_line
    from fleetwave.watch.view import read_deployment, read_job

    if args.noun == "jobs":
        arn = resolve_job(client, args.target, args.region)
        architectures = _Architectures(client)

        def read() -> Any:
            view = read_job(client, "job", arn)
            architectures.learn(view)
            return view
    else:
        architectures = _Architectures(None)

        def read() -> Any:
            return read_deployment(client, "deployment", args.target)

    view = read()
    with ProgressDisplay(console, architectures.names) as display:
        while True:
            display.update(view)
            if view.done:
                break
            sleep(args.interval)
            view = read()
    console.print(outcome_line(view), markup=False, highlight=False, soft_wrap=True)
    return 0 if view.succeeded else 1


def resolve_job(client: Any, target: str, region: str) -> str:
    """The job's ARN: as given, or found by its id among ListDeploymentJobs. An id no job has becomes an
    ARN the API answers ResourceNotFoundException for (its message is the one shown)."""
    if target.startswith("arn:"):
        return target
    token = None
    account = None
    while True:
        page = client.call("listDeploymentJobs", {"nextToken": token} if token else {})
        for job in page.get("deploymentJobs", []):
            account = account or job["arn"].split(":")[4]
            if job["arn"].rsplit("/", 1)[-1] == target:
                return job["arn"]
        token = page.get("nextToken")
        if not token:
            break
    return f"arn:aws:robomaker:{region}:{account or '123456789012'}:deployment-job/{target}"


class _Architectures:
    """Robot name -> architecture for the live table, read once per fleet (and again for a robot it lacks)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.names: dict[str, str] = {}

    def learn(self, view: Any) -> None:
        if self.client is None or all(robot["name"] in self.names for robot in view.robots):
            return
        fleet = (view.fleet or "").split(":", 5)[-1].split("/")
        if len(fleet) < 2:
            return
        token = None
        while True:
            body = {"filters": [{"name": "fleetName", "values": [fleet[1]]}]}
            page = self.client.call("listRobots", {**body, **({"nextToken": token} if token else {})})
            self.names.update({robot["name"]: robot["architecture"] for robot in page.get("robots", [])})
            token = page.get("nextToken")
            if not token:
                break
        for robot in view.robots:  # a robot since deregistered: ask no more
            self.names.setdefault(robot["name"], "?")
