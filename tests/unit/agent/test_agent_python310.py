"""The agent runs on robots: Python 3.10 (ROS 2 Humble), with pydantic and paho-mqtt and nothing else.

- imported, and run, in a process where the service and local-stack packages cannot be imported;
- checked statically for Python 3.10 with vermin, over the agent's modules and every shared module they
  import (the list comes from that same process, so it cannot drift from the code);
- the shared message models' 3.10 fallback for enum.StrEnum keeps str(), format() and the wire format.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BLOCKED = ("boto3", "botocore", "aws_lambda_powertools", "moto", "amqtt", "rich")
WAIT = 60

# Runs in a fresh interpreter: no module of the blocked distributions can be imported there.
BLOCKER = f"""
import importlib.abc, sys
BLOCKED = {BLOCKED!r}

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is not installed on a robot", name=name)
        return None

sys.meta_path.insert(0, Blocked())
"""

IMPORT_ALL = (
    BLOCKER
    + """
import contextlib, io, json, pkgutil, importlib
import fleetwave.agent
names = ["fleetwave.agent"]
names += [m.name for m in pkgutil.walk_packages(fleetwave.agent.__path__, "fleetwave.agent.")]
names.append("fleetwave.commands.agent")
for name in names:
    importlib.import_module(name)
from fleetwave.cli import main
help_text = io.StringIO()
with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
    main(["agent", "--help"])
ours = sorted(
    module.__file__ for name, module in sys.modules.items()
    if name.split(".")[0] in ("fleetwave", "fleetwave_service") and getattr(module, "__file__", None)
)
print(json.dumps({"modules": names, "files": ours, "help": help_text.getvalue()}))
"""
)

RUN_AGENT = (
    BLOCKER
    + """
import sys
from fleetwave.cli import main
sys.exit(main(sys.argv[1:]))
"""
)


VERMIN = "import sys; from vermin.main import main; sys.exit(main())"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}


@pytest.fixture(scope="module")
def agent_import_graph() -> dict:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=WAIT, env=_clean_env()
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_agent_modules_and_agent_help_need_none_of_the_service_or_local_stack_packages(agent_import_graph):
    assert "fleetwave.agent.process" in agent_import_graph["modules"]
    assert "usage: fleetwave agent" in agent_import_graph["help"]
    assert "install-service" in agent_import_graph["help"]


def test_agent_runs_with_only_its_own_dependencies(tmp_path):
    # A real agent (ProcessLauncher, state, outbox, MQTT) that starts, waits for its broker, and stops
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_AGENT, "agent", "--robot", "r1", "--mqtt-url", "mqtt://127.0.0.1:9",
         "--work-dir", str(tmp_path / "work")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT
        while (process.poll() is None and time.monotonic() < deadline
               and not (tmp_path / "work" / "agent.lock").exists()):  # fmt: skip
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "agent r1 stopped" in out
    assert "ModuleNotFoundError" not in err and "agent starting robot=r1" in err


def test_agent_and_the_shared_modules_it_imports_are_python_310_compatible(agent_import_graph):
    pytest.importorskip("vermin", reason="vermin checks Python 3.10 compatibility: pip install -e '.[dev]'")
    files = agent_import_graph["files"]
    assert any(f.endswith("fleetwave_service/engine/messages.py") for f in files)
    result = subprocess.run(
        [sys.executable, "-c", VERMIN, "-t=3.10-", "--violations", "--no-tips", "--eval-annotations", *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _as_on_310(monkeypatch, name: str, path: str, **modules):
    """A module of ours as Python 3.10 executes it (enum.StrEnum does not exist there); ``modules``: which
    modules of ours it imports are such copies too, by name."""
    spec = importlib.util.spec_from_file_location(f"{name}_as_on_310", REPO / path)
    assert spec is not None and spec.loader is not None
    on_310 = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, on_310)  # pydantic resolves annotations through it
    with monkeypatch.context() as as_on_310:
        as_on_310.setattr(sys, "version_info", (3, 10, 12, "final", 0))
        for imported, copy in modules.items():
            as_on_310.setitem(sys.modules, imported, copy)
        spec.loader.exec_module(on_310)
    return on_310


def test_message_enums_on_python_310_read_and_print_as_on_311(monkeypatch):
    # protocol.py (the enums), and messages.py on it, as Python 3.10 executes them
    protocol = _as_on_310(monkeypatch, "protocol", "functions/fleetwave_service/engine/protocol.py")
    on_310 = _as_on_310(
        monkeypatch,
        "messages",
        "functions/fleetwave_service/engine/messages.py",
        **{"fleetwave_service.engine.protocol": protocol},
    )
    from fleetwave_service.engine import messages

    assert on_310.FailureCode is protocol.FailureCode

    assert "enum.StrEnum" not in repr(type(on_310.FailureCode).__mro__)
    for ours, theirs in [
        (on_310.FailureCode, messages.FailureCode),
        (on_310.ProgressStep, messages.ProgressStep),
    ]:
        for member in ours:
            twin = theirs[member.name]
            assert str(member) == str(twin) == member.value
            assert f"{member}|{member:>30}" == f"{twin}|{twin:>30}"
            assert member == member.value
    report = {"jobId": "j", "attempt": 1, "seq": 0, "step": "Launching", "status": "Failed",
              "failureCode": "EtagMismatch", "sentAt": 1.0}  # fmt: skip
    assert (
        on_310.StatusReport.model_validate(report).model_dump_json()
        == messages.StatusReport.model_validate(report).model_dump_json()
    )
