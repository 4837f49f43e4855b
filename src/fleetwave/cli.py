"""`fleetwave`: the command-line entry point.

Each subcommand lives in its own module under ``fleetwave.commands`` and exposes ``register(subparsers)``.
None of them is imported up front: ``fleetwave --help`` and ``--version`` read the table below, and only
the command that runs is imported, once this install is known to be able to run it. A robot's agent-only
install (``pip install "fleetwave[agent]"``, no moto, no boto3, possibly Python 3.10) must answer
``fleetwave agent --help``; a command it cannot run says what to install in one line and exits 2, never
with an ImportError traceback.

This module itself must import and run on Python 3.10 (ROS 2 Humble's Python).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from fleetwave import __version__

DISTRIBUTION = "fleetwave"
USAGE_ERROR = 2


@dataclass(frozen=True)
class Command:
    module: str
    summary: str
    extra: str | None = None  # the extra whose packages the command needs; None: the base install
    python: tuple[int, int] = (3, 10)  # the service code, the local stack and the SDK need 3.11


OPERATOR = "operator"
SERVICE_PYTHON = (3, 11)
# Order is the order `fleetwave --help` lists them.
COMMANDS: dict[str, Command] = {
    "serve": Command(
        "fleetwave.commands.serve",
        "run the local stack (API, embedded AWS, MQTT broker)",
        OPERATOR,
        SERVICE_PYTHON,
    ),
    "simulate": Command(
        "fleetwave.commands.simulate",
        "run simulated robots for a fleet (against fleetwave serve or a deployed stack)",
        OPERATOR,
        SERVICE_PYTHON,
    ),
    "agent": Command("fleetwave.commands.agent", "run one robot agent (real deployments, or --simulate)"),
    "robot": Command(
        "fleetwave.commands.robot",
        "give a robot its identity, renew it, retire it (robot provision / rotate-cert / retire)",
        OPERATOR,
        SERVICE_PYTHON,
    ),
    "demo": Command(
        "fleetwave.commands.demo",
        "run the local stack, a simulated fleet and a rollout end to end",
        OPERATOR,
        SERVICE_PYTHON,
    ),
    "bench": Command(
        "fleetwave.commands.bench",
        "rollouts on simulated fleets of 10, 100 and 1,000 robots; prints what each costs",
        OPERATOR,
        SERVICE_PYTHON,
    ),
    "jobs": Command(
        "fleetwave.commands.jobs",
        "watch a RoboMaker deployment job roll out (jobs watch JOB)",
        OPERATOR,
        SERVICE_PYTHON,
    ),
    "deployments": Command(
        "fleetwave.commands.deployments",
        "watch a Greengrass deployment roll out (deployments watch ID)",
        OPERATOR,
        SERVICE_PYTHON,
    ),
    "console": Command(
        "fleetwave.commands.console",
        "serve the web console (fleets, robots, applications, deployments) on this machine",
        OPERATOR,
        SERVICE_PYTHON,
    ),
    "sdk": Command(
        "fleetwave.commands.sdk",
        "install Fleetwave's botocore models for boto3 and the AWS CLI (sdk install-models)",
        OPERATOR,
        SERVICE_PYTHON,
    ),
}

DESCRIPTION = (
    "Fleetwave: deploy robot applications to robot fleets in waves. "
    "The RoboMaker fleet-management API and the Greengrass V2 deployments API, "
    "served locally (`fleetwave serve`) or from your AWS account (cdk deploy)."
)


def install_hint(extra: str) -> str:
    return f'pip install "{DISTRIBUTION}[{extra}]"'


@cache
def missing_from_extra(extra: str) -> tuple[str, ...]:
    """The distributions ``extra`` requires that are not installed, read from Fleetwave's own metadata
    (pyproject.toml is the one list). Empty when Fleetwave itself is not installed (a bare source tree):
    there is nothing to check against, and an import error will say what is missing."""
    import importlib.metadata as metadata

    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return ()
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    missing = []
    for requirement in requirements:
        spec, _, condition = requirement.partition(";")
        if not marker.search(condition):
            continue
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if name is None:
            continue
        try:
            metadata.distribution(name.group(1))
        except metadata.PackageNotFoundError:
            missing.append(name.group(1))
    return tuple(missing)


def _dotted(version: Sequence[int]) -> str:
    return ".".join(map(str, version))


def unmet_need(name: str) -> tuple[str, str] | None:
    """What this install lacks to run command ``name``: (the reason, in one line; the short need that
    `fleetwave --help` shows), or None when it can run it."""
    command = COMMANDS[name]
    if sys.version_info < command.python:
        wanted = _dotted(command.python)
        return (
            f"needs Python {wanted} or newer, this is Python {_dotted(sys.version_info[:3])} "
            "(the robot agent, `fleetwave agent`, runs on 3.10)",
            f"Python {wanted}+",
        )
    if command.extra is not None:
        missing = missing_from_extra(command.extra)
        if missing:
            hint = install_hint(command.extra)
            return f"needs the {command.extra} extra ({', '.join(missing)} not installed): {hint}", hint
    return None


def _parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog="fleetwave", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fleetwave {__version__}")
    return parser, parser.add_subparsers(dest="command", metavar="COMMAND")


def build_overview_parser() -> argparse.ArgumentParser:
    """`fleetwave --help`: every command from the table, none imported; a command this install cannot
    run says what it needs."""
    parser, subparsers = _parser()
    for name, command in COMMANDS.items():
        unmet = unmet_need(name)
        summary = command.summary if unmet is None else f"{command.summary} [needs {unmet[1]}]"
        subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser for running command ``name``: imports its module (and only it)."""
    parser, subparsers = _parser()
    importlib.import_module(COMMANDS[name].module).register(subparsers)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    # The top-level options (--help, --version) take no value, so the first word is the command.
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = _command_in(argv)
    if name is None:
        parser = build_overview_parser()
        parser.parse_args(argv)  # --help, --version and unknown commands exit here
        parser.print_help()
        return USAGE_ERROR
    unmet = unmet_need(name)
    if unmet is not None:
        print(f"fleetwave {name}: {unmet[0]}", file=sys.stderr)
        return USAGE_ERROR
    try:
        args = build_parser(name).parse_args(argv)
        return int(args.handler(args) or 0)
    except ImportError as error:
        # The extra is installed, yet an import fails: a broken or partial environment, or a module that
        # does not support this Python. Say so in one line; the traceback helps nobody installing.
        extra = COMMANDS[name].extra
        missing_package = isinstance(error, ModuleNotFoundError) and extra is not None
        hint = f": {install_hint(extra)}" if missing_package else ""
        print(f"fleetwave {name}: cannot run here, {error}{hint}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
