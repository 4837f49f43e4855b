"""`make fuzz`: start `fleetwave serve`, fuzz it from AWS's API descriptions, print the figures.

    python tests/fuzz/run.py [--cases 10000] [--seed 0] [--endpoint URL]

Exit status 1 when any response broke the property (tests/support/fuzzing.py) or the server stopped
answering; the figures go to stdout (docs/reliability.md quotes the last run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]

from botocore.credentials import Credentials  # noqa: E402
from support import fuzzing  # noqa: E402

from fleetwave.local import serve_process  # noqa: E402
from fleetwave.sdk import FleetwaveClient  # noqa: E402

CREDENTIALS = Credentials("testing", "testing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--endpoint", help="an already running fleetwave serve (default: start one)")
    args = parser.parse_args(argv)

    server = None
    endpoint = args.endpoint
    if endpoint is None:
        server = serve_process.start_serve(
            time_scale="0.01",
            env={"FLEETWAVE_LOCAL_ACCESS_KEY_ID": "testing", "FLEETWAVE_LOCAL_SECRET_ACCESS_KEY": "testing"},
            start_timeout=120,
        )
        endpoint = server.api_url
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/openapi.json", timeout=30) as answer:
            openapi = json.loads(answer.read())
        client = FleetwaveClient(endpoint, credentials=CREDENTIALS)
        arns = fuzzing.seed_resources(client, server.aws_client("s3") if server is not None else None)
        report = fuzzing.run(endpoint, CREDENTIALS, openapi, args.cases, seed=args.seed, known_arns=arns)
        alive = client.request("listFleets", {}).status == 200
    finally:
        if server is not None:
            server.stop()
    print(f"fuzz: seed {args.seed}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(report.figures())
    print(f"server still answering afterwards: {'yes' if alive else 'NO'}")
    return 0 if alive and not report.violations else 1


if __name__ == "__main__":
    sys.exit(main())
