"""The small grammars config values must follow: Kubernetes names and labels, git
branch names, Go durations, email addresses, RE2 patterns, image tags.

Each rule is a predicate (or a parser returning None); the messages that explain
a failure live with the checks that report them. Pure: no I/O.
"""

from __future__ import annotations

import re

from bot.imageref import TAG_RE  # the one image tag grammar (distribution/reference)
from bot.policy import compile_re2

_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+")
_DURATION_NO_HOURS_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?(?:ms|s|m))+")
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_EMAIL_RE = re.compile(r"[^@\s<>]+@[^@\s<>]+")
_BAD_REF_CHARS = frozenset(" ~^:?*[\\\x7f")


def parse_duration(text: str, *, hours: bool = True) -> float | None:
    """Seconds in a Flux duration (``1h30m``, ``500ms``), or None if it is not one."""
    pattern = _DURATION_RE if hours else _DURATION_NO_HOURS_RE
    if not pattern.fullmatch(text):
        return None
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART_RE.findall(text))


_AGE_RE = re.compile(r"^(\d+(\.\d+)?(w|d|h|m|s))+$")
_AGE_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_age(text: str) -> float | None:
    """Seconds in an age like ``3d``, ``1w``, ``36h`` or ``1d12h``, or None."""
    if not _AGE_RE.fullmatch(text):
        return None
    return sum(
        float(n) * _AGE_UNITS[u] for n, _f, u in re.findall(r"(\d+(\.\d+)?)(w|d|h|m|s)", text)
    )


def is_valid_branch_name(name: str) -> bool:
    """``git check-ref-format --branch`` rules."""
    if not name or name in ("@", "HEAD") or name.startswith("-"):
        return False
    if ".." in name or "@{" in name or name.endswith(".") or name.endswith("/"):
        return False
    if any(ord(c) < 0x20 or c in _BAD_REF_CHARS for c in name):
        return False
    return all(
        part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/")
    )


def is_dns_subdomain(name: str) -> bool:
    """A Kubernetes object name (RFC 1123 subdomain): what every entry's ``name`` must be."""
    return bool(_DNS_SUBDOMAIN_RE.fullmatch(name)) and len(name) <= 253


def is_dns_label(name: str) -> bool:
    """An RFC 1123 label, as a Kubernetes namespace name is."""
    return bool(_DNS_LABEL_RE.fullmatch(name)) and len(name) <= 63


def is_label_key(key: str) -> bool:
    """A Kubernetes label key: ``[dns-subdomain/]name``."""
    prefix, slash, name = key.rpartition("/")
    if not (_LABEL_NAME_RE.fullmatch(name) and len(name) <= 63):
        return False
    return not slash or is_dns_subdomain(prefix)


def is_label_value(value: str) -> bool:
    """A Kubernetes label value; empty is allowed."""
    return value == "" or (bool(_LABEL_NAME_RE.fullmatch(value)) and len(value) <= 63)


def is_tag_name(tag: str) -> bool:
    """An image tag (1-128 characters), by the grammar `bot.imageref` parses references with."""
    return bool(TAG_RE.fullmatch(tag))


def is_email(text: str) -> bool:
    return bool(_EMAIL_RE.fullmatch(text))


def re2_error(pattern: str) -> str | None:
    """Why ``pattern`` is not an RE2 pattern (the policy layer's words), or None if it is."""
    try:
        compile_re2(pattern)
    except Exception as err:  # whatever the RE2 layer raises, it is about the pattern
        return str(err)
    return None


# GitHub's own rules: a login is 1-39 letters, digits and single hyphens, not at either
# end; a team slug is what GitHub makes of a team's name (letters, digits, '-', '_', '.').
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_TEAM_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def is_github_login(text: str) -> bool:
    return _GITHUB_LOGIN.fullmatch(text) is not None


def is_team_slug(text: str) -> bool:
    return _TEAM_SLUG.fullmatch(text) is not None
