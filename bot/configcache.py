"""Parsed configs shared by every run: a repository's config is read again only when it changes.

Re-reading the same few hundred bytes was most of the CPU of a run that
changes nothing (issue 10). The key is the config's bytes (through a digest)
and the default branch it was read against, so the same file in two
repositories is parsed once; a parsed `Config` is never changed after it is made.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from bot.config import CONFIG_PATH, Config, load_config
from bot.problems import Problem

#: Configs kept: a few KiB each, one per distinct config file in use.
DEFAULT_SIZE = 10_000

Parsed = tuple[Config, list[Problem]]


class ConfigCache:
    """`load_config` results by (content digest, default branch), least recently used out."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._parsed: OrderedDict[tuple[bytes, str | None], Parsed] = OrderedDict()
        self.parses = 0  # how many configs were parsed rather than reused

    def load(self, text: bytes | str, *, default_branch: str | None) -> Parsed:
        """`load_config` of `text`, parsed once per distinct text and default branch."""
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        key = (hashlib.blake2b(raw, digest_size=16).digest(), default_branch)
        found = self._parsed.get(key)
        if found is not None:
            self._parsed.move_to_end(key)
            return found[0], list(found[1])
        config, problems = load_config(text, path=CONFIG_PATH, default_branch=default_branch)
        self.parses += 1
        self._parsed[key] = (config, list(problems))
        if len(self._parsed) > self._size:
            self._parsed.popitem(last=False)
        return config, problems
