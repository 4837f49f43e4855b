"""Synthesize the real app once per test session (per xdist worker) and share the template."""

from __future__ import annotations

import pytest
from support.infra_template import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
