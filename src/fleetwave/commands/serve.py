"""`fleetwave serve`: the local stack on one machine (no AWS account, no docker)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from fleetwave.commands.arguments import port, positive_number

DESCRIPTION = """\
Run Fleetwave locally: moto in server mode holds DynamoDB, S3, IoT and Step Functions; the API is served
at http://HOST:PORT/ (no stage segment) and verifies SigV4 for service execute-api, region us-east-1,
account 123456789012, with the key pair FLEETWAVE_LOCAL_ACCESS_KEY_ID / FLEETWAVE_LOCAL_SECRET_ACCESS_KEY
(default testing / testing). Upload robot-application bundles to the embedded AWS endpoint (bucket
fleetwave-bundles). Prints one line with the endpoints when ready; stops cleanly on Ctrl-C or SIGTERM.
"""


_time_scale = positive_number("time scale must be a positive number, not {text}")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the local stack (API, embedded AWS, MQTT broker)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=port, default=8787, help="API port (default: %(default)s)")
    parser.add_argument(
        "--aws-port",
        type=port,
        default=8788,
        help="embedded AWS endpoint port, for S3 uploads and AWS tools (default: %(default)s)",
    )
    parser.add_argument(
        "--mqtt-port", type=port, default=1883, help="MQTT broker port (default: %(default)s)"
    )
    parser.add_argument(
        "--mqtts-port",
        type=port,
        default=8883,
        help="the broker's mTLS listener: robots connect with a certificate of the local CA and may use "
        "only their own topics (default: %(default)s)",
    )
    parser.add_argument(
        "--no-mtls",
        action="store_true",
        help="no mTLS listener (and no local CA): only the plain listener",
    )
    parser.add_argument(
        "--mtls-only",
        action="store_true",
        help="robots must use mTLS: the plain listener refuses every client but the stack's own",
    )
    parser.add_argument(
        "--identity-dir",
        default=os.environ.get("FLEETWAVE_IDENTITY_DIR") or None,
        metavar="DIR",
        help="where the local CA is created on first start and kept (env FLEETWAVE_IDENTITY_DIR; default "
        "~/.fleetwave/serve/identity)",
    )
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=None,
        metavar="F",
        help=(
            "multiply every wait and timeout of the local runtime by F, e.g. 0.01 to rehearse a "
            "60 s robot timeout in 0.6 s (env FLEETWAVE_TIME_SCALE; default 1)"
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.no_mtls and args.mtls_only:
        print("fleetwave serve: error: --mtls-only needs the mTLS listener (drop --no-mtls)", file=sys.stderr)
        return 2
    time_scale = args.time_scale
    if time_scale is None:
        try:
            time_scale = _time_scale(os.environ.get("FLEETWAVE_TIME_SCALE") or "1")
        except argparse.ArgumentTypeError as error:
            print(f"fleetwave serve: error: FLEETWAVE_TIME_SCALE: {error}", file=sys.stderr)
            return 2

    # Imported here: `fleetwave --help` should not pay for moto.
    from fleetwave.local.runtime import LocalConfig, LocalRuntime, LocalRuntimeError

    config = LocalConfig(
        host=args.host,
        port=args.port,
        aws_port=args.aws_port,
        mqtt_port=args.mqtt_port,
        mqtts_port=None if args.no_mtls else args.mqtts_port,
        identity_dir=args.identity_dir,
        mtls_only=args.mtls_only,
        time_scale=time_scale,
        access_key_id=os.environ.get("FLEETWAVE_LOCAL_ACCESS_KEY_ID") or "testing",
        secret_access_key=os.environ.get("FLEETWAVE_LOCAL_SECRET_ACCESS_KEY") or "testing",
    )
    stopping = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        if stopping.is_set():
            # A second Ctrl-C while shutting down means "now": skip the clean stop.
            os._exit(130)
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    runtime = LocalRuntime(config)
    try:
        try:
            runtime.start()
        except LocalRuntimeError as error:
            print(f"fleetwave serve: error: {error}", file=sys.stderr)
            return 1
        print(runtime.ready_line(), flush=True)
        stopping.wait()
        runtime.stop()
        print("fleetwave serve: stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
