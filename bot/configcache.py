"""Parsed configs shared by every run: a repository's config is read again only when it changes.

Re-reading the same few hundred bytes was most of the CPU of a run that
changes nothing (issue 10). The key is the config's bytes (through a digest)
and the default branch it was read against, so the same file in two
repositories is parsed once; a parsed `Config` is never changed after it is made.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from bot.config import Config
from bot.config.sources import ConfigSources, load_sources
from bot.problems import Problem

#: Configs kept: a few KiB each, one per distinct config file in use.
DEFAULT_SIZE = 10_000

Parsed = tuple[Config, list[Problem]]


class ConfigCache:
    """Loaded configs by (digest of their encoded `ConfigSources`, default branch), least
    recently used out. A config file alone encodes as its own bytes."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._parsed: OrderedDict[tuple[bytes, str | None], Parsed] = OrderedDict()
        self.parses = 0  # how many configs were parsed rather than reused

    def load(self, text: bytes | str, *, default_branch: str | None) -> Parsed:
        """The config of encoded sources `text`, parsed once per distinct text and default
        branch."""
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        key, found = self._get(raw, default_branch)
        if found is not None:
            return found
        return self._put(key, load_sources(raw, default_branch))

    async def load_with(
        self,
        text: bytes,
        *,
        default_branch: str | None,
        parse: Callable[[Callable[..., Parsed], bytes, str | None], Awaitable[Parsed]],
    ) -> Parsed:
        """As `load`, but sources with Flux manifests (up to megabytes of YAML) are parsed
        by ``parse`` (the server: in a worker, off the event loop). A config file alone is
        at most `MAX_CONFIG_BYTES` and is parsed here."""
        if not ConfigSources.is_bundle(text):
            return self.load(text, default_branch=default_branch)
        key, found = self._get(text, default_branch)
        if found is not None:
            return found
        return self._put(key, await parse(load_sources, text, default_branch))

    def put(self, text: bytes, default_branch: str | None, parsed: Parsed) -> Parsed:
        """Remember ``parsed`` (e.g. a parse that failed) as the result for ``text``."""
        key, _ = self._get(text, default_branch)
        return self._put(key, parsed)

    def _get(
        self, raw: bytes, default_branch: str | None
    ) -> tuple[tuple[bytes, str | None], Parsed | None]:
        key = (hashlib.blake2b(raw, digest_size=16).digest(), default_branch)
        found = self._parsed.get(key)
        if found is None:
            return key, None
        self._parsed.move_to_end(key)
        return key, (found[0], list(found[1]))

    def _put(self, key: tuple[bytes, str | None], parsed: Parsed) -> Parsed:
        config, problems = parsed
        self.parses += 1
        self._parsed[key] = (config, list(problems))
        if len(self._parsed) > self._size:
            self._parsed.popitem(last=False)
        return config, problems
