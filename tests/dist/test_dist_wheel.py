"""The wheel as users get it: built with `python -m build`, installed per extra into fresh venvs outside
the checkout, its commands run from a directory that is not the checkout (issue 16; the robot's install
of issue 8, item 8).

What the robot's install may weigh: at most 10 distributions (pip, setuptools and wheel not counted:
an ordinary venv brings them, Fleetwave does not) and 40 MB of site-packages, neither moto, boto3, the
CDK nor the local stack.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from agent_install_report import report_on
from wheel_installs import (
    AGENT_MAX_BYTES,
    AGENT_MAX_DISTRIBUTIONS,
    REPO_ROOT,
    Built,
    Install,
    clean_environment,
    install,
    normalize,
)

import fleetwave
from fleetwave.bench_agent import agent_idle_footprint

pytestmark = pytest.mark.dist

# What a robot must never pull: the local stack, the AWS SDK, the CDK.
NOT_ON_A_ROBOT = {
    "moto",
    "boto3",
    "botocore",
    "amqtt",
    "aws-lambda-powertools",
    "aws-cdk-lib",
    "constructs",
    "cdk-nag",
    "rich",
}
OPERATOR_EXTRA = 'pip install "fleetwave[operator]"'
# Caps, not expectations: serve starts in ~3 s, the rollout to one robot and the demo with 4 robots end
# in ~15 s.
SERVE_START_SECONDS = 120.0
JOB_DEADLINE_SECONDS = 240.0
TIME_SCALE = "0.05"
DEMO_TIMEOUT_SECONDS = 300
COMMAND_TIMEOUT_SECONDS = 120
READY_PREFIX = "fleetwave serve: API "
# Imports every module of the agent, as `fleetwave agent` may load any of them; prints how many.
IMPORT_AGENT_MODULES = """
import importlib, pkgutil
import fleetwave.agent
names = ["fleetwave.commands.agent", "fleetwave.agent"]
names += [module.name for module in pkgutil.walk_packages(fleetwave.agent.__path__, "fleetwave.agent.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""

# Source directory -> where its files land in the wheel (setup.py: packages under src/ and functions/,
# and the top-level statemachines/ as fleetwave.statemachines).
STATEMACHINES = ("statemachines", "fleetwave/statemachines")


def package_roots() -> list[tuple[str, str]]:
    roots = [
        (f"{root}/{package.name}", package.name)
        for root in ("src", "functions")
        for package in sorted((REPO_ROOT / root).iterdir())
        if (package / "__init__.py").is_file()
    ]
    return [*roots, STATEMACHINES]


def source_files() -> dict[str, str]:
    """Every committed file of the packages' source trees -> its path in the wheel."""
    files = {}
    for source, target in package_roots():
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", source],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        )
        for name in filter(None, listed.stdout.decode().split("\0")):
            files[name] = f"{target}/{name.removeprefix(source + '/')}"
    return files


def fleetwave_command(install: Install, *args: str, cwd: Path, timeout: float = COMMAND_TIMEOUT_SECONDS):
    return subprocess.run(
        [str(install.bin("fleetwave")), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=clean_environment(),
    )


# --- the build ----------------------------------------------------------------------------------------
def test_dist_wheel_and_sdist_carry_every_file_the_code_reads(built: Built) -> None:
    # Given the source trees of the packages (code, the ASL, any data file next to the code)
    expected = source_files()
    assert "statemachines/rollout.asl.json" in expected
    # When the wheel was built, Then each of them is in it, at its package path (a data file that
    # package_data does not match, or a folder without __init__.py, fails here and not at a user's)
    in_wheel = set(built.wheel_names())
    missing = {source: target for source, target in expected.items() if target not in in_wheel}
    assert missing == {}, f"files the installed package would lack: {missing}"
    # And the sdist the wheel was built from carries their sources, the build script and the documents
    with tarfile.open(built.sdist) as sdist:
        prefix = f"fleetwave-{fleetwave.__version__}/"
        in_sdist = {name.removeprefix(prefix) for name in sdist.getnames()}
    wanted = {*expected, "setup.py", "pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"}
    assert sorted(wanted - in_sdist) == []


def test_dist_wheel_metadata_names_version_license_urls_and_extras(built: Built) -> None:
    metadata = built.metadata()
    fields = [tuple(line.split(": ", 1)) for line in metadata.split("\n\n")[0].splitlines() if ": " in line]

    def values(name: str) -> list[str]:
        return [value for key, value in fields if key == name]

    # The version is the package's own (one place), the license Apache-2.0 with its text in the wheel
    assert values("Version") == [fleetwave.__version__]
    assert built.wheel.name == f"fleetwave-{fleetwave.__version__}-py3-none-any.whl"
    assert values("License-Expression") == ["Apache-2.0"]
    assert f"fleetwave-{fleetwave.__version__}.dist-info/licenses/LICENSE" in built.wheel_names()
    assert {url.split(",")[0] for url in values("Project-URL")} >= {"Homepage", "Source", "Changelog"}
    assert "Programming Language :: Python :: 3.10" in values("Classifier")
    # The agent runs on 3.10 (pip on 3.10 refuses a wheel that asks for more)
    assert values("Requires-Python") == [">=3.10"]
    # The base install is the robot's: pydantic and paho-mqtt only
    base = [value for value in values("Requires-Dist") if ";" not in value]
    assert sorted(normalize(re.split(r"[<>=\[ ]", value)[0]) for value in base) == ["paho-mqtt", "pydantic"]
    assert set(values("Provides-Extra")) >= {"agent", "operator", "infra", "dev"}
    # moto is pinned exactly: the local runtime touches its internals
    assert 'moto[server]==5.2.5; extra == "operator"' in values("Requires-Dist")


def test_dist_packaged_asl_is_the_deployed_definition(built: Built) -> None:
    # Given the ASL as the wheel ships it
    packaged = built.wheel_text("fleetwave/statemachines/rollout.asl.json")
    # When the CDK app is synthesized
    sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT)]
    try:
        from support.infra_template import synthesize
    finally:
        del sys.path[:2]
    with_cdk = synthesize(Path(built.wheel.parent / "cdk.out"))
    (machine,) = with_cdk.resources("AWS::StepFunctions::StateMachine").values()
    # Then the state machine it deploys is that very text (placeholders and all), and so is the source
    assert machine["Properties"]["DefinitionString"] == packaged
    assert (REPO_ROOT / "statemachines" / "rollout.asl.json").read_text(encoding="utf-8") == packaged


# --- the robot's install ------------------------------------------------------------------------------
def test_dist_agent_install_is_light(agent_install: Install) -> None:
    distributions = agent_install.distributions()
    assert "fleetwave" in distributions
    assert {normalize(name) for name in distributions} & NOT_ON_A_ROBOT == set()
    assert len(distributions) <= AGENT_MAX_DISTRIBUTIONS, distributions
    size = agent_install.size_bytes()
    assert size <= AGENT_MAX_BYTES, f"{size / 1e6:.1f} MB installed: {distributions}"


def test_dist_agent_install_runs_version_help_and_agent_help(agent_install: Install, outside: Path) -> None:
    version = fleetwave_command(agent_install, "--version", cwd=outside)
    assert (version.returncode, version.stdout.strip()) == (0, f"fleetwave {fleetwave.__version__}")

    overview = fleetwave_command(agent_install, "--help", cwd=outside)
    assert overview.returncode == 0, overview.stderr
    listing = " ".join(overview.stdout.split())
    assert f"serve run the local stack (API, embedded AWS, MQTT broker) [needs {OPERATOR_EXTRA}]" in listing

    agent_help = fleetwave_command(agent_install, "agent", "--help", cwd=outside)
    assert agent_help.returncode == 0, agent_help.stderr
    assert "--robot" in agent_help.stdout and "--mqtt-url" in agent_help.stdout


@pytest.mark.parametrize(
    "args", [["serve"], ["demo", "--robots", "4"], ["simulate", "--fleet", "f"], ["bench", "--help"]]
)
def test_dist_agent_install_names_the_extra_an_operator_command_needs(
    agent_install: Install, outside: Path, args: list[str]
) -> None:
    # When the robot's install is asked for an operator command
    result = fleetwave_command(agent_install, *args, cwd=outside)
    # Then it exits 2 with one line naming the extra, and no traceback
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"fleetwave {args[0]}: needs the operator extra")
    assert OPERATOR_EXTRA in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_dist_agent_install_on_python_310(
    built: Built, python310: str, tmp_path: Path, outside: Path
) -> None:
    # Given the robot's install on Python 3.10 (pip on 3.10 refuses a wheel that requires more)
    on_310 = install(tmp_path / "venv", built.wheel, "agent", python=python310)
    # Then the CLI answers, and a command that needs 3.11 says so in one line
    version = fleetwave_command(on_310, "--version", cwd=outside)
    assert (version.returncode, version.stdout.strip()) == (0, f"fleetwave {fleetwave.__version__}")
    assert fleetwave_command(on_310, "--help", cwd=outside).returncode == 0
    serve = fleetwave_command(on_310, "serve", cwd=outside)
    assert serve.returncode == 2
    assert serve.stderr.startswith("fleetwave serve: needs Python 3.11 or newer, this is Python 3.10")
    assert serve.stderr.count("\n") == 1, serve.stderr
    # And the agent runs there: its help, every one of its modules, and a real agent that connects to a
    # broker and subscribes
    agent_help = fleetwave_command(on_310, "agent", "--help", cwd=outside)
    assert agent_help.returncode == 0, agent_help.stderr
    assert "--robot" in agent_help.stdout and "install-service" in agent_help.stdout
    assert int(on_310.ask(IMPORT_AGENT_MODULES)) > 10
    footprint = agent_idle_footprint(on_310.root, settle_seconds=0)
    assert footprint.python == str(on_310.python) and footprint.rss_kib > 0


def test_dist_agent_install_report_prints_size_packages_and_idle_rss(agent_install: Install) -> None:
    # `make bench`'s first lines, measured on the robot's install: the agent that runs is that install's
    report = report_on(agent_install)
    text = "\n".join(report.lines())
    for figure in ("installed size", "distributions", "idle agent RSS"):
        assert figure in text, text
    assert report.footprint.python == str(agent_install.python)
    assert 0 < report.footprint.rss_kib <= report.footprint.peak_rss_kib


# --- the operator's install ---------------------------------------------------------------------------
def signed_post(url: str, body: dict) -> tuple[int, dict]:
    """POST with SigV4 for execute-api, signed by this test's own botocore (not the product's SDK)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        "POST", url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    prepared = request.prepare()
    opened = urllib.request.Request(url, data=prepared.body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(opened, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_for_ready_line(process: subprocess.Popen, stdout: Path, stderr: Path) -> str:
    deadline = time.monotonic() + SERVE_START_SECONDS
    while time.monotonic() < deadline:
        for line in stdout.read_text(errors="replace").splitlines():
            if line.startswith(READY_PREFIX):
                return line
        if process.poll() is not None:
            break
        time.sleep(0.1)
    output = f"{stdout.read_text()}\n{stderr.read_text()}"
    raise AssertionError(f"fleetwave serve did not get ready (exit {process.poll()}):\n{output}")


def call(api: str, operation: str, body: dict) -> dict:
    status, answer = signed_post(f"{api}{operation}", body)
    assert status == 200, (operation, status, answer)
    return answer


def wait_for_job(api: str, job_arn: str) -> dict:
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        job = call(api, "describeDeploymentJob", {"job": job_arn})
        if job["status"] in ("Succeeded", "Failed", "Canceled"):
            return job
        time.sleep(0.25)
    raise AssertionError(f"the job did not finish: {job}")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_dist_operator_install_serves_the_api_and_rolls_out_to_a_simulated_robot(
    operator_install: Install, outside: Path
) -> None:
    version = fleetwave_command(operator_install, "--version", cwd=outside)
    assert version.stdout.strip() == f"fleetwave {fleetwave.__version__}"
    # Given `fleetwave serve` from the operator's install, run from a directory that is not the checkout,
    # every port picked by the system
    fleetwave_bin = str(operator_install.bin("fleetwave"))
    stdout, stderr = outside / "serve.out", outside / "serve.err"
    ports = ["--port", "0", "--aws-port", "0", "--mqtt-port", "0", "--time-scale", TIME_SCALE]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        serve = subprocess.Popen(
            [fleetwave_bin, "serve", *ports],
            stdout=out,
            stderr=err,
            cwd=outside,
            env=clean_environment(PYTHONUNBUFFERED="1"),
        )
    simulate = None
    try:
        ready = wait_for_ready_line(serve, stdout, stderr)
        api, mqtt = re.search(r"API (http://\S+/) .* MQTT (mqtt://\S+)", ready).groups()
        # When a fleet is created and the fleets are listed, both signed
        fleet = call(api, "createFleet", {"name": "dist-wheel"})
        # Then the API answers with the fleet
        listed = call(api, "listFleets", {})
        assert [item["arn"] for item in listed["fleetDetails"]] == [fleet["arn"]]
        # And an unsigned request is refused, as API Gateway with AWS_IAM does
        unsigned = urllib.request.Request(f"{api}listFleets", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unsigned, timeout=60)
        assert refused.value.code == 403

        # When a robot of the fleet runs under `fleetwave simulate` (the real agent code) from the same
        # install, and a version is rolled out to the fleet
        robot = call(
            api, "createRobot", {"name": "dist-robot", "architecture": "X86_64", "greengrassGroupId": "g"}
        )
        call(api, "registerRobot", {"fleet": fleet["arn"], "robot": robot["arn"]})
        source = {"s3Bucket": "fleetwave-bundles", "s3Key": "app.tar.gz", "architecture": "X86_64"}
        suite = {"name": "ROS2", "version": "Foxy"}
        application = call(
            api,
            "createRobotApplication",
            {"name": "dist-app", "sources": [source], "robotSoftwareSuite": suite},
        )
        release = call(api, "createRobotApplicationVersion", {"application": application["arn"]})
        with (outside / "simulate.log").open("wb") as log:
            simulate = subprocess.Popen(
                [fleetwave_bin, "simulate", "--endpoint", api, "--mqtt-url", mqtt, "--fleet", "dist-wheel"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=outside,
                env=clean_environment(PYTHONUNBUFFERED="1"),
            )
        launch = {"packageName": "hello", "launchFile": "hello.launch"}
        job = call(
            api,
            "createDeploymentJob",
            {
                "clientRequestToken": "dist-wheel-1",
                "fleet": fleet["arn"],
                # a generous robot timeout: the simulator's own start-up must not count as silence
                "deploymentConfig": {"robotDeploymentTimeoutInSeconds": 1200},
                "deploymentApplicationConfigs": [
                    {
                        "application": release["arn"],
                        "applicationVersion": release["version"],
                        "launchConfig": launch,
                    }
                ],
            },
        )
        # Then the job succeeds with the robot InSync
        done = wait_for_job(api, job["arn"])
        log = (outside / "simulate.log").read_text(errors="replace")
        assert done["status"] == "Succeeded", (done, log)
        assert [item["status"] for item in done["robotDeploymentSummary"]] == ["InSync"], (done, log)
        assert stop(simulate) == 0, (outside / "simulate.log").read_text()
    finally:
        if simulate is not None and simulate.poll() is None:
            simulate.kill()
        code = stop(serve)
    assert code == 0, stderr.read_text()


def test_dist_operator_install_runs_the_demo_to_its_end(operator_install: Install, outside: Path) -> None:
    result = fleetwave_command(
        operator_install,
        *("demo", "--robots", "4", "--time-scale", "0.05", "--seed", "7"),
        cwd=outside,
        timeout=DEMO_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "rollout and sync ended as expected" in result.stdout
