"""Headless Chromium for the console's browser tests: Debian's ``chromium`` and ``chromium-driver`` driven by
selenium, never a browser downloaded at run time.

On a machine without them the tests skip and say why; where FLEETWAVE_REQUIRE_BROWSER=1 (set by .ci/run,
which installs both) a missing browser fails them instead: CI never skips them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

REQUIRE = "FLEETWAVE_REQUIRE_BROWSER"
INSTALL = "apt-get install chromium chromium-driver"
# The flags this sandbox needs: no GPU, no setuid sandbox, and nothing that reaches the network by itself.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def _found() -> tuple[str | None, str | None]:
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver = shutil.which("chromedriver")
    return browser, driver


def chrome() -> Any:
    """A selenium Chrome on a fresh profile; skips (or fails, in CI) when the browser is missing."""
    browser, driver = _found()
    if browser is None or driver is None:
        missing = " and ".join(
            name for name, path in (("chromium", browser), ("chromedriver", driver)) if not path
        )
        reason = f"browser tests need headless Chromium: {missing} not installed ({INSTALL})"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{reason}; {REQUIRE}=1 says this run must not skip them")
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager must never try to download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    profile = Path(tempfile.mkdtemp(prefix="fleetwave-chromium-"))
    options.add_argument(f"--user-data-dir={profile}")
    driver_ = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    driver_.fleetwave_profile = profile
    return driver_


def close(driver: Any) -> None:
    driver.quit()
    shutil.rmtree(driver.fleetwave_profile, ignore_errors=True)
