"""Flux setter markers: which YAML comments name a setter, and which one.

A marker is a comment whose text, after removing every leading ``#``, is a
JSON object (flux-behaviour §4.1). Two spellings exist:

* short form ``{"$imagepolicy": "ns:policy[:tag|:name|:digest]"}``: the object
  must hold only string values (Flux decodes it into ``map[string]string``);
* kyaml's long form ``{"$ref": "#/definitions/io.k8s.cli.setters.ns:policy"}``.

Anything else (trailing words, single quotes, broken JSON, non-string values)
is simply not a marker: never an error.
"""

from __future__ import annotations

import json

MARKER_TOKEN = b'"$imagepolicy"'
SHORT_KEY = "$imagepolicy"
LONG_KEY = "$ref"
LONG_PREFIX = "#/definitions/io.k8s.cli.setters."


def parse_marker(comment: str) -> str | None:
    """The setter a comment names (e.g. ``"ns:app:tag"``), or None if it is no marker.

    ``comment`` is the comment text including its ``#``. Only leading ``#``
    are stripped (as Flux's ``strings.TrimLeft(c, "#")``); JSON itself ignores
    the whitespace around the object, so ``# # {...}`` is not a marker.
    """
    text = comment.lstrip("#")
    if "{" not in text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if all(isinstance(value, str) for value in data.values()) and SHORT_KEY in data:
        return data[SHORT_KEY]
    ref = data.get(LONG_KEY)
    if isinstance(ref, str) and ref.startswith(LONG_PREFIX) and len(ref) > len(LONG_PREFIX):
        return ref[len(LONG_PREFIX) :]
    return None


def has_marker(content: bytes) -> bool:
    """Flux's screening: only files containing the exact bytes ``"$imagepolicy"`` are parsed."""
    return MARKER_TOKEN in content
