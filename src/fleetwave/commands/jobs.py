"""`fleetwave jobs watch`: see fleetwave.commands.watch."""

from __future__ import annotations

import argparse

from fleetwave.commands.watch import register_watch


def register(subparsers: argparse._SubParsersAction) -> None:
    register_watch(subparsers, "jobs")
