"""Tag rankings shared by every repository `serve` reconciles.

Ranking a tag list (filter, sort: `bot.policy.evaluate.rank_tags`) is the CPU
part of a policy. Many repositories follow the same image with the same
policy, and the scanner shares one tag list between them, so the ranking for a
(policy spec, tag list) pair is computed once and reused until the list
changes. The key holds a digest of the tags, not the tags: the cache costs a
few dozen bytes per entry whatever the list's length.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from bot.policy.evaluate import Ranking
from bot.policy.model import PolicySpec

#: Rankings kept: far more than the distinct (image, policy) pairs of a busy server.
DEFAULT_SIZE = 4096

Key = tuple[PolicySpec, bytes]


def tags_digest(tags: Sequence[str]) -> bytes:
    """A digest of the tag list, order included (ranking ties depend on it)."""
    return hashlib.blake2b("\0".join(tags).encode(), digest_size=16).digest()


class RankingCache:
    """Rankings by (spec, tag list); concurrent asks for one key share one computation."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._done: OrderedDict[Key, Ranking] = OrderedDict()
        self._running: dict[Key, asyncio.Future[Ranking]] = {}
        self.computed = 0  # how many rankings were computed rather than reused

    async def rank(
        self,
        spec: PolicySpec,
        tags: Sequence[str],
        compute: Callable[[PolicySpec, Sequence[str]], Awaitable[Ranking]],
    ) -> Ranking:
        """The ranking of `tags` under `spec`: reused, awaited, or computed with `compute`.

        A failed computation (a policy error, a budget) is not kept: the next ask tries again.
        """
        key = (spec, tags_digest(tags))
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        if key in self._running:
            return await asyncio.shield(self._running[key])
        future: asyncio.Future[Ranking] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            ranking = await compute(spec, tags)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(ranking)
            self.computed += 1
            self._done[key] = ranking
            if len(self._done) > self._size:
                self._done.popitem(last=False)
            return ranking
        finally:
            del self._running[key]
