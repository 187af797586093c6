"""Markers that would change nothing, or the wrong thing: warnings, never errors.

Flux skips a marker whose setter it doesn't know, without a word, and writes a
``:tag`` setter's tag over whatever the value was. Three mistakes then look like
"nothing to change" (or break an image) with no sign of why:

* the marker names a policy the config does not define, or a namespace other
  than the config's (``flux-system:app`` against ``namespace: apps``);
* the marker's suffix is not one of Flux's (``:tag``, ``:name``, ``:digest``);
* the value cannot be what the setter writes: a ``:tag`` marker on a whole
  image reference, a ``:digest`` marker on a tag, a full marker on a bare tag
  (an empty value is fine: it waits to be filled in).

Each gets a warning at the marker's value (file, line, column) that says what
to change. Pure: the markers come from `bot.update.setters`, the policy names
from the config.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bot.imageref import DIGEST_RE, TAG_RE, ImageRefError, parse_reference, parse_repository
from bot.problems import Problem, warning

#: Flux's setter suffixes (flux-behaviour §4.3); "" is the whole image reference.
SUFFIXES = ("", "tag", "name", "digest")


@dataclass(frozen=True)
class Marked:
    """A scalar carrying a marker where Flux honours it: its setter and current value."""

    path: str
    line: int  # 1-based
    column: int  # 1-based
    setter: str
    value: str


def check_markers(
    marked: Iterable[Marked], *, namespace: str, policies: Collection[str]
) -> list[Problem]:
    """A warning for each marker that names no policy of the config, or whose value its
    setter cannot have written."""
    problems = []
    for marker in marked:
        message = _unknown_setter(marker.setter, namespace, policies) or _value_mismatch(marker)
        if message is not None:
            problems.append(warning(marker.path, marker.line, marker.column, message))
    return problems


def _unknown_setter(setter: str, namespace: str, policies: Collection[str]) -> str | None:
    parts = setter.split(":")
    if len(parts) < 2 or len(parts) > 3:
        return (
            f"marker {setter!r} is not of the form NAMESPACE:POLICY[:tag|:name|:digest]; "
            "nothing here will be updated"
        )
    marker_namespace, policy = parts[0], parts[1]
    suffix = parts[2] if len(parts) == 3 else ""
    if suffix not in SUFFIXES:
        return (
            f"marker {setter!r} ends in ':{suffix}', which is not a setter; "
            "use ':tag', ':name', ':digest' or nothing (the whole image)"
        )
    if marker_namespace != namespace:
        if policy in policies:
            return (
                f"marker {setter!r} is in namespace {marker_namespace!r}, but the config's "
                f"namespace is {namespace!r}, so nothing here will be updated; "
                f"did you mean `namespace: {marker_namespace}` in the config?"
            )
        return (
            f"marker {setter!r} names namespace {marker_namespace!r} and policy {policy!r}, "
            f"neither of which the config has (its namespace is {namespace!r}); "
            "nothing here will be updated"
        )
    if policy not in policies:
        close = difflib.get_close_matches(policy, list(policies), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (
            f"marker {setter!r} names policy {policy!r}, which the config does not define, "
            f"so nothing here will be updated{hint}"
        )
    return None


def _value_mismatch(marker: Marked) -> str | None:
    value = marker.value
    if not value:
        return None  # an empty value waits to be filled in: overwriting it loses nothing
    suffix = marker.setter.split(":")[2] if marker.setter.count(":") == 2 else ""
    if suffix == "tag" and not TAG_RE.fullmatch(value):
        return (
            f"a ':tag' marker on {value!r}, which is not a bare tag: the setter would write "
            "only a tag over it; drop ':tag' from the marker to set the whole image"
        )
    if suffix == "digest" and not DIGEST_RE.fullmatch(value):
        return (
            f"a ':digest' marker on {value!r}, which is not a digest (like 'sha256:…'): "
            "the setter would write a digest over it"
        )
    if suffix == "name" and not _is_name(value):
        return (
            f"a ':name' marker on {value!r}, which is not an image name without tag: the "
            "setter would write only the name over it; drop ':name' to set the whole image"
        )
    if suffix == "" and not _is_reference(value):
        return (
            f"a marker on {value!r}, which is not an image reference with a tag: the setter "
            "would write a whole image (name:tag) over it; add ':tag' to the marker to set "
            "only the tag"
        )
    return None


def _is_name(value: str) -> bool:
    try:
        parse_repository(value)
    except ImageRefError:
        return False
    return True


def _is_reference(value: str) -> bool:
    """What the whole-image setter writes always has a tag or a digest ('name:tag')."""
    try:
        ref = parse_reference(value)
    except ImageRefError:
        return False
    return ref.tag is not None or ref.digest is not None
