"""Request budgets of one reconcile, counted by the simulator (not by the client).

A 2,000-file repository; 100 YAML files under the automation's path, one with
a marker. Counted per route, so a regression names the request it added.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.manifests import IMAGE, podinfo_files
from tests.test_automation_lifecycle import REPO, World

CHECK_RUN = "POST /repos/{owner}/{repo}/check-runs"


def big_repository() -> dict[str, bytes]:
    files = podinfo_files("5.0.0")
    for i in range(99):
        files[f"clusters/svc-{i:03}.yaml"] = f"kind: ConfigMap\ndata: {{n: '{i}'}}\n".encode()
    for i in range(2000 - len(files)):
        files[f"src/pkg{i // 100}/mod_{i}.py"] = f"VALUE = {i}\n".encode()
    assert len(files) == 2000
    return files


@pytest.fixture
async def big(github_sim, app_key):
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        world.add_repository(REPO, big_repository())
        yield world, session
        world.store.close()


def counted(world: World) -> dict[str, int]:
    """Requests per route; 304 answers listed under their own key."""
    return {key: n for key, n in sorted(world.sim.counters.items())}


def total(counts: dict[str, int]) -> int:
    """Requests that count against the rate limit: the simulator counts a 304 under
    its route and again under ``route + " 304"``; 304s are free on GitHub."""
    return sum(n if not key.endswith(" 304") else -n for key, n in counts.items())


async def test_nothing_changed_is_one_request_answered_304(big):
    world, _ = big
    await world.reconcile()
    world.sim.reset_counters()
    outcome = await world.reconcile()
    assert outcome.short_circuited
    counts = counted(world)
    print(counts)
    assert counts == {
        "GET /repos/{owner}/{repo}/commits/{ref}": 1,
        "GET /repos/{owner}/{repo}/commits/{ref} 304": 1,
    }
    assert total(counts) == 0  # and that one is free


async def test_one_file_changes_with_a_warm_blob_cache(big):
    world, _ = big
    await world.reconcile()
    world.sim.push(REPO, "main", {"clusters/svc-007.yaml": b"kind: ConfigMap\ndata: {n: x}\n"})
    world.registry.push(IMAGE, "5.0.4")  # so the PR's text changes too
    world.sim.reset_counters()
    await world.reconcile()
    counts = counted(world)
    print(counts)
    # Every request counts here, conditional ones too: the seven of issue 4, plus reading
    # the PR before its text is rewritten (a closed PR is never edited; issue 7).
    assert counts == {
        "GET /repos/{owner}/{repo}/commits/{ref}": 1,  # head check
        "GET /repos/{owner}/{repo}/git/trees/{tree_sha}": 1,  # tree
        "GET /repos/{owner}/{repo}/git/blobs/{file_sha}": 1,  # the one changed blob
        "POST /repos/{owner}/{repo}/git/trees": 1,  # tree create
        "POST /repos/{owner}/{repo}/git/commits": 1,  # commit
        "GET /repos/{owner}/{repo}/pulls/{pull_number}": 1,  # PR state and head.sha (the CAS)
        "PATCH /repos/{owner}/{repo}/pulls/{pull_number}": 1,  # PR update
        "PATCH /repos/{owner}/{repo}/git/refs/{ref}": 1,  # ref update
    }
    assert CHECK_RUN not in counts  # a routine PR update adds no check run
    (pr,) = world.open_pulls()
    assert f"{IMAGE}:5.0.0 -> {IMAGE}:5.0.4" in pr["body"]


async def test_one_file_changes_with_a_cold_blob_cache(big):
    world, session = big
    await world.reconcile()
    world.sim.push(REPO, "main", {"clusters/svc-007.yaml": b"kind: ConfigMap\ndata: {n: x}\n"})
    world.registry.push(IMAGE, "5.0.4")
    # A restarted process: same database, empty blob cache, new clients.
    from bot.server import InstallationClients

    world.deps.github = InstallationClients(
        session, world.clients._creds, world.tokens, write_interval=0.0
    )
    world.sim.reset_counters()
    await world.reconcile()
    counts = counted(world)
    print(counts)
    requests = sum(n for k, n in counts.items() if not k.endswith(" 304"))
    assert requests <= 10, counts
    blob_reads = sum(n for k, n in counts.items() if "/git/blobs/" in k or "tarball" in k)
    assert blob_reads <= 2, counts  # the config, then one tarball for the many unknown files
    (pr,) = world.open_pulls()
    assert f"{IMAGE}:5.0.0 -> {IMAGE}:5.0.4" in pr["body"]
