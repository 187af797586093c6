"""In-memory tag and digest caches, keyed by (canonical image, credential identity).

The identity is part of every key, so tags or digests fetched with some
credentials are never served to a caller that does not hold the same ones;
callers with the same credentials (or anonymous callers of a public image)
share one entry however many GitHub repositories ask.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

#: (canonical image name, credential identity; "" = anonymous)
ImageKey = tuple[str, str]

_generations = itertools.count(1)


@dataclass
class TagEntry:
    """The last good tag list of an image (valid tag names, registry order)."""

    tags: list[str]
    scanned_at: float
    #: Wall-clock time of the scan's start, to compare with registry push events.
    started_wall: float = 0.0
    #: Increases with every successful scan; digests remember the one they were fetched in.
    generation: int = field(default_factory=lambda: next(_generations))
    #: Exclusion results by pattern tuple, so image repositories with one list share one filtering.
    filtered: dict[tuple[str, ...], list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    message: str
    at: float
    at_wall: float = 0.0  # wall clock, to compare with registry push events


class TagCache:
    """Last good tag list and last failure per image key."""

    def __init__(self) -> None:
        self._entries: dict[ImageKey, TagEntry] = {}
        self._failures: dict[ImageKey, Failure] = {}

    def get(self, key: ImageKey) -> TagEntry | None:
        return self._entries.get(key)

    def failure(self, key: ImageKey) -> Failure | None:
        return self._failures.get(key)

    def store(self, key: ImageKey, tags: list[str], now: float, wall: float = 0.0) -> TagEntry:
        entry = TagEntry(tags, now, started_wall=wall)
        self._entries[key] = entry
        self._failures.pop(key, None)
        return entry

    def fail(self, key: ImageKey, message: str, now: float, wall: float = 0.0) -> None:
        self._failures[key] = Failure(message, now, wall)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class DigestEntry:
    digest: str
    generation: int  # of the image's scan current when it was fetched (0: none yet)


class DigestCache:
    """Digest per (image key, tag)."""

    def __init__(self) -> None:
        self._entries: dict[ImageKey, dict[str, DigestEntry]] = {}

    def get(self, key: ImageKey, tag: str) -> DigestEntry | None:
        return self._entries.get(key, {}).get(tag)

    def put(self, key: ImageKey, tag: str, entry: DigestEntry) -> None:
        self._entries.setdefault(key, {})[tag] = entry

    def keep_only(self, key: ImageKey, tags: set[str]) -> None:
        """Forget digests of tags the registry no longer lists (bounds memory)."""
        entries = self._entries.get(key)
        if entries:
            for tag in [t for t in entries if t not in tags]:
                del entries[tag]

    def __len__(self) -> int:
        return sum(len(e) for e in self._entries.values())
