"""SemVer ranges with Masterminds/semver v3 rules, and Flux's tag parsing.

The range grammar and the meaning of each operator follow Masterminds/semver
v3 (the library Flux uses) case for case, including its quirks: ``>1.1`` means
``>=1.2.0``, ``<=1.1`` admits ``1.1.999``, and a prerelease version can only
satisfy an OR-group in which some constraint names a prerelease itself.
Version precedence comes from the ``semver`` package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import semver as _semver

from bot.policy.model import InvalidPolicyError

_UINT64_MAX = 2**64 - 1
#: Masterminds' own limit on a range's length; it also bounds parsing time.
MAX_RANGE_LENGTH = 512
_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"

# Masterminds ``NewVersion``: up to three numeric parts, leading ``v`` allowed.
_LOOSE_VERSION = re.compile(
    rf"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-({_IDENT}))?(?:\+({_IDENT}))?"
)

# Whitespace as Go's ``\s`` sees it (ASCII only).
_S = r"[\t\n\f\r ]"


def _constraint_version(capture: bool) -> str:
    """A constraint's version: segments may hold digits, wildcards and (as in
    Masterminds) a literal ``|``; then an optional prerelease and build."""
    g = "(" if capture else "(?:"
    return (
        rf"v?{g}[0-9xX*|]+)(?:\.{g}[0-9xX*|]+))?(?:\.{g}[0-9xX*|]+))?"
        rf"(?:-{g}{_IDENT}))?(?:\+{g}{_IDENT}))?"
    )


_CV = _constraint_version(capture=True)
_CV_PLAIN = _constraint_version(capture=False)
_OP = r"!=|>=|=>|<=|=<|~>|=|>|<|~|\^|"
_ONE_CONSTRAINT = re.compile(rf"({_OP}){_S}*({_CV})")
# An AND-group: constraints separated by whitespace and/or one comma. The
# quantifiers are possessive so that a non-matching range fails in linear time
# (the same language written naively backtracks exponentially on whitespace).
_ITEM = rf"(?:{_OP}){_S}*+{_CV_PLAIN}"
_VALID_GROUP = re.compile(rf"{_S}*+{_ITEM}(?:(?:{_S}*+,{_S}*+|{_S}++){_ITEM})*{_S}*+")
# Hyphen ranges ``A - B`` (spaces required) are rewritten to ``>= A, <= B``
# before anything else, surrounding whitespace included.
_HYPHEN_RANGE = re.compile(rf"{_S}*({_CV_PLAIN}){_S}+-{_S}+({_CV_PLAIN}){_S}*")

_OP_ALIASES = {"": "=", "=>": ">=", "=<": "<=", "~>": "~"}
_WILDCARDS = frozenset({"x", "X", "*"})


def go_quote(text: str) -> str:
    """Quote like Go's ``%q`` does for the strings we show in messages."""
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version; ``original`` is the text it was parsed from."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""
    original: str = ""
    _precedence: _semver.Version = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Build metadata never takes part in precedence.
        precedence = _semver.Version(self.major, self.minor, self.patch, self.prerelease or None)
        object.__setattr__(self, "_precedence", precedence)

    def compare(self, other: Version) -> int:
        """-1, 0 or 1 by SemVer precedence (build metadata ignored)."""
        return self._precedence.compare(other._precedence)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text


def parse_version(text: str) -> Version | None:
    """Masterminds ``NewVersion``: ``1``, ``1.2``, ``v1.2.3-rc.1+b`` ...; None if invalid."""
    match = _LOOSE_VERSION.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, prerelease, build = match.groups()
    numbers = [int(major), int(minor or 0), int(patch or 0)]
    if any(n > _UINT64_MAX for n in numbers):
        return None
    if prerelease and not _prerelease_ok(prerelease):
        return None
    return Version(*numbers, prerelease or "", build or "", text)


def parse_tag(tag: str) -> Version | None:
    """Flux's tag parsing: at least two dots, then the loose grammar; None if not a version.

    So ``1.2`` and ``v1`` are not versions, ``1.2-rc.1`` is (1.2.0-rc.1), and
    ``V1.2.3`` is not (only a lowercase ``v`` is allowed).
    """
    if tag.count(".") < 2:
        return None
    return parse_version(tag)


def _prerelease_ok(prerelease: str) -> bool:
    # Numeric identifiers must not have leading zeros (``rc.01`` is invalid).
    return not any(
        ident.isdigit() and len(ident) > 1 and ident[0] == "0" for ident in prerelease.split(".")
    )


@dataclass(frozen=True, slots=True)
class Constraint:
    """One comparison, e.g. ``>=1.2`` or ``~1.x``.

    ``dirty`` means a part was a wildcard or left out; ``minor_dirty`` that the
    minor part was (``1``, ``1.x``), ``patch_dirty`` that the patch part was.
    """

    op: str
    version: Version
    text: str
    dirty: bool = False
    minor_dirty: bool = False
    patch_dirty: bool = False

    def admits(self, v: Version) -> bool:
        """Whether ``v`` satisfies this comparison (prerelease gating is the group's job)."""
        return _CHECKS[self.op](v, self)


@dataclass(frozen=True, slots=True)
class Range:
    """A whole range: OR-groups of AND-ed constraints."""

    text: str
    groups: tuple[tuple[Constraint, ...], ...]
    # Per group: may a prerelease version satisfy it?
    admits_prerelease: tuple[bool, ...]

    def check(self, v: Version) -> bool:
        for group, with_pre in zip(self.groups, self.admits_prerelease, strict=True):
            if v.prerelease and not with_pre:
                continue
            if all(c.admits(v) for c in group):
                return True
        return False


def parse_range(text: str) -> Range:
    """Parse a Masterminds v3 range; raises `InvalidPolicyError` (``improper constraint: ...``)."""
    if len(text.encode()) > MAX_RANGE_LENGTH:
        raise InvalidPolicyError(f"constraint string is too long (max {MAX_RANGE_LENGTH} bytes)")
    rewritten = _HYPHEN_RANGE.sub(lambda m: f">= {m.group(1)}, <= {m.group(2)} ", text)
    groups = []
    for group_text in rewritten.split("||"):
        if _VALID_GROUP.fullmatch(group_text) is None:
            raise InvalidPolicyError(f"improper constraint: {go_quote(group_text)}")
        groups.append(tuple(_parse_constraint(m) for m in _ONE_CONSTRAINT.finditer(group_text)))
    return Range(
        text=text,
        groups=tuple(groups),
        admits_prerelease=tuple(any(c.version.prerelease for c in g) for g in groups),
    )


def _parse_constraint(match: re.Match[str]) -> Constraint:
    op, cv, major, minor, patch, prerelease, _build = match.groups()
    op = _OP_ALIASES.get(op, op)
    pre = f"-{prerelease}" if prerelease else ""
    # A wildcard or missing part makes the constraint "dirty": the parts after
    # it are ignored and the version is padded with zeros.
    flags = {}
    if major in _WILDCARDS:
        as_text, flags = f"0.0.0{pre}", {"dirty": True}
    elif minor is None or minor in _WILDCARDS:
        as_text, flags = f"{major}.0.0{pre}", {"dirty": True, "minor_dirty": True}
    elif patch is None or patch in _WILDCARDS:
        as_text, flags = f"{major}.{minor}.0{pre}", {"dirty": True, "patch_dirty": True}
    else:
        as_text = cv
    version = parse_version(as_text)
    if version is None:
        raise InvalidPolicyError(
            f"improper constraint: {go_quote(match.group(0).strip())}: not a valid version"
        )
    return Constraint(op=op, version=version, text=cv, **flags)


# The comparison functions, one per operator, exactly as Masterminds defines them.


def _not_equal(v: Version, c: Constraint) -> bool:
    con = c.version
    if c.dirty:
        if con.major != v.major:
            return True
        if con.minor != v.minor and not c.minor_dirty:
            return True
        if c.minor_dirty:
            return False
        if con.patch != v.patch and not c.patch_dirty:
            return True
        if c.patch_dirty:
            if v.prerelease or con.prerelease:
                return _compare_prerelease(v.prerelease, con.prerelease) != 0
            return False
    return v.compare(con) != 0


def _compare_prerelease(a: str, b: str) -> int:
    return Version(0, 0, 0, a).compare(Version(0, 0, 0, b))


def _greater_than(v: Version, c: Constraint) -> bool:
    con = c.version
    if not c.dirty:
        return v.compare(con) > 0
    if v.major != con.major:
        return v.major > con.major
    if c.minor_dirty:  # ``>11`` needs 12 or higher
        return False
    if c.patch_dirty:  # ``>11.1`` needs 11.2 or higher
        return v.minor > con.minor
    return v.compare(con) > 0


def _less_than(v: Version, c: Constraint) -> bool:
    return v.compare(c.version) < 0


def _greater_equal(v: Version, c: Constraint) -> bool:
    return v.compare(c.version) >= 0


def _less_equal(v: Version, c: Constraint) -> bool:
    con = c.version
    if not c.dirty:
        return v.compare(con) <= 0
    if v.major > con.major:
        return False
    # ``<=1.1`` admits every 1.1.x
    return not (v.major == con.major and v.minor > con.minor and not c.minor_dirty)


def _tilde(v: Version, c: Constraint) -> bool:
    con = c.version
    if v.compare(con) < 0:
        return False
    if (con.major, con.minor, con.patch) == (0, 0, 0) and not (c.minor_dirty or c.patch_dirty):
        return True  # ``~0.0.0`` and ``~*`` admit everything
    if v.major != con.major:
        return False
    return v.minor == con.minor or c.minor_dirty


def _tilde_or_equal(v: Version, c: Constraint) -> bool:
    # A bare ``1.2`` or ``1.2.x`` behaves like ``~``; a full version is ``=``.
    if c.dirty:
        return _tilde(v, c)
    return v.compare(c.version) == 0


def _caret(v: Version, c: Constraint) -> bool:
    con = c.version
    if v.compare(con) < 0:
        return False
    if con.major > 0 or c.minor_dirty:
        return v.major == con.major
    if v.major > 0:
        return False
    if con.minor > 0 or c.patch_dirty:
        return v.minor == con.minor
    if v.minor > 0:
        return False
    return v.patch == con.patch


_CHECKS: dict[str, Callable[[Version, Constraint], bool]] = {
    "=": _tilde_or_equal,
    "!=": _not_equal,
    ">": _greater_than,
    "<": _less_than,
    ">=": _greater_equal,
    "<=": _less_equal,
    "~": _tilde,
    "^": _caret,
}


def latest(range_: Range, tags: Sequence[str]) -> str | None:
    """Flux's selection: in list order, keep a matching tag only if strictly greater.

    Among equal versions (``1.0.0`` and ``v1.0.0``) the first in list order
    wins. Returns the original tag, or None when no tag matches.
    """
    best: Version | None = None
    for tag in tags:
        v = parse_tag(tag)
        if v is not None and range_.check(v) and (best is None or v.compare(best) > 0):
            best = v
    return None if best is None else best.original


def ranked(range_: Range, tags: Sequence[str]) -> list[str]:
    """Matching tags, best first; equal versions keep list order (so ``[0]`` == `latest`)."""
    matching = [v for v in map(parse_tag, tags) if v is not None and range_.check(v)]
    # sorted() is stable, also with reverse=True: equal versions keep list order.
    matching.sort(key=lambda v: v._precedence, reverse=True)
    return [v.original for v in matching]
