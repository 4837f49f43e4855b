"""`fleetwave rehearse`: roll a planned deployment out on a simulated copy of a fleet, with the real engine
(the same state machine and handlers as in AWS) on this machine, and print how it would go."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from fleetwave.commands.arguments import positive_number, whole_number

DESCRIPTION = """\
Rehearse a deployment before it runs for real: the local stack starts in this process (no AWS account),
a simulated fleet is made (N robots in an architecture mix, or a copy of an existing fleet's robots with
--like), every robot runs the real agent code with a deployment time drawn from --duration (some fail or
stay silent, at the rates given), and the job rolls out with your deploymentConfig through the same state
machine and handlers as in AWS, every wait scaled by --time-scale. An approval gate in the deploymentConfig
(Fleetwave's extension) is approved as soon as the job reaches it.

It prints the waves, how many robots fail or time out, whether the failure threshold stops the job (and at
which wave), and the predicted makespan in real time. Exit status: 0 the job would succeed, 1 it would end
Failed, 2 impossible parameters, 3 the rehearsal could not run, 130 interrupted (Ctrl-C stops everything
it started).
"""

EXAMPLES = """\
examples:
  fleetwave rehearse --robots 1000 --concurrency 10 --failure-threshold 5 --duration normal:30,10
  fleetwave rehearse --robots 10000 --architectures X86_64=70,ARM64=30 --failure-rate 2 --silence-rate 1 \\
      --robot-timeout 120 --time-scale 0.02
  fleetwave rehearse --like warehouse --endpoint https://abc.execute-api.us-east-1.amazonaws.com/prod \\
      --deployment-config '{"concurrentDeploymentPercentage": 20, "failureThresholdPercentage": 10}'
"""

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# After Ctrl-C, how long stopping the robots and the stack may take before the process just exits.
STOP_GRACE_SECONDS = 30.0
DEFAULT_ROBOTS = 100
DEFAULT_TIME_SCALE = 0.05
DEFAULT_DURATION = "20"


def _percent(name: str) -> Any:
    return whole_number(1, 100, f"{name} must be a whole number from 1 to 100 (percent), not {{value}}")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be from 0 to 100 (percent), not {text}")
    return value


def _robots(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a rehearsal needs at least one robot, not {value}")
    return value


_time_scale = positive_number("must be more than 0 and at most 1, not {text}", at_most=1)
_max_robots = whole_number(1, 10**9, "must be at least 1, not {value}")


def register(subparsers: argparse._SubParsersAction) -> None:
    from fleetwave.commands.endpoint import add_endpoint_arguments
    from fleetwave.rehearse.plan import DEFAULT_FAILURE_CODE, DURATION_HELP, MAX_ROBOTS_ENV

    parser = subparsers.add_parser(
        "rehearse",
        help="rehearse a deployment on a simulated copy of a fleet; prints its waves, failures and makespan",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fleet = parser.add_argument_group("the fleet")
    fleet.add_argument(
        "--robots",
        type=_robots,
        default=None,
        metavar="N",
        help=f"simulated robots (default: {DEFAULT_ROBOTS})",
    )
    fleet.add_argument(
        "--architectures",
        default="X86_64",
        metavar="MIX",
        help="one architecture, or a mix in percent adding up to 100: X86_64=60,ARM64=30,ARMHF=10 "
        "(default: %(default)s)",
    )
    fleet.add_argument(
        "--like",
        metavar="FLEET",
        help="copy this fleet's robots (names and architectures) from the API at --endpoint instead",
    )
    add_endpoint_arguments(parser)
    fleet.add_argument(
        "--max-robots",
        type=_max_robots,
        default=None,
        help=f"the most robots a rehearsal may simulate (default: {MAX_ROBOTS_ENV}, else 10,000)",
    )
    job = parser.add_argument_group("the job's deploymentConfig")
    job.add_argument("--deployment-config", metavar="JSON", help="deploymentConfig as JSON, or @FILE")
    job.add_argument(
        "--concurrency", type=_percent("--concurrency"), metavar="PCT", help="concurrentDeploymentPercentage"
    )
    job.add_argument(
        "--failure-threshold",
        type=_percent("--failure-threshold"),
        metavar="PCT",
        help="failureThresholdPercentage",
    )
    job.add_argument(
        "--robot-timeout", type=int, metavar="SECONDS", help="robotDeploymentTimeoutInSeconds (60-604800)"
    )
    robots = parser.add_argument_group("the simulated robots")
    robots.add_argument(
        "--duration",
        default=DEFAULT_DURATION,
        metavar="SPEC",
        help=f"each robot's deployment time in real seconds: {DURATION_HELP} (default: %(default)s)",
    )
    robots.add_argument(
        "--failure-rate",
        type=_rate,
        default=0.0,
        metavar="PCT",
        help="percent of robots that fail (default: 0)",
    )
    robots.add_argument(
        "--silence-rate",
        type=_rate,
        default=0.0,
        metavar="PCT",
        help="percent of robots that never answer: they time out (default: 0)",
    )
    robots.add_argument(
        "--failure-code",
        default=DEFAULT_FAILURE_CODE,
        help="the failing robots' failure code (default: %(default)s)",
    )
    robots.add_argument("--seed", type=int, default=None, help="repeat a rehearsal's random draws")
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=DEFAULT_TIME_SCALE,
        metavar="F",
        help="multiplies every robot time and engine wait (default: %(default)s: a 20 s robot takes 1 s)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the figures as JSON to FILE ('-': stdout, and the report to stderr)",
    )
    parser.set_defaults(handler=main)


def deployment_config(args: argparse.Namespace) -> dict[str, Any]:
    """The job's deploymentConfig from --deployment-config and the flags (the flags win), checked as the API
    checks it; PlanError says what is wrong."""
    from fleetwave_service.core.validation import describe_errors
    from fleetwave_service.robomaker.models import DeploymentConfig
    from pydantic import ValidationError

    from fleetwave.rehearse.plan import PlanError

    config: dict[str, Any] = {}
    if args.deployment_config:
        text = args.deployment_config
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text()
            except OSError as error:
                raise PlanError(f"--deployment-config {args.deployment_config}: {error.strerror}") from None
        try:
            config = json.loads(text)
        except ValueError as error:
            raise PlanError(f"--deployment-config is not JSON: {error}") from None
        if not isinstance(config, dict):
            raise PlanError("--deployment-config must be a JSON object")
    for flag, name in (
        ("concurrency", "concurrentDeploymentPercentage"),
        ("failure_threshold", "failureThresholdPercentage"),
        ("robot_timeout", "robotDeploymentTimeoutInSeconds"),
    ):
        if getattr(args, flag) is not None:
            config[name] = getattr(args, flag)
    try:
        checked = DeploymentConfig.model_validate(config)
    except ValidationError as error:
        raise PlanError(f"deploymentConfig: {describe_errors(error.errors())}") from None
    if checked.downloadConditionFile is not None:
        raise PlanError("deploymentConfig: a rehearsal has no download condition file to run")
    return checked.model_dump(exclude_none=True)


def _robots_of(args: argparse.Namespace, limit: int) -> tuple[list[tuple[str, str]], str, str]:
    """(robots, fleet name, where they come from)."""
    from fleetwave.rehearse.plan import PlanError, parse_architectures, synthetic_fleet

    if args.like:
        if args.robots is not None:
            raise PlanError("--robots and --like cannot be used together: --like copies the fleet's robots")
        from fleetwave.rehearse.like import fleet_robots

        robots = fleet_robots(args, args.like, limit)
        return robots, "rehearsal-" + args.like[-100:], f"fleet {args.like} at {args.endpoint}"
    count = DEFAULT_ROBOTS if args.robots is None else args.robots
    if count > limit:
        from fleetwave.rehearse.plan import MAX_ROBOTS_ENV

        raise PlanError(
            f"{count:,} robots is more than the {limit:,} a rehearsal may simulate "
            f"(--max-robots or {MAX_ROBOTS_ENV} raise it)"
        )
    return synthetic_fleet(count, parse_architectures(args.architectures)), "rehearsal", ""


def main(args: argparse.Namespace) -> int:
    from fleetwave.rehearse.plan import Duration, PlanError, make_plan, max_robots

    def fail(message: str, status: int) -> int:
        print(f"fleetwave rehearse: {message}", file=sys.stderr)
        return status

    try:
        limit = args.max_robots or max_robots()
        from fleetwave_service.engine.messages import FAILURE_CODES

        if args.failure_code not in FAILURE_CODES:
            raise PlanError(
                f"--failure-code {args.failure_code!r}: expected one of {', '.join(sorted(FAILURE_CODES))}"
            )
        config = deployment_config(args)
        robots, fleet_name, source = _robots_of(args, limit)
        plan = make_plan(
            robots,
            deployment_config=config,
            time_scale=args.time_scale,
            duration=Duration.parse(args.duration),
            failure_rate=args.failure_rate,
            silence_rate=args.silence_rate,
            failure_code=args.failure_code,
            seed=args.seed,
            fleet_name=fleet_name,
            source=source,
            limit=limit,
        )
    except PlanError as error:
        return fail(str(error), EXIT_USAGE)
    except RuntimeError as error:  # --like: the endpoint cannot be called
        from fleetwave.rehearse.like import EndpointUnavailable

        if isinstance(error, EndpointUnavailable):
            return fail(str(error), EXIT_ERROR)
        raise
    return run(plan, args.json)


def run(plan: Any, json_path: str | None) -> int:
    from fleetwave.rehearse.report import ProgressView, as_json, plan_lines, result_lines
    from fleetwave.rehearse.run import RehearsalError, rehearse

    # With --json - the figures are stdout, alone (for jq and friends); what a person reads goes to stderr.
    out = sys.stderr if json_path == "-" else sys.stdout
    for line in plan_lines(plan):
        print(line, file=out, flush=True)
    stop = _stop_on_interrupt()
    try:
        with ProgressView(out, len(plan.robots), interactive=out.isatty()) as view:
            rehearsal = rehearse(plan, on_progress=view.update, on_stage=view.stage, stop=stop)
    except KeyboardInterrupt:
        print(
            "fleetwave rehearse: interrupted; the local stack and the simulated robots are stopped",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except RehearsalError as error:
        print(f"fleetwave rehearse: {error}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:  # the stack failed to start, an API call failed: say what, in one line
        from fleetwave.sdk import FleetwaveApiError

        if isinstance(error, FleetwaveApiError | OSError):
            print(f"fleetwave rehearse: the rehearsal could not run: {error}", file=sys.stderr)
            return EXIT_ERROR
        raise
    for line in result_lines(rehearsal):
        print(line, file=out, flush=True)
    if json_path:
        text = json.dumps(as_json(rehearsal), indent=2)
        if json_path == "-":
            print(text, file=sys.stdout, flush=True)
        else:
            Path(json_path).write_text(text + "\n")
    return EXIT_SUCCEEDED if rehearsal.outcome.status == "Succeeded" else EXIT_FAILED


def _stop_on_interrupt() -> threading.Event:
    """Ctrl-C (or SIGTERM) sets the returned event: the rehearsal stops between two steps and stops the
    robots and the stack on its way out (an exception raised at any point instead could land inside the
    stack, holding one of its locks, and hang the way out). If that takes longer than STOP_GRACE_SECONDS, or
    on a second Ctrl-C, the process exits at once; the robots' process ends on its own when this one is
    gone, and the stack is threads of this one, so nothing outlives it either way."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return stop  # signals are the main thread's; embedded in another program, leave them to it
    # Installed even when SIGINT came ignored from the parent (a test runner's worker, a background job of a
    # script): the user who interrupts a rehearsal means it.

    def interrupted(signum: int, frame: Any) -> None:
        if stop.is_set():
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        watchdog = threading.Timer(STOP_GRACE_SECONDS, os._exit, args=(EXIT_INTERRUPTED,))
        watchdog.daemon = True
        watchdog.start()

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    return stop
