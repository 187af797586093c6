"""The schedule in the database: due times, leases, takeovers; on SQLite and PostgreSQL.

Replicas are separate `Store`s (separate connection pools) on one database, as
separate processes would be.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.policy.model import LatestRef
from bot.scheduler import Scheduler
from bot.store import AutomationState, Claim, Store

NAMES = [f"o/r{i:03}" for i in range(60)]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def replicas(url: str, count: int, clock: Clock | None = None) -> list[Store]:
    return [Store.open(url, **({"clock": clock} if clock else {})) for _ in range(count)]


def test_a_new_repository_waits_for_a_request_or_its_first_run_time(database_url):
    clock = Clock()
    store = Store.open(database_url, clock=clock)
    store.add_repository("o/quiet", 1)
    store.add_repository("o/later", 1, due_in=30)
    assert store.schedule.due_in("o/quiet") is None
    assert store.schedule.due_in("o/later") == pytest.approx(30)
    assert store.schedule.claim("a", limit=10, lease=60) == []
    assert store.schedule.request_run("o/quiet") and not store.schedule.request_run("o/unknown")
    assert [c.repository for c in store.schedule.claim("a", limit=10, lease=60)] == ["o/quiet"]
    clock.now += 31
    assert [c.repository for c in store.schedule.claim("a", limit=10, lease=60)] == ["o/later"]
    # Adding a known repository again (a webhook, a rediscovery) keeps its place.
    store.add_repository("o/later", 1, due_in=0)
    assert store.schedule.due_in("o/later") == pytest.approx(-1)


def test_a_claim_carries_each_run_snapshot_read_under_its_lease(database_url):
    """What a run starts from comes with its claim, the same as `snapshot_for_run` reads."""
    store = Store.open(database_url)
    store.add_repositories(1, {"o/a": "main", "o/b": "trunk", "o/c": None}, due_in=lambda: 0.0)
    store.set_suspended(1, True)
    store.save_latest("o/a", {"app": LatestRef(name="r/app", tag="1.2.3", digest="sha256:1")})
    store.save_latest(
        "o/b", {"x": LatestRef(name="r/x", tag="1"), "y": LatestRef(name="r/y", tag="2")}
    )
    state = AutomationState("o/b", "auto", push_branch="bot/auto", pr_number=7, pr_labels=["a"])
    store.save_automation_state(state)
    store.save_automation_state(AutomationState("o/b", "other", push_branch="bot/other"))

    claims = {c.repository: c for c in store.schedule.claim("me", limit=10, lease=60)}

    assert sorted(claims) == ["o/a", "o/b", "o/c"]
    for name, claim in claims.items():
        assert claim.snapshot == store.snapshot_for_run(name), name
    b = claims["o/b"].snapshot
    assert b.record.default_branch == "trunk" and b.suspended
    assert set(b.latest) == {"x", "y"} and b.latest["y"].tag == "2"
    assert sorted(b.automations) == ["auto", "other"]
    assert b.automations["auto"].pr_number == 7 and b.automations["auto"].pr_labels == ["a"]
    assert claims["o/a"].snapshot.latest["app"].digest == "sha256:1"
    assert claims["o/c"].snapshot.latest == {} and claims["o/c"].snapshot.automations == {}


def test_claims_never_overlap_between_replicas(database_url):
    """Four replicas claim at once, in threads, until nothing is due: each repository is
    claimed exactly once (on PostgreSQL through FOR UPDATE SKIP LOCKED)."""
    first, *others = stores = replicas(database_url, 4)
    first.add_repositories(1, dict.fromkeys(NAMES), due_in=lambda: 0.0)
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(len(stores))

    def claim_all(store: Store, holder: str) -> None:
        start.wait()
        mine = claimed.setdefault(holder, [])
        while batch := store.schedule.claim(holder, limit=3, lease=60):
            mine.extend(c.repository for c in batch)

    threads = [
        threading.Thread(target=claim_all, args=(store, f"replica-{i}"))
        for i, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    every = [name for names in claimed.values() for name in names]
    assert sorted(every) == NAMES  # each once: none twice, none missed
    for holder, names in claimed.items():
        assert first.schedule.leases(holder) == sorted(names)
    for store in stores:
        store.close()


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(database_url):
    clock = Clock()
    alive, dead = replicas(database_url, 2, clock)
    alive.add_repositories(1, {"o/a": None, "o/b": None}, due_in=lambda: 0.0)
    assert {c.repository for c in dead.schedule.claim("dead", limit=5, lease=10)} == {"o/a", "o/b"}
    clock.now += 5
    assert dead.schedule.renew("dead", ["o/a"], lease=10) == []  # o/a renewed; o/b not
    assert alive.schedule.claim("alive", limit=5, lease=10) == []  # both still held
    clock.now += 6  # o/b's lease ran out; o/a's has 9 s left
    takeover = alive.schedule.claim("alive", limit=5, lease=10)
    assert [(c.repository, c.taken_from) for c in takeover] == [("o/b", "dead")]
    # The replica that stalled finds out when it renews: o/b is not its any more.
    assert dead.schedule.renew("dead", ["o/a", "o/b"], lease=10) == ["o/b"]
    # And its late finish changes nothing on a row it no longer holds.
    dead.schedule.finish(takeover[0], "dead", due_in=1000)
    assert alive.schedule.leases("alive") == ["o/b"]
    assert alive.schedule.due_in("o/b") <= 0


def test_a_request_during_a_run_makes_it_due_again_once(database_url):
    clock = Clock()
    store = Store.open(database_url, clock=clock)
    store.add_repository("o/a", 1, due_in=0)
    (claim,) = store.schedule.claim("r", limit=1, lease=60)
    for _ in range(3):
        store.schedule.request_run("o/a")  # webhooks while it runs
    assert store.schedule.claim("r2", limit=1, lease=60) == []  # still held
    store.schedule.finish(claim, "r", due_in=600)
    assert store.schedule.due_in("o/a") == pytest.approx(0)  # due now, not in 600 s
    (again,) = store.schedule.claim("r", limit=1, lease=60)
    store.schedule.finish(again, "r", due_in=600)
    assert store.schedule.due_in("o/a") == pytest.approx(600)  # and only once


def test_failures_are_counted_in_the_database_and_a_success_resets_them(database_url):
    clock = Clock()
    one, two = replicas(database_url, 2, clock)
    one.add_repository("o/a", 1, due_in=0)
    for expected in range(3):
        (claim,) = (one if expected % 2 else two).schedule.claim("x", limit=1, lease=60)
        assert claim.failures == expected  # whichever replica claims, the count goes on
        one.schedule.finish(claim, "x", due_in=0, failed=True)
    (claim,) = one.schedule.claim("x", limit=1, lease=60)
    one.schedule.finish(claim, "x", due_in=0)
    assert one.schedule.claim("x", limit=1, lease=60)[0].failures == 0


def test_release_gives_back_every_lease_of_one_holder_only(database_url):
    store = Store.open(database_url)
    store.add_repositories(1, dict.fromkeys(NAMES[:6]), due_in=lambda: 0.0)
    store.schedule.claim("leaving", limit=4, lease=600)
    store.schedule.claim("staying", limit=2, lease=600)
    assert store.schedule.release("leaving") == 4
    assert store.schedule.leases("leaving") == [] and len(store.schedule.leases("staying")) == 2
    assert store.schedule.backlog() == 4  # still due: any replica takes them


async def test_two_schedulers_on_one_database_share_the_work_without_overlap(database_url):
    """Two replicas' schedulers, each with concurrency 3, run 40 repositories: every one
    runs exactly once and never on both at the same time."""
    stores = replicas(database_url, 2)
    stores[0].add_repositories(1, dict.fromkeys(NAMES[:40]))
    running: set[str] = set()
    ran: dict[str, list[str]] = {}
    overlaps: list[str] = []

    def runner(holder: str):
        async def run(claim: Claim) -> float | None:
            repository = claim.repository
            if repository in running:
                overlaps.append(repository)
            running.add(repository)
            ran.setdefault(repository, []).append(holder)
            await asyncio.sleep(0.01)
            running.discard(repository)
            return 3600.0

        return run

    schedulers = [
        Scheduler(runner(f"r{i}"), store.schedule, holder=f"r{i}", concurrency=3, tick=0.05)
        for i, store in enumerate(stores)
    ]
    for scheduler in schedulers:
        scheduler.start()
    schedulers[1].enqueue_all(NAMES[:40])  # a webhook on one replica; both take part
    await asyncio.gather(*(s.wait_idle(timeout=30) for s in schedulers))
    for scheduler in schedulers:
        await scheduler.stop(grace=5)
    assert overlaps == []
    assert sorted(ran) == NAMES[:40] and all(len(h) == 1 for h in ran.values())
    assert {h[0] for h in ran.values()} == {"r0", "r1"}  # both did some
    assert all(3590 < (stores[0].schedule.due_in(n) or 0) <= 3600 for n in NAMES[:40])
