"""Build Fleetwave's wheel and install it, per extra, into fresh virtual environments outside the checkout.

Used by the wheel test (tests/dist/test_dist_wheel.py, part of `make test`) and by `make bench`
(tests/dist/agent_install_report.py prints the robot's install: size, package count, names).

A venv is made without pip, and the checkout's pip installs into it (``pip --python``): the venv then
holds exactly what ``pip install "fleetwave[extra]"`` brings, resolved in full from the index (pip's
cache makes that quick), and nothing of the installer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The robot's install (issue 8): at most this many distributions and bytes in site-packages.
AGENT_MAX_DISTRIBUTIONS = 10
AGENT_MAX_BYTES = 40_000_000
# An ordinary venv brings these itself; they are not something `pip install fleetwave` pulls.
INSTALLER_DISTRIBUTIONS = frozenset({"pip", "setuptools", "wheel"})
# Caps, not expectations: a build takes ~10 s, an operator install ~20 s with a warm pip cache.
BUILD_TIMEOUT_SECONDS = 600
INSTALL_TIMEOUT_SECONDS = 900
# Variables of the caller's environment that would make an installed command see the checkout.
LEAKY_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


class CommandFailed(AssertionError):
    """A build or install step exited non-zero; the message carries its output."""


def run(command: Sequence[str | os.PathLike[str]], *, timeout: float, **kwargs) -> str:
    """Run a step, return its stdout; raise CommandFailed with both outputs when it fails."""
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(map(str, command))} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result.stdout


def clean_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without what would point an installed command back at the checkout."""
    env = {name: value for name, value in os.environ.items() if name not in LEAKY_VARIABLES}
    return {**env, **extra}


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as wheel:
            return wheel.namelist()

    def wheel_text(self, name: str) -> str:
        with zipfile.ZipFile(self.wheel) as wheel:
            return wheel.read(name).decode("utf-8")

    def metadata(self) -> str:
        (name,) = [n for n in self.wheel_names() if n.endswith(".dist-info/METADATA")]
        return self.wheel_text(name)


def build(outdir: Path, source: Path = REPO_ROOT) -> Built:
    """`python -m build`: the sdist, then the wheel built from that sdist (so the sdist is proven too)."""
    outdir.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "build", "--outdir", outdir, source], timeout=BUILD_TIMEOUT_SECONDS)
    (wheel,) = outdir.glob("fleetwave-*.whl")
    (sdist,) = outdir.glob("fleetwave-*.tar.gz")
    return Built(wheel, sdist)


@dataclass(frozen=True)
class Install:
    """A venv holding the wheel with one extra (or none), made outside the checkout."""

    root: Path
    extra: str | None

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name

    def ask(self, code: str) -> str:
        """Run Python code in the venv, from its own directory; its stdout."""
        # -I: isolated, so neither the current directory nor PYTHONPATH can add the checkout.
        return run([self.python, "-I", "-c", code], timeout=60, cwd=self.root, env=clean_environment())

    def distributions(self) -> list[str]:
        """Every installed distribution's name, sorted, installer tools (pip, setuptools, wheel) left out."""
        names = json.loads(
            self.ask(
                "import importlib.metadata as m, json; "
                "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"
            )
        )
        return sorted(
            {name for name in names if normalize(name) not in INSTALLER_DISTRIBUTIONS}, key=normalize
        )

    def site_packages(self) -> Path:
        return Path(self.ask("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())

    def size_bytes(self) -> int:
        """Bytes of every file in site-packages (byte-compiled files included, as pip leaves them)."""
        return sum(path.stat().st_size for path in self.site_packages().rglob("*") if path.is_file())


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Paho_MQTT`` is ``paho-mqtt``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def install(
    root: Path, wheel: Path, extra: str | None, python: str | os.PathLike[str] = sys.executable
) -> Install:
    """A fresh venv at ``root`` (outside the checkout) with ``wheel[extra]`` and its whole dependency tree."""
    run([python, "-m", "venv", "--without-pip", root], timeout=120)
    requirement = f"{wheel}[{extra}]" if extra else str(wheel)
    run(
        [sys.executable, "-m", "pip", "--python", root / "bin" / "python", "install", "--quiet", requirement],
        timeout=INSTALL_TIMEOUT_SECONDS,
        cwd=root,
        env=clean_environment(PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
    return Install(root, extra)
