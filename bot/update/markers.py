"""Flux setter markers: which YAML comments name a setter, and which one.

A marker is a comment whose text, after removing every leading ``#``, is a
JSON object (flux-behaviour §4.1). Two spellings exist:

* short form ``{"$imagepolicy": "ns:policy[:tag|:name|:digest]"}``: the whole
  text must be that object, holding only string values (Flux decodes it into
  ``map[string]string``), so trailing words make it no marker;
* kyaml's long form ``{"$ref": "#/definitions/io.k8s.cli.setters.ns:policy"}``:
  kyaml decodes the first JSON value and keeps it even though the decoder then
  fails on what follows, so only a complete first object counts and anything
  after it (words, another object, further lines of a head comment) is ignored.

Anything else (single quotes, broken JSON, non-string values) is simply not a
marker: never an error.
"""

from __future__ import annotations

import json
from functools import lru_cache

MARKER_TOKEN = b'"$imagepolicy"'
SHORT_KEY = "$imagepolicy"
LONG_KEY = "$ref"
LONG_PREFIX = "#/definitions/io.k8s.cli.setters."
_JSON_SPACE = " \t\n\r"


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # Go's decoder rejects NaN and Infinity


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def parse_marker(comment: str) -> str | None:
    """The setter a comment names (e.g. ``"ns:app:tag"``), or None if it is no marker.

    ``comment`` is the comment text including its ``#`` (the lines of a head
    comment joined by newlines). Only leading ``#`` are stripped (as Flux's
    ``strings.TrimLeft(c, "#")``); JSON itself ignores the whitespace around
    the object, so ``# # {...}`` is not a marker.
    """
    # The same few markers recur in every file of a tree; a long comment is not kept.
    return _parse_short(comment) if len(comment) <= 512 else _parse(comment)


@lru_cache(maxsize=4096)
def _parse_short(comment: str) -> str | None:
    return _parse(comment)


def _parse(comment: str) -> str | None:
    text = comment.lstrip("#")
    if "{" not in text:
        return None
    try:
        data = _DECODER.decode(text)
    except (ValueError, RecursionError):  # Go's decoder has a depth limit too
        data = None
    if (
        isinstance(data, dict)
        and SHORT_KEY in data
        and all(isinstance(value, str) for value in data.values())
    ):
        return data[SHORT_KEY]
    try:  # the long form: the first complete JSON value, whatever follows it
        data, _end = _DECODER.raw_decode(text, len(text) - len(text.lstrip(_JSON_SPACE)))
    except (ValueError, RecursionError):
        return None
    ref = data.get(LONG_KEY) if isinstance(data, dict) else None
    if isinstance(ref, str) and ref.startswith(LONG_PREFIX) and len(ref) > len(LONG_PREFIX):
        return ref[len(LONG_PREFIX) :]
    return None


def has_marker(content: bytes) -> bool:
    """Flux's screening: only files containing the exact bytes ``"$imagepolicy"`` are parsed."""
    return MARKER_TOKEN in content
