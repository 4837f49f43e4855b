"""`fleetwave bench`: the same as `make bench` (``python -m fleetwave.bench``)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from fleetwave import bench

    parser = subparsers.add_parser(
        "bench",
        help="rollouts on simulated fleets of 10, 100 and 1,000 robots; prints what each costs",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_arguments(parser)
    parser.set_defaults(handler=bench.run)
