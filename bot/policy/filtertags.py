"""``filterTags``: an RE2 pattern (Go syntax) and Go ``Regexp.ExpandString`` extraction."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import re2

from bot.policy.model import InvalidPolicyError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are reported to the caller, not written to stderr

_LOOKAROUND_HINT = (
    " (RE2, the regex syntax Go and Flux use, has no lookahead or lookbehind;"
    " use anchors ^ and $ and capture groups instead)"
)
_GROUP_NAME_HINT = (
    " (RE2 as Go and Flux use it allows only ASCII letters, digits and _ in a group name)"
)
_BACKREFERENCE_HINT = (
    " (RE2, the regex syntax Go and Flux use, has no backreferences such as \\1;"
    " spell the repeated text out or capture it with a group instead)"
)

#: A compiled RE2 pattern.
Regex = Any


def compile_re2(pattern: str, *, error_prefix: str = "invalid regular expression pattern") -> Regex:
    """Compile a Go/RE2 pattern; raises `InvalidPolicyError` naming the pattern.

    RE2 rejects Perl-only features (backreferences, lookaround) that Python's
    ``re`` accepts; the message then says so and what to do instead. Group
    names follow Go's rule, which the RE2 library is laxer about.
    """
    try:
        regex = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise InvalidPolicyError(f"{error_prefix} '{pattern}': {_reason(exc)}") from None
    for name in regex.groupindex:
        if not is_go_capture_name(name):
            raise InvalidPolicyError(
                f"{error_prefix} '{pattern}': invalid named capture group: "
                f"{_capture_text(pattern, name)}{_GROUP_NAME_HINT}"
            )
    return regex


def is_go_capture_name(name: str) -> bool:
    """Go's ``regexp/syntax`` rule for a group name: ``[A-Za-z0-9_]+`` (a leading digit is fine).

    The RE2 library takes any Unicode word characters (``(?P<é>x)``); Go, and so
    Flux, rejects the whole pattern.
    """
    return bool(name) and name.isascii() and all(c == "_" or c.isalnum() for c in name)


def _capture_text(pattern: str, name: str) -> str:
    """The group's opening as written, ``(?P<name>`` or ``(?<name>``, for the message."""
    for opening in (f"(?P<{name}>", f"(?<{name}>"):
        if opening in pattern:
            return opening
    return f"(?P<{name}>"


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else "invalid pattern"
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    reason = str(reason)
    if any(op in reason for op in ("(?=", "(?!", "(?<=", "(?<!")):
        reason += _LOOKAROUND_HINT
    elif "invalid escape sequence: \\" in reason and reason[-1:].isdigit():
        reason += _BACKREFERENCE_HINT
    return reason


def expand(regex: Regex, template: str, text: str, match: Any) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``.

    A bare reference takes the longest run of letters, digits and ``_`` (so
    ``$1x`` names group "1x"); unknown and non-participating groups expand to
    nothing; a malformed reference leaves the ``$`` as text.
    """
    out: list[str] = []
    rest = template
    while True:
        before, dollar, after = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if after.startswith("$"):
            out.append("$")
            rest = after[1:]
            continue
        parsed = _reference(after)
        if parsed is None:
            out.append("$")
            rest = after
            continue
        name, rest = parsed
        index = _group_index(regex, name)
        if index is not None and index <= regex.groups:
            start, end = match.span(index)
            if start >= 0:
                out.append(text[start:end])


def _reference(after_dollar: str) -> tuple[str, str] | None:
    """Split ``name`` or ``{name}`` off the front; None when malformed."""
    braced = after_dollar.startswith("{")
    body = after_dollar[1:] if braced else after_dollar
    end = 0
    while end < len(body) and _is_name_char(body[end]):
        end += 1
    if end == 0:
        return None
    name = body[:end]
    if braced:
        if body[end : end + 1] != "}":
            return None
        end += 1
    return name, body[end:]


def _is_name_char(char: str) -> bool:
    # Go: unicode.IsLetter, unicode.IsDigit (category Nd) or '_'.
    return char == "_" or char.isalpha() or unicodedata.category(char) == "Nd"


def _group_index(regex: Regex, name: str) -> int | None:
    # A number (no leading zeros, at most 9 digits as Go reads it) is a group
    # index; anything else is a group name.
    if name.isascii() and name.isdigit() and (name == "0" or name[0] != "0") and len(name) <= 9:
        return int(name)
    return regex.groupindex.get(name)


@dataclass(frozen=True)
class TagFilter:
    """A compiled ``filterTags``: which tags take part, and the key each is ordered by."""

    pattern: str
    extract: str
    regex: Regex

    def apply(self, tags: Iterable[str]) -> dict[str, str]:
        """Map key -> original tag for the matching tags, in list order.

        As in Flux the keys live in a map: when two tags give the same key the
        later tag in list order wins (the key keeps its first position).
        """
        keyed: dict[str, str] = {}
        for tag in tags:
            match = self.regex.search(tag)
            if match is None:
                continue
            key = expand(self.regex, self.extract, tag, match) if self.extract else tag
            keyed[key] = tag
        return keyed


def compile_filter(pattern: str, extract: str = "") -> TagFilter:
    """Compile ``filterTags``; raises `InvalidPolicyError` for an invalid pattern."""
    return TagFilter(pattern=pattern, extract=extract, regex=compile_re2(pattern))
