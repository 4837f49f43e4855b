"""`fleetwave robot`: a robot's identity, from the operator's machine (docs/robot-identity.md).

``provision`` gives a robot a certificate and writes the directory to copy to it; ``rotate-cert`` gives it
a new certificate beside the old one (the agent picks it up; the old one is revoked once the agent
connected with the new one); ``retire`` deletes the robot (DeleteRobot: its certificates revoked, its thing
deleted). Against `fleetwave serve` (a loopback --endpoint) or a deployed stack (--profile, --stack).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fleetwave.commands.endpoint import add_endpoint_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "robot",
        help="give a robot its identity, renew it, retire it",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    # Each action sets its own handler; without one (never: an action is required), the help.
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    actions = parser.add_subparsers(dest="robot_action", metavar="ACTION", required=True)
    provision = actions.add_parser(
        "provision",
        help="create the robot's certificate and key and write the directory to copy to the robot",
        description="Create a certificate and private key for a robot (CreateRobot first), attach the robot "
        "policy and the robot's thing, and write DIR: certificate.pem, private.key (0600), ca.pem and "
        "agent.json, so that `fleetwave agent --config DIR/agent.json` is all the robot runs.",
    )
    _common(provision)
    provision.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write the robot's directory (default: ./fleetwave-robot-<thing name>)",
    )
    provision.add_argument(
        "--force",
        action="store_true",
        help="provision a robot that already has a certificate: a new one, the old ones revoked",
    )
    provision.set_defaults(handler=run_provision)

    rotate = actions.add_parser(
        "rotate-cert",
        help="give a robot a new certificate; the old one is revoked once its agent reconnected with it",
        description="Issue a new certificate for the robot and write it over its identity directory --dir "
        "(the robot's copy: the agent reloads its certificate files when they change and reconnects, "
        "without restarting or touching its deployments). Once the robot's agent has connected again "
        "(its presence after the new files were written), every other certificate of the robot is "
        "detached, deactivated and deleted. If it does not within --timeout, the old certificates stay "
        "active: run rotate-cert --revoke-old once the robot has the new files.",
    )
    _common(rotate)
    rotate.add_argument("--dir", type=Path, required=True, help="the robot's identity directory (agent.json)")
    rotate.add_argument(
        "--timeout", type=float, default=300.0, help="how long to wait for the agent (default: %(default)s s)"
    )
    rotate.add_argument(
        "--revoke-old",
        action="store_true",
        help="issue nothing: revoke every certificate of the robot but the one in --dir",
    )
    rotate.set_defaults(handler=run_rotate)

    retire = actions.add_parser(
        "retire",
        help="delete the robot: its certificates revoked and deleted, its thing deleted (DeleteRobot)",
        description="DeleteRobot: the robot's certificates are detached, deactivated and deleted, its thing "
        "deleted, the robot removed from its fleet and its retained command cleared. Its certificate can "
        "no longer connect.",
    )
    retire.add_argument("--robot", required=True, help="the robot's name (or ARN)")
    add_endpoint_arguments(retire)
    retire.set_defaults(handler=run_retire)

    claim = actions.add_parser(
        "claim-certificate",
        help="create a claim certificate for robots made in batches (fleet provisioning by claim)",
        description="Create a certificate with the claim policy (it can do nothing but provision) and write "
        "DIR: certificate.pem, private.key, ca.pem and claim.json. Put DIR on every robot of a batch; "
        "each runs `fleetwave agent --claim DIR/claim.json --robot NAME` and trades it for its own "
        "certificate, if the operator created a robot of that name (CreateRobot).",
    )
    add_endpoint_arguments(claim)
    _stack_argument(claim)
    claim.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write it")
    claim.set_defaults(handler=run_claim_certificate)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", required=True, help="the robot's name (or ARN)")
    add_endpoint_arguments(parser)
    _stack_argument(parser)


def _stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        default="Fleetwave",
        help="the deployed stack whose robot policy to attach (its RobotPolicyName output; default: "
        "%(default)s); not used against fleetwave serve",
    )


def _target(args: argparse.Namespace):  # -> fleetwave.provisioning.Target
    from fleetwave.commands.endpoint import is_local
    from fleetwave.provisioning import aws_target, local_target

    if is_local(args.endpoint) and not args.profile:
        return local_target(args.endpoint)
    return aws_target(args.region, args.profile, args.stack)


def run_provision(args: argparse.Namespace) -> int:
    from fleetwave.commands.endpoint import EndpointError, api_client
    from fleetwave.provisioning import CONFIG_NAME, ProvisioningError, provision
    from fleetwave.sdk.client import FleetwaveApiError

    try:
        robot, written, certificate_id = provision(
            api_client(args), _target(args), args.robot, args.out, force=args.force
        )
    except (ProvisioningError, FleetwaveApiError, EndpointError) as error:
        return _failed("provision", error)
    print(f"robot {robot.name} provisioned: certificate {certificate_id}, thing {robot.thing}")
    print(f"copy {written} to the robot and run: fleetwave agent --config {written / CONFIG_NAME}")
    return 0


def run_claim_certificate(args: argparse.Namespace) -> int:
    from fleetwave.provisioning import ProvisioningError, create_claim

    try:
        path, certificate_id = create_claim(_target(args), args.out)
    except ProvisioningError as error:
        return _failed("claim-certificate", error)
    print(f"claim certificate {certificate_id} written: {path}")
    print(f"on each robot: fleetwave agent --claim {path} --robot <name created with CreateRobot>")
    return 0


def _failed(action: str, error: Exception) -> int:
    from fleetwave.provisioning import ProvisioningError

    kind = f"{error.error_type}: " if isinstance(error, ProvisioningError) else ""
    print(f"fleetwave robot {action}: {kind}{error}", file=sys.stderr)
    return 1


def run_rotate(args: argparse.Namespace) -> int:
    import json

    from fleetwave.commands.endpoint import EndpointError, api_client
    from fleetwave.provisioning import (
        CONFIG_NAME,
        ProvisioningError,
        find_robot,
        finish_rotation,
        rotate,
        wait_reconnected,
    )
    from fleetwave.sdk.client import FleetwaveApiError

    try:
        target = _target(args)
        client = api_client(args)
        if args.revoke_old:
            keep = json.loads((args.dir / CONFIG_NAME).read_text())["certificateId"]
            robot = find_robot(client, args.robot)
        else:
            rotation = rotate(client, target, args.robot, args.dir)
            robot, keep = rotation.robot, rotation.certificate_id
            print(f"robot {robot.name}: new certificate {keep} written to {args.dir}")
            if not wait_reconnected(client, robot, rotation.written_at, args.timeout):
                print(
                    f"fleetwave robot rotate-cert: the agent of {robot.name} did not reconnect within "
                    f"{args.timeout:g} s; its old certificate(s) stay active. Once the robot has the new "
                    f"files: fleetwave robot rotate-cert --robot {robot.name} --dir {args.dir} --revoke-old",
                    file=sys.stderr,
                )
                return 1
        revoked = finish_rotation(target, robot, keep)
    except (ProvisioningError, FleetwaveApiError, EndpointError, OSError, KeyError, ValueError) as error:
        return _failed("rotate-cert", error)
    print(f"robot {robot.name}: {len(revoked)} old certificate(s) revoked; it uses {keep}")
    return 0


def run_retire(args: argparse.Namespace) -> int:
    from fleetwave.commands.endpoint import EndpointError, api_client
    from fleetwave.provisioning import ProvisioningError, find_robot
    from fleetwave.sdk.client import FleetwaveApiError

    try:
        client = api_client(args)
        robot = find_robot(client, args.robot)
        client.call("deleteRobot", {"robot": robot.arn})
    except (ProvisioningError, FleetwaveApiError, EndpointError) as error:
        return _failed("retire", error)
    print(f"robot {robot.name} retired: its certificates revoked, its thing {robot.thing} deleted")
    return 0
