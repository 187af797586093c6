"""The scheduler: one run per repository at a time, bounded concurrency, timers, shutdown.

The schedule is the store's (`bot.store.schedule`): due times and leases in the
database. Here on SQLite; `tests/test_schedule_leases.py` runs replicas on
PostgreSQL too.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.scheduler import RETRY_CAP, RETRY_FIRST, Postpone, RetryLater, Scheduler, retry_delay
from bot.store import Claim, Store

REPOSITORIES = ("o/a", "o/b", "o/c", "o/bad", "o/good", "o/slow", *(f"o/{i}" for i in range(6)))


def make_store(clock=None) -> Store:
    """A fresh memory store that knows `REPOSITORIES`, none of them due."""
    store = Store.open("sqlite:///:memory:", **({"clock": clock} if clock else {}))
    for name in REPOSITORIES:
        store.add_repository(name, 1, due_in=10**9)
    return store


def make_scheduler(run, *, store: Store | None = None, clock=None, **options) -> Scheduler:
    return Scheduler(run, (store or make_store(clock)).schedule, **options)


class Recorder:
    """A run function that records overlap; each run waits for `release` when given."""

    def __init__(self, delay: float = 0.0, next_run: float | None = None):
        self.delay = delay
        self.next_run = next_run
        self.calls: list[str] = []
        self.active: dict[str, int] = {}
        self.max_per_repo = 0
        self.max_total = 0
        self.fail: set[str] = set()

    async def __call__(self, claim: Claim) -> float | None:
        repository = claim.repository
        self.calls.append(repository)
        self.active[repository] = self.active.get(repository, 0) + 1
        self.max_per_repo = max(self.max_per_repo, self.active[repository])
        self.max_total = max(self.max_total, sum(self.active.values()))
        try:
            await asyncio.sleep(self.delay)
            if repository in self.fail:
                raise RuntimeError(f"boom in {repository}")
            return self.next_run
        finally:
            self.active[repository] -= 1


async def test_runs_are_serialised_per_repository_and_coalesced():
    run = Recorder(delay=0.05)
    scheduler = make_scheduler(run, concurrency=4, tick=0.01)
    scheduler.start()
    scheduler.enqueue("o/a")
    await asyncio.sleep(0.01)  # o/a is running now
    for _ in range(5):
        scheduler.enqueue("o/a")  # all coalesce into one more run
    await scheduler.wait_idle(timeout=5)
    await scheduler.stop()
    assert run.calls == ["o/a", "o/a"]
    assert run.max_per_repo == 1


async def test_concurrency_is_bounded():
    run = Recorder(delay=0.05)
    scheduler = make_scheduler(run, concurrency=2, tick=0.01)
    scheduler.start()
    for i in range(6):
        scheduler.enqueue(f"o/{i}")
    await scheduler.wait_idle(timeout=5)
    await scheduler.stop()
    assert sorted(run.calls) == [f"o/{i}" for i in range(6)]
    assert run.max_total == 2


async def test_a_failing_repository_does_not_stop_the_others_and_is_retried(caplog):
    run = Recorder()
    run.fail.add("o/bad")
    scheduler = make_scheduler(run, concurrency=1, tick=0.01)
    scheduler.start()
    scheduler.enqueue("o/bad")
    scheduler.enqueue("o/good")
    await scheduler.wait_idle(timeout=5)
    assert run.calls == ["o/bad", "o/good"]
    assert "boom in o/bad" in caplog.text
    assert scheduler.due_in("o/bad") is not None  # a retry timer was set
    await scheduler.stop()


async def test_the_interval_a_run_returns_schedules_the_next_run():
    now = [0.0]
    run = Recorder(next_run=300.0)
    scheduler = make_scheduler(run, concurrency=1, tick=0.01, clock=lambda: now[0])
    scheduler.start()
    scheduler.enqueue("o/a")
    await scheduler.wait_idle(timeout=5)
    assert scheduler.due_in("o/a") == pytest.approx(300.0)
    await asyncio.sleep(0.05)
    assert run.calls == ["o/a"]  # not due yet
    now[0] = 301.0
    for _ in range(100):
        if len(run.calls) == 2:
            break
        await asyncio.sleep(0.01)
    await scheduler.wait_idle(timeout=5)
    await scheduler.stop()
    assert run.calls == ["o/a", "o/a"]


async def test_forgotten_repositories_do_not_run():
    run = Recorder(delay=0.05)
    store = make_store()
    scheduler = make_scheduler(run, store=store, concurrency=1, tick=0.01)
    scheduler.start()
    scheduler.enqueue("o/a")
    scheduler.enqueue("o/b")
    store.remove_repository("o/b")  # what the handlers do when access is lost
    scheduler.forget("o/b")
    await scheduler.wait_idle(timeout=5)
    await scheduler.stop()
    assert run.calls == ["o/a"]
    assert scheduler.due_in("o/b") is None


async def test_stop_lets_running_work_finish_and_drops_queued_work():
    run = Recorder(delay=0.1)
    scheduler = make_scheduler(run, concurrency=1, tick=0.01)
    scheduler.start()
    scheduler.enqueue("o/a")
    scheduler.enqueue("o/b")
    await asyncio.sleep(0.02)
    await scheduler.stop(grace=5)
    assert run.calls == ["o/a"]
    assert run.active["o/a"] == 0  # finished, not cancelled midway
    scheduler.enqueue("o/c")  # ignored once stopping
    assert "o/c" not in run.calls


async def test_stop_cancels_runs_that_overstay_the_grace_period():
    run = Recorder(delay=10)
    scheduler = make_scheduler(run, concurrency=1, tick=0.01)
    scheduler.start()
    scheduler.enqueue("o/slow")
    await asyncio.sleep(0.02)
    await asyncio.wait_for(scheduler.stop(grace=0.05), timeout=2)
    assert run.active["o/slow"] == 0


def test_concurrency_must_be_positive():
    with pytest.raises(ValueError):
        make_scheduler(Recorder(), concurrency=0)


def test_retry_delays_double_and_stop_at_the_interval():
    delays = [retry_delay(n, cap=60.0) for n in range(1, 8)]
    assert all(0.9 * d <= r <= d for r, d in zip(delays, [5, 10, 20, 40, 60, 60, 60], strict=True))
    assert 0.9 * RETRY_CAP <= retry_delay(20, cap=None) <= RETRY_CAP
    assert 0.9 * RETRY_FIRST <= retry_delay(3, cap=1.0) <= RETRY_FIRST  # never hot


async def test_failures_in_a_row_back_off_and_a_success_starts_again():
    now = [0.0]
    outcomes: list[object] = [RetryLater("down", interval=60.0)] * 3 + [None, RetryLater("down")]

    async def run(claim: Claim) -> float | None:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return 300.0

    scheduler = make_scheduler(run, concurrency=1, tick=0.01, clock=lambda: now[0])
    scheduler.start()
    waits = []
    for _ in range(5):
        scheduler.enqueue("o/a")
        await scheduler.wait_idle(timeout=5)
        waits.append(scheduler.due_in("o/a"))
    await scheduler.stop()
    assert 4.5 <= waits[0] <= 5 and 9 <= waits[1] <= 10 and 18 <= waits[2] <= 20
    assert waits[3] == pytest.approx(300.0)  # the interval again after a success
    assert 4.5 <= waits[4] <= 5  # counting starts again


async def test_stop_ends_even_while_quick_runs_keep_waking_the_claimer():
    """Runs that finish at once set the wake-up event all the time; stop still ends."""
    names = [f"o/quick-{i}" for i in range(3000)]
    store = Store.open("sqlite:///:memory:")
    store.add_repositories(1, dict.fromkeys(names))
    run = Recorder()
    scheduler = make_scheduler(run, store=store, concurrency=4, tick=0.2)
    scheduler.start()
    scheduler.enqueue_all(names)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(scheduler.stop(grace=5), timeout=5)
    ran = len(run.calls)
    await asyncio.sleep(0.05)
    assert 0 < ran == len(run.calls) < len(names)  # none started after stop
    assert store.schedule.backlog() == len(names) - ran  # the rest stays due, for anyone


async def test_a_postponed_run_is_due_when_asked_and_is_not_a_failure():
    async def run(claim: Claim) -> float | None:
        raise Postpone("rate limit spent", delay=120.0)

    store = make_store()
    scheduler = make_scheduler(run, store=store, concurrency=1, tick=0.01)
    scheduler.start()
    scheduler.enqueue("o/a")
    await scheduler.wait_idle(timeout=5)
    await scheduler.stop()
    assert 119 <= scheduler.due_in("o/a") <= 120  # no backoff: exactly when asked
    store.schedule.request_run("o/a")
    (claim,) = store.schedule.claim("x", limit=1, lease=60)
    assert claim.failures == 0


async def test_the_claimer_outlives_an_unexpected_error(caplog):
    store = make_store()
    real_claim = store.schedule.claim
    failures = [RuntimeError("a bug in claiming")]

    def claim(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real_claim(*args, **kwargs)

    store.schedule.claim = claim
    run = Recorder()
    scheduler = make_scheduler(run, store=store, concurrency=1, tick=0.01)
    scheduler.start()
    scheduler.enqueue("o/a")
    await scheduler.wait_idle(timeout=5)
    await scheduler.stop()
    assert run.calls == ["o/a"]
    assert "a bug in claiming" in caplog.text
