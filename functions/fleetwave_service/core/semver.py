"""Semantic versions and npm-style version requirements, as Greengrass component recipes use them.

A component version is ``MAJOR.MINOR.PATCH`` with an optional ``-prerelease`` and ``+build`` (semver 2.0.0;
the build is ignored for ordering). A recipe's ``ComponentDependencies.<name>.VersionRequirement`` is an npm
range (Greengrass reads it with semver4j's NPM mode): comparators (``=``, ``>``, ``>=``, ``<``, ``<=``) joined
by spaces (all must hold), alternatives joined by ``||``, plus the shorthands ``*``/``x``/``1.x``/``1.2``
(X-ranges), ``~1.2.3`` (tilde), ``^1.2.3`` (caret) and ``1.2.3 - 2.3.4`` (hyphen). As in npm, a prerelease
version satisfies a set of comparators only if one of them names a prerelease of the same
``MAJOR.MINOR.PATCH``.

Pure Python with no dependencies: the service resolves dependencies with it and the robot agent checks the
deployed set with it (Python 3.10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# A partial version in a range: 1, 1.2, 1.2.3, 1.x, 1.2.*, with an optional prerelease on a full one.
_PARTIAL = re.compile(
    r"^v?(\d+|[xX*])(?:\.(\d+|[xX*])(?:\.(\d+|[xX*])(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?)?)?$"
)
_COMPARATOR = re.compile(r"^(<=|>=|<|>|=|\^|~>?)?\s*(.*)$")


class SemverError(ValueError):
    """Not a semantic version, or not an npm-style version requirement."""


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if match is None:
            raise SemverError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH[-prerelease][+build])")
        pre = tuple(int(p) if p.isdigit() else p for p in match.group(4).split(".")) if match.group(4) else ()
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre)

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def _key(self) -> tuple:
        # A release ranks above its prereleases; numeric identifiers rank below alphanumeric ones.
        if not self.prerelease:
            return (*self.core, 1, ())
        return (
            *self.core,
            0,
            tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease),
        )

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        pre = "-" + ".".join(str(p) for p in self.prerelease) if self.prerelease else ""
        return f"{self.major}.{self.minor}.{self.patch}{pre}"


def is_version(text: str) -> bool:
    return _VERSION.match(text.strip()) is not None


@dataclass(frozen=True)
class _Comparator:
    operator: str  # one of <, <=, >, >=, =
    version: Version

    def test(self, version: Version) -> bool:
        if self.operator == "<":
            return version < self.version
        if self.operator == "<=":
            return version <= self.version
        if self.operator == ">":
            return version > self.version
        if self.operator == ">=":
            return version >= self.version
        return version._key() == self.version._key()


def _zero_pre() -> tuple[int | str, ...]:
    return (0,)


def _next_up(major: int, minor: int | None) -> Version:
    """The lowest version above ``major.x`` (minor None) or ``major.minor.x``, prereleases included."""
    if minor is None:
        return Version(major + 1, 0, 0, _zero_pre())
    return Version(major, minor + 1, 0, _zero_pre())


class Requirement:
    """An npm-style range; ``Requirement.parse(text).allows(version)``."""

    def __init__(self, text: str, alternatives: list[list[_Comparator]]) -> None:
        self.text = text
        self._alternatives = alternatives

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Requirement({self.text!r})"

    @classmethod
    def parse(cls, text: str) -> Requirement:
        if not isinstance(text, str):
            raise SemverError(f"{text!r} is not a version requirement")
        alternatives = []
        for part in text.split("||"):
            alternatives.append(_comparator_set(part.strip(), text))
        return cls(text, alternatives)

    def allows(self, version: Version | str) -> bool:
        if isinstance(version, str):
            version = Version.parse(version)
        return any(_set_allows(comparators, version) for comparators in self._alternatives)


def _set_allows(comparators: list[_Comparator], version: Version) -> bool:
    if not all(comparator.test(version) for comparator in comparators):
        return False
    if not version.prerelease:
        return True
    # npm: a prerelease only matches a range that opts in to prereleases of that very MAJOR.MINOR.PATCH.
    return any(c.version.prerelease and c.version.core == version.core for c in comparators)


def _comparator_set(text: str, whole: str) -> list[_Comparator]:
    if text in ("", "*", "x", "X"):
        return [_Comparator(">=", Version(0, 0, 0))]
    hyphen = re.match(r"^(\S+)\s+-\s+(\S+)$", text)
    if hyphen is not None:
        return _hyphen(hyphen.group(1), hyphen.group(2), whole)
    # "> = 1.2" style spacing: glue operators to their versions first.
    tokens = re.sub(r"(<=|>=|<|>|=|\^|~>?)\s+", r"\1", text).split()
    comparators: list[_Comparator] = []
    for token in tokens:
        comparators += _expand(token, whole)
    return comparators


def _partial(text: str, whole: str) -> tuple[int | None, int | None, int | None, tuple[int | str, ...]]:
    match = _PARTIAL.match(text)
    if match is None:
        raise SemverError(f"{whole!r} is not an npm-style version requirement (at {text!r})")

    def number(value: str | None) -> int | None:
        return None if value is None or value in ("x", "X", "*") else int(value)

    major, minor, patch = number(match.group(1)), number(match.group(2)), number(match.group(3))
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    pre: tuple[int | str, ...] = ()
    if match.group(4):
        if patch is None:
            raise SemverError(f"{whole!r}: a prerelease needs a full version (at {text!r})")
        pre = Version.parse(f"{major}.{minor}.{patch}-{match.group(4)}").prerelease
    return major, minor, patch, pre


def _expand(token: str, whole: str) -> list[_Comparator]:
    match = _COMPARATOR.match(token)
    assert match is not None
    operator, rest = match.group(1) or "", match.group(2)
    if not rest:
        raise SemverError(f"{whole!r} is not an npm-style version requirement (at {token!r})")
    major, minor, patch, pre = _partial(rest, whole)
    if operator == "^":
        return _caret(major, minor, patch, pre)
    if operator.startswith("~"):
        return _tilde(major, minor, patch, pre)
    if major is None:  # *, x: anything (or nothing, for < and >)
        if operator in ("<", ">"):
            return [_Comparator("<", Version(0, 0, 0, _zero_pre()))]
        return [_Comparator(">=", Version(0, 0, 0))]
    if minor is not None and patch is not None:
        return [_Comparator(operator or "=", Version(major, minor, patch, pre))]
    # A partial version: 1 means 1.x.x, 1.2 means 1.2.x.
    low = Version(major, minor or 0, 0)
    high = (
        Version(major + 1, 0, 0, _zero_pre()) if minor is None else Version(major, minor + 1, 0, _zero_pre())
    )
    if operator in ("", "="):
        return [_Comparator(">=", low), _Comparator("<", high)]
    if operator == ">":
        return [_Comparator(">=", high)]
    if operator == ">=":
        return [_Comparator(">=", low)]
    if operator == "<":
        return [_Comparator("<", Version(*low.core, _zero_pre()))]
    return [_Comparator("<", high)]  # <=


def _caret(major: int | None, minor: int | None, patch: int | None, pre: tuple) -> list[_Comparator]:
    if major is None:
        return [_Comparator(">=", Version(0, 0, 0))]
    low = Version(major, minor or 0, patch or 0, pre)
    if major > 0 or minor is None:
        high = Version(major + 1, 0, 0, _zero_pre())
    elif minor > 0 or patch is None:
        high = Version(0, minor + 1, 0, _zero_pre())
    else:
        high = Version(0, 0, patch + 1, _zero_pre())
    return [_Comparator(">=", low), _Comparator("<", high)]


def _tilde(major: int | None, minor: int | None, patch: int | None, pre: tuple) -> list[_Comparator]:
    if major is None:
        return [_Comparator(">=", Version(0, 0, 0))]
    low = Version(major, minor or 0, patch or 0, pre)
    high = (
        Version(major + 1, 0, 0, _zero_pre()) if minor is None else Version(major, minor + 1, 0, _zero_pre())
    )
    return [_Comparator(">=", low), _Comparator("<", high)]


def _hyphen(low_text: str, high_text: str, whole: str) -> list[_Comparator]:
    comparators = []
    major, minor, patch, pre = _partial(low_text, whole)
    if major is not None:
        comparators.append(_Comparator(">=", Version(major, minor or 0, patch or 0, pre)))
    major, minor, patch, pre = _partial(high_text, whole)
    if major is None:
        pass
    elif patch is None:
        comparators.append(_Comparator("<", _next_up(major, minor)))
    else:
        comparators.append(_Comparator("<=", Version(major, minor, patch, pre)))
    return comparators or [_Comparator(">=", Version(0, 0, 0))]
