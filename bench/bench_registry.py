"""Registry scanning benchmark against a real local docker-registry.

Run: ``python bench/bench_registry.py`` (needs /usr/bin/docker-registry).
Prints requests, time and memory for a 10,000-tag repository, the digest cost of
rolling/aliasOf policies after warm-up, and the requests 200 repositories sharing
one image make per interval. docs/bench-registry.md records the figures.
"""

from __future__ import annotations

import asyncio
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from bot.config import DEFAULT_REPOSITORY_INTERVAL  # noqa: E402
from bot.policy import PolicySpec, evaluate  # noqa: E402
from bot.policy.evaluate import rank_inline  # noqa: E402
from bot.rankings import RankingCache  # noqa: E402
from bot.registry.credentials import CredentialStore  # noqa: E402
from bot.registry.scanner import RegistryScanner  # noqa: E402
from bot.registry.source import RegistryTagSource  # noqa: E402
from tests.registryharness.push import Pusher, write_tags  # noqa: E402
from tests.registryharness.registry_proc import start_registry  # noqa: E402
from tests.registryharness.scanning import image_repository_config  # noqa: E402
from tests.registryharness.shim import Shim  # noqa: E402

TAGS = [f"1.{i // 100}.{i % 100}" for i in range(10_000)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def scan_and_evaluate(host: str, label: str) -> dict[str, Any]:
    clock = Clock()
    async with aiohttp.ClientSession() as session:
        scanner = RegistryScanner(session, CredentialStore(), clock=clock)
        config = image_repository_config(f"{host}/bench/tenk", name="bench")
        policy = PolicySpec(kind="semver", semver_range=">=1.0.0")
        tracemalloc.start()
        started = time.perf_counter()
        result = await scanner.scan(config)
        scanned = time.perf_counter()
        latest = await evaluate(policy, config.image, result.tags)
        done = time.perf_counter()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # Within the interval: served from the cache.
        cached_started = time.perf_counter()
        await scanner.scan(config)
        cached = time.perf_counter() - cached_started
    return {
        "label": label,
        "tags": len(result.tags),
        "latest": latest.tag,
        "requests": dict(scanner.request_counts),
        "scan_s": scanned - started,
        "evaluate_s": done - scanned,
        "cached_scan_s": cached,
        "peak_mib": peak / 2**20,
    }


async def digest_cost(pusher: Pusher, host: str) -> dict[str, Any]:
    for i in range(50):
        pusher.image("bench/alias", [f"sha-{i:03d}"], salt=f"alias-{i}")
    pusher.image("bench/alias", ["latest", "sha-050"], salt="alias-50")
    clock = Clock()
    costs = []
    async with aiohttp.ClientSession() as session:
        scanner = RegistryScanner(session, CredentialStore(), clock=clock)
        source = RegistryTagSource(scanner, github_repository=None)
        config = image_repository_config(f"{host}/bench/alias", name="bench")
        alias = PolicySpec(kind="alphabetical", alias_of="latest", digest_reflection="Always")
        rolling = PolicySpec(kind="rolling", rolling_tag="latest")

        async def one_round() -> int:
            before = (
                scanner.request_counts["manifest_head"] + scanner.request_counts["manifest_get"]
            )
            tags = await source.tags(config)
            for policy in (alias, rolling):
                lookup = source.digest_lookup(config, refresh=["latest"])
                await evaluate(policy, config.image, tags, digest_of=lookup)
            after = scanner.request_counts["manifest_head"] + scanner.request_counts["manifest_get"]
            return after - before

        warm_up = await one_round()
        for new in range(3):  # rounds with 0, 1, 2 new tags
            # `latest` moves to the first new tag; the others rank above it, so the
            # aliasOf walk must look at every new tag (the worst case).
            for k in range(new):
                tags = [f"sha-{100 + 10 * new + k}"] + (["latest"] if k == 0 else [])
                pusher.image("bench/alias", tags, salt=f"n{new}-{k}")
            clock.now += DEFAULT_REPOSITORY_INTERVAL + 1
            costs.append((new, await one_round()))
    return {"warm_up": warm_up, "rounds": costs}


async def shared_image(host: str, repositories: int = 200) -> dict[str, Any]:
    clock = Clock()
    async with aiohttp.ClientSession() as session:
        scanner = RegistryScanner(session, CredentialStore(), clock=clock)
        configs = [
            image_repository_config(f"{host}/bench/tenk", name=f"r{i}") for i in range(repositories)
        ]
        per_interval = []
        for _ in range(3):
            before = sum(scanner.request_counts.values())
            started = time.perf_counter()
            results = await asyncio.gather(
                *(scanner.scan(c, github_repository=f"org/r{i}") for i, c in enumerate(configs))
            )
            elapsed = time.perf_counter() - started
            per_interval.append((sum(scanner.request_counts.values()) - before, elapsed))
            clock.now += DEFAULT_REPOSITORY_INTERVAL + 1
    # The policy CPU each repository spends on the shared tag list: alone, and as `serve`
    # does it, through one RankingCache (bot/rankings.py).
    policy = PolicySpec(kind="semver", semver_range=">=1.0.0")
    cpu = {}
    for label, cache in (("each its own", None), ("shared rankings", RankingCache())):
        started = time.process_time()
        for result in results:
            if cache is None:
                await evaluate(policy, "bench/tenk", result.tags)
            else:
                await evaluate(policy, "bench/tenk", result.tags, rank=_sharing(cache))
        cpu[label] = (time.process_time() - started) / repositories
    return {"repositories": repositories, "per_interval": per_interval, "policy_cpu": cpu}


def _sharing(cache: RankingCache):
    async def rank(spec, tags):
        return await cache.rank(spec, tags, rank_inline)

    return rank


async def main() -> SimpleNamespace:
    registry = start_registry()
    shim = Shim(registry.port).start()
    try:
        pusher = Pusher(registry.host)
        started = time.perf_counter()
        digest = pusher.image("bench/tenk", "latest", salt="tenk")
        write_tags(registry.storage, "bench/tenk", digest, TAGS)
        fixture_s = time.perf_counter() - started
        direct = await scan_and_evaluate(registry.host, "direct (2.8: one page)")
        shim.page_limit = 1000
        paged = await scan_and_evaluate(shim.host, "via shim, pages of 1000")
        digests = await digest_cost(pusher, registry.host)
        shared = await shared_image(registry.host)
    finally:
        shim.stop()
        registry.stop()
    return SimpleNamespace(
        fixture_s=fixture_s, scans=[direct, paged], digests=digests, shared=shared
    )


def report(results: SimpleNamespace) -> str:
    lines = [f"fixture: 10,001 tags written in {results.fixture_s:.2f} s", ""]
    lines.append(
        "| scan | tags | requests | scan | evaluate (semver) | cached scan | peak memory |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for s in results.scans:
        requests = ", ".join(f"{k} {v}" for k, v in sorted(s["requests"].items()))
        lines.append(
            f"| {s['label']} | {s['tags']} | {requests} | {s['scan_s'] * 1000:.0f} ms | "
            f"{s['evaluate_s'] * 1000:.0f} ms (→ {s['latest']}) | "
            f"{s['cached_scan_s'] * 1000:.2f} ms | {s['peak_mib']:.1f} MiB |"
        )
    lines += [
        "",
        f"digest requests, rolling + aliasOf on one image: warm-up {results.digests['warm_up']}",
    ]
    for new, cost in results.digests["rounds"]:
        lines.append(f"- after a scan with {new} new tag(s): {cost} (expected {1 + new})")
    lines += ["", f"{results.shared['repositories']} repositories, one image:"]
    for i, (count, elapsed) in enumerate(results.shared["per_interval"], 1):
        lines.append(f"- interval {i}: {count} registry request(s), {elapsed * 1000:.0f} ms")
    for label, seconds in results.shared["policy_cpu"].items():
        lines.append(f"- policy CPU per repository, {label}: {seconds * 1000:.2f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = asyncio.run(main())
    print(report(outcome))
    ok = all(cost == 1 + new for new, cost in outcome.digests["rounds"]) and all(
        count == 1 for count, _ in outcome.shared["per_interval"]
    )
    sys.exit(0 if ok else 1)
