"""The wheel test's fixtures: Fleetwave built once, then installed per audience outside the checkout.

- ``built``             (session) the sdist and the wheel from `python -m build` (the wheel is built from
                        the sdist)
- ``agent_install``     (session) a fresh venv with ``fleetwave[agent]``: the robot's install
- ``operator_install``  (session) a fresh venv with ``fleetwave[operator]``
- ``python310``         a Python 3.10 interpreter (ROS 2 Humble's), or the test is skipped
- ``outside``           (function) an empty working directory outside the checkout

Every test that uses them is in test_dist_wheel.py, so `pytest -n 2 --dist loadfile` builds once.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from wheel_installs import REPO_ROOT, Built, Install, build, install


def _outside_checkout(path: Path) -> Path:
    assert REPO_ROOT not in path.resolve().parents, f"{path} is inside the checkout"
    return path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(_outside_checkout(tmp_path_factory.mktemp("dists")))


@pytest.fixture(scope="session")
def agent_install(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Install:
    return install(_outside_checkout(tmp_path_factory.mktemp("agent") / "venv"), built.wheel, "agent")


@pytest.fixture(scope="session")
def operator_install(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Install:
    return install(_outside_checkout(tmp_path_factory.mktemp("operator") / "venv"), built.wheel, "operator")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    return _outside_checkout(tmp_path)


def _python_candidates() -> list[str]:
    named = [os.environ.get("FLEETWAVE_PYTHON310", ""), shutil.which("python3.10") or ""]
    # pyenv's interpreters are on these machines even where its shim does not select them.
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")))
    return [candidate for candidate in [*named, *pyenv] if candidate]


@pytest.fixture(scope="session")
def python310() -> str:
    for candidate in _python_candidates():
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    pytest.skip("no Python 3.10 interpreter here (set FLEETWAVE_PYTHON310 to one)")
