"""`fleetwave demo`: the whole product in one command, on one machine, in under two minutes.

What it does, the way a user would: starts `fleetwave serve` on free ports (a subprocess, logs to a file),
creates a fleet of simulated robots of mixed architectures, builds a small ROS-style bundle per
architecture and uploads it to the embedded S3, creates a robot application and a version, runs the real
robot agent for every robot (the simulator, in this process, over the embedded MQTT broker), rolls the
version out in 25% waves while one robot fails its pre-launch script and one stays silent, then registers
three new robots, runs SyncDeploymentJob, and prints a summary. Every API call goes through the signed SDK
over HTTP.
"""

from __future__ import annotations

import argparse

from fleetwave.commands.arguments import positive_number, whole_number
from fleetwave.demo.plan import DEFAULT_ROBOTS, DEFAULT_TIME_SCALE

_robots = whole_number(4, 500, "robots must be between 4 and 500, not {value}")
_time_scale = positive_number("time scale must be greater than 0 and at most 1, not {text}", at_most=1)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the local stack, a simulated fleet and a rollout end to end",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--robots", type=_robots, default=DEFAULT_ROBOTS, help="robots in the fleet (default: %(default)s)"
    )
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=DEFAULT_TIME_SCALE,
        metavar="F",
        help=(
            "multiplies every simulated duration and every engine wait; at the default %(default)s the "
            "silent robot's 60 s timeout lasts 6 s"
        ),
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the local stack and the simulated robots up at the end (Ctrl-C stops them)",
    )
    parser.add_argument("--seed", type=int, default=None, help="repeat a run's random robot delays")
    parser.add_argument(
        "--mtls",
        action="store_true",
        help="robots connect as real robots do: a certificate each, on the broker's mTLS listener, each "
        "confined to its own topics",
    )
    parser.add_argument(
        "--greengrass",
        action="store_true",
        help=(
            "the Greengrass demo instead: two robots running the real agent, one component with an "
            "artifact and a run script deployed with botocore's greengrassv2 client (--robots and --mtls "
            "do not apply)"
        ),
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from fleetwave.demo.run import run_demo  # rich, the SDK and boto3: not for `fleetwave --help`

    return run_demo(
        args.robots,
        args.time_scale,
        keep_running=args.keep_running,
        seed=args.seed,
        mtls=args.mtls,
        greengrass=args.greengrass,
    )
