"""`fleetwave`: the command-line entry point.

Each subcommand lives in its own module under ``fleetwave.commands`` and exposes
``register(subparsers)``; the module is imported only when its command runs or help is shown.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fleetwave import __version__

# name -> module; order is the order `fleetwave --help` lists them.
COMMANDS: dict[str, str] = {
    "serve": "fleetwave.commands.serve",
    "simulate": "fleetwave.commands.simulate",
    "agent": "fleetwave.commands.agent",
    "demo": "fleetwave.commands.demo",
    "bench": "fleetwave.commands.bench",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetwave",
        description=(
            "Fleetwave: deploy robot applications to robot fleets in waves. "
            "The RoboMaker fleet-management API and the Greengrass V2 deployments API, "
            "served locally (`fleetwave serve`) or from your AWS account (cdk deploy)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fleetwave {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
