"""`fleetwave` itself: a table of commands, none imported until one runs (the robot's install depends on it).

The installed-wheel side (agent-only install, Python 3.10) is in tests/dist/test_dist_wheel.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

import fleetwave
from fleetwave import cli

# What the robot's install does not have; `fleetwave agent --help` must not need any of it.
OPERATOR_MODULES = {"moto", "boto3", "botocore", "amqtt", "aws_lambda_powertools", "rich", "aws_cdk"}


def imported_after(*argv: str) -> tuple[int, set[str]]:
    """Run the CLI in a fresh interpreter; its exit code and the top-level modules it imported."""
    code = (
        "import json, sys\n"
        "from fleetwave.cli import main\n"
        "try:\n"
        f"    status = main({list(argv)!r})\n"
        "except SystemExit as exit:\n"
        "    status = exit.code\n"
        "sys.stdout = sys.__stdout__\n"
        "print(json.dumps([status, sorted(sys.modules)]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    status, modules = json.loads(result.stdout.splitlines()[-1])
    return status, set(modules)


def test_cli_help_and_version_import_no_command_module():
    for argv in (["--help"], ["--version"], []):
        _, modules = imported_after(*argv)
        assert {m for m in modules if m.startswith("fleetwave.commands")} == set(), argv


def test_cli_agent_help_needs_nothing_of_the_operator_install():
    status, modules = imported_after("agent", "--help")
    assert status == 0
    assert {m.split(".")[0] for m in modules} & OPERATOR_MODULES == set()


def test_cli_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"fleetwave {fleetwave.__version__}"


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_cli_each_command_module_registers_its_command(name):
    # The table names the module; the module registers a parser under the table's name with a handler
    subparsers = argparse.ArgumentParser().add_subparsers(dest="command")
    __import__(cli.COMMANDS[name].module, fromlist=["register"]).register(subparsers)
    assert list(subparsers.choices) == [name]
    assert subparsers.choices[name].get_default("handler") is not None


def test_cli_help_lists_every_command_with_its_summary(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listing = " ".join(capsys.readouterr().out.split())
    for name, command in cli.COMMANDS.items():
        assert f"{name} {command.summary}" in listing


def test_cli_a_command_on_a_python_too_old_says_so_in_one_line(monkeypatch, capsys):
    # Given an interpreter older than what serve needs (the robot's 3.10)
    monkeypatch.setattr(sys, "version_info", (3, 10, 12, "final", 0))
    # When serve is asked for, Then one line names the Python it needs, exit 2, nothing imported
    assert cli.main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "fleetwave serve: needs Python 3.11 or newer, this is Python 3.10.12 "
        "(the robot agent, `fleetwave agent`, runs on 3.10)\n"
    )


def test_cli_a_command_whose_extra_is_missing_names_it(monkeypatch, capsys):
    # Given an install whose metadata lists an operator package that is not installed
    import importlib.metadata as metadata

    requires = metadata.requires("fleetwave") or []
    monkeypatch.setattr(
        metadata, "requires", lambda name: [*requires, 'fleetwave-absent-package>=1; extra == "operator"']
    )
    cli.missing_from_extra.cache_clear()
    try:
        assert cli.main(["simulate", "--fleet", "f"]) == 2
    finally:
        cli.missing_from_extra.cache_clear()
    assert capsys.readouterr().err == (
        "fleetwave simulate: needs the operator extra (fleetwave-absent-package not installed): "
        'pip install "fleetwave[operator]"\n'
    )


def test_cli_the_operator_extra_is_complete_in_the_development_install():
    assert cli.missing_from_extra("operator") == ()
