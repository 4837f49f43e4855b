"""`fleetwave simulate`: simulated robots answering real commands over the embedded broker."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fakes.mqtt import FakeFleetLookup, StatusCollector, run_scenario, until
from fleetwave_service.engine.channels.mqtt import MqttChannel
from fleetwave_service.engine.messages import DeploymentCommand, LaunchConfig

from fleetwave.agent.simulated import Behavior
from fleetwave.commands.simulate import fleet_name_of, run_simulation
from fleetwave.local.broker import EmbeddedBroker

WAIT = 30


def command(job: str = "deployment-aaaaaaaaaaaa") -> DeploymentCommand:
    return DeploymentCommand(
        jobId=job,
        attempt=1,
        launchConfig=LaunchConfig(packageName="hello", launchFile="hello.launch", preLaunchFile="pre.sh"),
        timeoutSeconds=300,
        deadline=4e9,
        issuedAt=1e9,
    )


def _simulate(lookup, broker, out, stop, behaviors: dict[str, str]) -> asyncio.Task:
    """`run_simulation` for the fleet ``lookup`` names on ``broker``, fast steps, until ``stop``."""
    return asyncio.create_task(
        run_simulation(
            lookup,
            mqtt_url=broker.url,
            fleet_label="demo",
            default=Behavior.parse("ok"),
            behaviors={robot: Behavior.parse(text) for robot, text in behaviors.items()},
            step_seconds=0.01,
            poll_seconds=0.05,
            out=out,
            stop=stop,
        )
    )


def test_simulate_runs_each_robot_with_its_behaviour_and_picks_up_new_robots():
    with EmbeddedBroker(port=0) as broker:
        service = MqttChannel(broker.url, connect_timeout=WAIT)
        collector = StatusCollector(broker.port)
        lookup = FakeFleetLookup(["robot-1", "robot-2", "robot-3"])
        out = io.StringIO()
        # Given commands retained for three robots before the simulator starts (offline catch-up)
        assert service.publish_commands([(f"robot-{i}", command()) for i in (1, 2, 3)]) == []

        async def scenario() -> int:
            stop = asyncio.Event()
            simulation = _simulate(
                lookup, broker, out, stop, {"robot-2": "fail:EtagMismatch", "robot-3": "silent"}
            )
            await until(lambda: collector.final("robot-1") and collector.final("robot-2"))
            # When robot-4 is registered while the simulator runs and gets its command
            lookup.names.append("robot-4")
            await asyncio.to_thread(service.publish_command, "robot-4", command())
            await until(lambda: collector.final("robot-4"))
            # and robot-1 is deregistered, and one fleet poll fails along the way
            lookup.fail = True
            await until(lambda: "fleet lookup failed" in out.getvalue())
            lookup.fail = False
            lookup.names.remove("robot-1")
            await until(lambda: "robot-1      left the fleet" in out.getvalue())
            stop.set()
            return await asyncio.wait_for(simulation, WAIT)

        status = run_scenario(scenario, collector, service)

    assert status == 0
    assert collector.final("robot-1").status.value == "InSync"
    failed = collector.final("robot-2")
    assert (failed.status.value, failed.step.value, failed.failureCode) == (
        "Failed",
        "DownloadingExtracting",
        "EtagMismatch",
    )
    assert collector.final("robot-4").status.value == "InSync"
    assert "robot-3" not in collector.reports  # silent robots never answer
    steps = [r.step.value for r in collector.reports["robot-1"]]
    assert steps == ["Validating", "DownloadingExtracting", "ExecutingPreLaunch", "Launching", "Finished"]
    text = out.getvalue()
    assert "simulating 3 robots of fleet demo" in text
    assert "robot-3      deployment-aaaaaaaaaaaa #1  ignored (silent robot)" in text
    assert "robot-4      joined (ok)" in text
    assert "EtagMismatch: the downloaded bundle's etag does not match" in text
    assert text.rstrip().endswith("simulator stopped (3 robots)")


def test_simulate_once_behaviours_fail_or_miss_the_first_deployment_then_deploy_the_next():
    with EmbeddedBroker(port=0) as broker:
        service = MqttChannel(broker.url, connect_timeout=WAIT)
        collector = StatusCollector(broker.port)
        lookup = FakeFleetLookup(["robot-1", "robot-2"])
        out = io.StringIO()
        first, retry = "deployment-aaaaaaaaaaaa", "deployment-bbbbbbbbbbbb"

        def finished(robot: str, job: str) -> bool:
            final = collector.final(robot)
            return final is not None and final.jobId == job

        async def scenario() -> int:
            stop = asyncio.Event()
            simulation = _simulate(
                lookup,
                broker,
                out,
                stop,
                {"robot-1": "fail-once:PreLaunchFileFailure", "robot-2": "silent-once"},
            )
            # Given a first deployment: robot-1 fails it, robot-2 misses it
            await asyncio.to_thread(service.publish_commands, [(r, command(first)) for r in lookup.names])
            await until(lambda: finished("robot-1", first) and "ignored (silent robot)" in out.getvalue())
            # When another deployment comes
            await asyncio.to_thread(service.publish_commands, [(r, command(retry)) for r in lookup.names])
            await until(lambda: finished("robot-1", retry) and finished("robot-2", retry))
            stop.set()
            return await asyncio.wait_for(simulation, WAIT)

        status = run_scenario(scenario, collector, service)

    # Then both deploy it
    assert status == 0
    assert [
        (r.jobId, r.status.value) for r in collector.reports["robot-1"] if r.status.value != "Deploying"
    ] == [
        (first, "Failed"),
        (retry, "InSync"),
    ]
    assert collector.reports["robot-1"][-1].status.value == "InSync"
    assert {r.jobId for r in collector.reports["robot-2"]} == {retry}
    text = out.getvalue()
    assert "robot-1      joined (fail-once:PreLaunchFileFailure)" in text
    assert "robot-2      joined (silent-once)" in text


@pytest.mark.parametrize("text", ["fail-once:Bogus", "silent-once:x", "fail-once"])
def test_simulate_once_behaviours_reject_what_they_do_not_take(text):
    with pytest.raises(ValueError):
        Behavior.parse(text)


def test_simulate_without_a_broker_exits_1_with_a_readable_error(capsys):
    status = asyncio.run(
        run_simulation(
            FakeFleetLookup(["robot-1"]),
            mqtt_url="mqtt://127.0.0.1:9",
            fleet_label="demo",
            default=Behavior("ok"),
            behaviors={},
            out=io.StringIO(),
            stop=asyncio.Event(),
            connect_timeout=0.5,
        )
    )
    assert status == 1
    assert "cannot connect and subscribe to MQTT broker mqtt://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("fleet", "name"),
    [
        ("demo", "demo"),
        ("arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/demo/1700000000000", "demo"),
    ],
)
def test_fleet_name_of_accepts_a_name_or_a_fleet_arn(fleet, name):
    assert fleet_name_of(fleet) == name


# --- the command in its own process, against a stand-in API ----------------------------------------
class FakeApi(BaseHTTPRequestHandler):
    """Answers the three calls the simulator makes; remembers each request's Authorization header."""

    fleets = {"demo": ["robot-a", "robot-b"]}
    authorizations: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        FakeApi.authorizations.append(self.headers.get("Authorization", ""))
        if self.path == "/listFleets":
            name = body["filters"][0]["values"][0]
            found = [{"name": name, "arn": f"arn:fleet/{name}"}] if name in self.fleets else []
            self._answer(200, {"fleetDetails": found})
        elif self.path == "/listRobots":
            name = body["filters"][0]["values"][0]
            self._answer(200, {"robots": [{"name": robot} for robot in self.fleets.get(name, [])]})
        else:
            self._answer(
                403, {"message": "Missing Authentication Token"}, "MissingAuthenticationTokenException"
            )

    def _answer(self, status: int, body: dict, error: str | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeApi.authorizations = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fleetwave(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLEETWAVE_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "fleetwave.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_simulate_command_signs_its_fleet_lookup_and_exits_0_on_sigterm(api):
    with EmbeddedBroker(port=0) as broker:
        process = fleetwave(
            "simulate", "--endpoint", api, "--fleet", "demo", "--mqtt-url", broker.url, "--quiet"
        )
        try:
            first_line = process.stdout.readline()
            assert "simulating 2 robots of fleet demo" in first_line
            # When the user stops it
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err
    assert "simulator stopped (2 robots)" in out
    # The lookup was SigV4-signed for execute-api with the local key pair of `fleetwave serve`
    assert FakeApi.authorizations
    assert all(
        "Credential=testing/" in a and "/execute-api/aws4_request" in a for a in FakeApi.authorizations
    )


def test_simulate_command_for_an_unknown_fleet_exits_1(api):
    process = fleetwave("simulate", "--endpoint", api, "--fleet", "nope", "--mqtt-url", "mqtt://127.0.0.1:9")
    out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 1
    assert "cannot read fleet nope: ResourceNotFoundException: fleet nope does not exist" in err


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (["--behavior", "robot-1=explode"], "unknown behaviour 'explode'"),
        (["--behavior", "robot-1"], "expected ROBOT=BEHAVIOR"),
        (["--default-behavior", "fail:DiskOnFire"], "unknown failure code 'DiskOnFire'"),
        (["--time-scale", "0"], "must be greater than zero"),
    ],
)
def test_simulate_command_rejects_bad_arguments_with_exit_2(argument, message):
    process = fleetwave("simulate", "--fleet", "demo", *argument)
    _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 2
    assert message in err


def _started_line(broker_url: str, time_scale: float | None) -> str:
    """The simulator's first line for an empty fleet, then stop."""
    out = io.StringIO()

    async def scenario() -> int:
        stop = asyncio.Event()
        simulation = asyncio.create_task(
            run_simulation(
                FakeFleetLookup([]),
                mqtt_url=broker_url,
                fleet_label="demo",
                default=Behavior.parse("ok"),
                behaviors={},
                time_scale=time_scale,
                poll_seconds=0.05,
                out=out,
                stop=stop,
            )
        )
        await until(lambda: "simulating" in out.getvalue())
        stop.set()
        return await asyncio.wait_for(simulation, WAIT)

    assert asyncio.run(scenario()) == 0
    return out.getvalue().splitlines()[0]


def test_simulate_follows_the_time_scale_the_local_stack_retains():
    from fleetwave.local.broker import publish_runtime_info

    with EmbeddedBroker(port=0) as broker:
        # Given a local stack running at time scale 0.25, which retains it on its broker
        publish_runtime_info("127.0.0.1", broker.port, 0.25)

        # When the simulator starts without a time scale of its own
        line = _started_line(broker.url, None)

        # Then its robots run on the stack's clock
        assert "time scale 0.25" in line


def test_simulate_time_scale_given_explicitly_wins_over_the_stack():
    from fleetwave.local.broker import publish_runtime_info

    with EmbeddedBroker(port=0) as broker:
        publish_runtime_info("127.0.0.1", broker.port, 0.25)
        assert "time scale 2" in _started_line(broker.url, 2.0)


def test_simulate_without_a_retained_time_scale_runs_in_real_time():
    # Given a broker with nothing retained (a deployed stack's IoT Core never retains one)
    with EmbeddedBroker(port=0) as broker:
        assert "time scale 1" in _started_line(broker.url, None)
