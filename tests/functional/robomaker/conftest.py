"""Fixtures of the RoboMaker front door's functional tests (the API handler in process, no rollout engine).

- ``fleet``    a fleet "warehouse" with one registered robot "r1"
- ``version``  version 1 of the robot application "nav" (its bundle uploaded)
"""

from __future__ import annotations

import pytest


@pytest.fixture
def fleet(given):
    fleet = given.fleet("warehouse")
    given.robot("r1", fleet=fleet)
    return fleet


@pytest.fixture
def version(given):
    return given.application_version("nav")
