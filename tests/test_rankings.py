"""Tag rankings are computed once per (policy spec, tag list), however many repositories ask."""

from __future__ import annotations

import asyncio

import pytest

from bot.policy.evaluate import Ranking, rank_tags
from bot.policy.model import PolicyError, PolicySpec
from bot.rankings import RankingCache

SEMVER = PolicySpec(kind="semver", semver_range=">=1.0.0")
TAGS = ["1.0.0", "1.2.0", "1.10.0", "0.9.0"]


class Counting:
    """`rank_tags`, counting its calls and able to hold them until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, spec, tags) -> Ranking:
        self.calls += 1
        await self.release.wait()
        return rank_tags(spec, tags)


async def test_the_same_list_and_spec_are_ranked_once():
    cache, compute = RankingCache(), Counting()
    first = await cache.rank(SEMVER, TAGS, compute)
    again = await cache.rank(SEMVER, list(TAGS), compute)
    assert first == again == Ranking("1.10.0")
    assert compute.calls == 1 == cache.computed


async def test_another_list_order_or_spec_is_ranked_again():
    cache, compute = RankingCache(), Counting()
    await cache.rank(SEMVER, TAGS, compute)
    await cache.rank(SEMVER, [*TAGS, "2.0.0"], compute)
    await cache.rank(SEMVER, list(reversed(TAGS)), compute)  # ties may depend on order
    await cache.rank(PolicySpec(kind="semver", semver_range="<1.5"), TAGS, compute)
    assert compute.calls == 4


async def test_concurrent_asks_share_one_computation():
    cache, compute = RankingCache(), Counting()
    compute.release.clear()
    asks = [asyncio.create_task(cache.rank(SEMVER, TAGS, compute)) for _ in range(5)]
    await asyncio.sleep(0)
    compute.release.set()
    assert {r.best for r in await asyncio.gather(*asks)} == {"1.10.0"}
    assert compute.calls == 1


async def test_a_failure_is_not_kept():
    cache, compute = RankingCache(), Counting()
    nothing = PolicySpec(kind="semver", semver_range=">=9")
    for _ in range(2):
        with pytest.raises(PolicyError):
            await cache.rank(nothing, TAGS, compute)
    assert compute.calls == 2 and cache.computed == 0


async def test_the_oldest_ranking_makes_room():
    cache, compute = RankingCache(size=2), Counting()
    for tags in (["1.0.0"], ["1.1.0"], ["1.2.0"], ["1.0.0"]):
        await cache.rank(SEMVER, tags, compute)
    assert compute.calls == 4  # ["1.0.0"] was dropped for ["1.2.0"]
