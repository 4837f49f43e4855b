"""`fleetwave console`: the web console on this machine, for `fleetwave serve` or a deployed stack.

It serves the console's pages and signs the API calls they make on the server side, with the local key pair
(`fleetwave serve`, the default endpoint) or your AWS credentials (--profile, the usual chain) for a
deployed stack: no credential reaches the browser. `fleetwave serve` serves the same console at
http://127.0.0.1:8787/console/.
"""

from __future__ import annotations

import argparse
import sys

from fleetwave.commands.arguments import port
from fleetwave.commands.endpoint import EndpointError, add_endpoint_arguments, api_client

DEFAULT_PORT = 8790


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "console",
        help="serve the web console on this machine",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_endpoint_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help="port to listen on, 0 for any (default: %(default)s)"
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from fleetwave.console.app import ConsoleApp
    from fleetwave.console.server import ConsoleServer
    from fleetwave.local.signals import wait_for_interrupt

    try:
        client = api_client(args)
    except EndpointError as error:
        print(f"fleetwave console: {error}", file=sys.stderr)
        return 2
    server = ConsoleServer(ConsoleApp(lambda: client, allowed_hosts={args.host}), args.host, args.port)
    try:
        server.start()
    except OSError as error:
        print(f"fleetwave console: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    print(f"fleetwave console: {server.url}  (API {args.endpoint})", flush=True)
    try:
        wait_for_interrupt()
    finally:
        server.stop()
    return 0
