"""`fleetwave sdk`: make botocore and the AWS CLI know Fleetwave's APIs.

`fleetwave sdk install-models` does what `aws configure add-model` does, for both APIs: it writes
``<dir>/robomaker/2018-06-29/service-2.json`` (and its paginators) and
``<dir>/greengrassv2/2020-11-30/service-2.json`` (botocore's own Greengrass V2 model, signing for
execute-api), where <dir> is --models-dir, else the first entry of AWS_DATA_PATH, else ~/.aws/models.
Then `aws robomaker list-fleets --endpoint-url URL` and `aws greengrassv2 list-deployments --endpoint-url
URL` call Fleetwave. While the Greengrass model is installed, `aws greengrassv2` signs for execute-api and
so works against Fleetwave only; `fleetwave sdk remove-models` takes the models away again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SERVICES = ("robomaker", "greengrassv2")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sdk",
        help="install Fleetwave's botocore models for boto3 and the AWS CLI",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.set_defaults(handler=main)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, summary in (
        ("install-models", "write the models where botocore and the AWS CLI read them"),
        ("remove-models", "remove the models install-models wrote"),
    ):
        action = actions.add_parser(name, help=summary, description=summary)
        action.add_argument(
            "--models-dir",
            type=Path,
            default=None,
            help="where to write (default: the first AWS_DATA_PATH entry, else ~/.aws/models)",
        )
        action.add_argument(
            "--service",
            dest="services",
            action="append",
            choices=SERVICES,
            help="only this API (repeatable; default: both)",
        )
        action.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from fleetwave.sdk import service_models

    target = (args.models_dir or service_models.default_models_dir()).expanduser()
    services = args.services or SERVICES
    try:
        if args.action == "install-models":
            for path in service_models.install_models(target, services):
                print(f"wrote {path}")
            print(
                "now: aws robomaker list-fleets --endpoint-url URL (aws greengrassv2 ... signs for "
                "execute-api until `fleetwave sdk remove-models`)"
            )
        else:
            removed = service_models.remove_models(target, services)
            for path in removed:
                print(f"removed {path}")
            if not removed:
                print(f"no Fleetwave model under {target}")
    except OSError as error:
        print(f"fleetwave sdk {args.action}: {error}", file=sys.stderr)
        return 1
    return 0
