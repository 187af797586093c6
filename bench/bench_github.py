"""Benchmark: GitHub requests, time and memory of one reconcile as the repository grows.

    python bench/bench_github.py [--sizes 200,2000,10000] [--out docs/bench-github.md]

Runs the real reconcile (`bot.reconcile`) against the GitHub simulator of
`tests/githubsim` (real git repositories, requests counted by the simulator,
not by the client) for four situations: the first run (opens the PR), nothing
changed, one file changed with a warm blob cache, and the same after a
restart (cold cache). Tags come from `tests.fakes.FakeRegistry`: registry cost
is measured by `bench_registry.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402

from bot.server import InstallationClients  # noqa: E402
from tests.conftest import RunningSim, generate_app_key  # noqa: E402
from tests.githubsim import GitHubSim  # noqa: E402
from tests.manifests import IMAGE, podinfo_files  # noqa: E402
from tests.test_automation_lifecycle import REPO, World  # noqa: E402


def repository(size: int) -> dict[str, bytes]:
    files = podinfo_files("5.0.0")
    for i in range(min(size // 20, 500)):  # some YAML under the automation's path
        files[f"clusters/svc-{i:04}.yaml"] = f"kind: ConfigMap\ndata: {{n: '{i}'}}\n".encode()
    i = 0
    while len(files) < size:
        files[f"src/pkg{i // 100}/mod_{i}.py"] = f"VALUE = {i}\n".encode()
        i += 1
    return files


def requests(world: World) -> tuple[int, int]:
    """(requests counted against the rate limit, conditional requests answered 304)."""
    free = sum(n for k, n in world.sim.counters.items() if k.endswith(" 304"))
    return sum(n for k, n in world.sim.counters.items() if not k.endswith(" 304")) - free, free


async def measure(world: World, label: str, rows: list[tuple], size: int) -> None:
    world.sim.reset_counters()
    tracemalloc.start()
    start = time.perf_counter()
    await world.reconcile()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    counted, free = requests(world)
    rows.append((size, label, counted, free, seconds * 1000, peak / 2**20))


async def bench_size(size: int, key: tuple[int, str, str], rows: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sim = GitHubSim(Path(tmp))
        server = TestServer(sim.make_app(), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                world = World(RunningSim(sim, str(server.make_url("")).rstrip("/")), key, session)
                world.add_repository(REPO, repository(size))
                await measure(world, "first run (opens the PR)", rows, size)
                await measure(world, "nothing changed", rows, size)
                sim.push(REPO, "main", {"clusters/svc-0007.yaml": b"kind: ConfigMap\n"})
                world.registry.push(IMAGE, "5.0.4")
                await measure(world, "one file changed, warm cache", rows, size)
                sim.push(REPO, "main", {"clusters/svc-0008.yaml": b"kind: ConfigMap\n"})
                world.registry.push(IMAGE, "5.0.5")
                world.deps.github = InstallationClients(
                    session, world.clients._creds, world.tokens, write_interval=0.0
                )
                await measure(world, "one file changed, cold cache (restart)", rows, size)
                world.store.close()
        finally:
            await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200,2000,10000")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    key = (1, *generate_app_key())
    rows: list[tuple] = []
    for size in (int(s) for s in args.sizes.split(",")):
        asyncio.run(bench_size(size, key, rows))
    lines = [
        "| files | reconcile | requests (rate-limited) | free 304s | ms | peak MiB |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {size:,} | {label} | {counted} | {free} | {ms:.0f} | {mib:.1f} |"
            for size, label, counted, free, ms, mib in rows
        ),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
