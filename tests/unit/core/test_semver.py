"""npm-style version requirements as Greengrass recipes write them (core/semver.py)."""

from __future__ import annotations

import pytest
from fleetwave_service.core.semver import Requirement, SemverError, Version


@pytest.mark.parametrize(
    ("requirement", "allowed", "refused"),
    [
        (">=1.0.0 <2.0.0", ["1.0.0", "1.9.9"], ["0.9.9", "2.0.0", "2.0.0-rc.1", "1.5.0-beta"]),
        ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("^1.2.x", ["1.2.0", "1.9.0"], ["2.0.0", "1.1.9"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("~1", ["1.0.0", "1.9.9"], ["2.0.0"]),
        ("1.x", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.0"]),
        ("1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
        ("*", ["0.0.1", "9.9.9"], ["1.0.0-alpha"]),
        ("", ["1.0.0"], []),
        ("1.0.0", ["1.0.0", "1.0.0+build.5"], ["1.0.1"]),
        ("=1.0.0", ["1.0.0"], ["1.0.1"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        ("<1.2", ["1.1.9"], ["1.2.0", "1.2.0-rc.1"]),
        (">= 1.0.0  < 1.5.0", ["1.4.9"], ["1.5.0"]),
        ("1.2.3 - 2.3.4", ["1.2.3", "2.3.4"], ["2.3.5", "1.2.2"]),
        ("1.2 - 2.3", ["1.2.0", "2.3.9"], ["2.4.0"]),
        ("<1.0.0 || >=2.0.0", ["0.5.0", "2.1.0"], ["1.5.0"]),
        (">=1.0.0-rc.1 <2.0.0", ["1.0.0-rc.2", "1.0.0"], ["1.1.0-rc.1"]),
    ],
)
def test_semver_npm_requirements(requirement: str, allowed: list[str], refused: list[str]) -> None:
    parsed = Requirement.parse(requirement)
    assert [v for v in allowed if not parsed.allows(v)] == []
    assert [v for v in refused if parsed.allows(v)] == []


def test_semver_versions_order_as_semver_says() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]  # fmt: skip
    versions = [Version.parse(text) for text in ordered]
    assert sorted(reversed(versions)) == versions
    assert str(Version.parse("1.2.3-rc.1+build")) == "1.2.3-rc.1"


@pytest.mark.parametrize("text", [">=banana", "1.2.3.4", "^", ">=1.0.0 <", "1.x-rc.1"])
def test_semver_requirements_that_are_not_npm_ranges_are_refused(text: str) -> None:
    with pytest.raises(SemverError, match="not an npm-style version requirement|needs a full version"):
        Requirement.parse(text)


@pytest.mark.parametrize("text", ["1", "1.2", "01.2.3", "1.2.3-", "latest"])
def test_semver_versions_must_be_full(text: str) -> None:
    with pytest.raises(SemverError):
        Version.parse(text)
