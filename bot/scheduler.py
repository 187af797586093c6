"""When reconciles run in this replica: claimed from the schedule in the database.

The due times and leases live in the database (`bot.store.schedule`), so every
replica, and a restarted one, sees the same schedule:

* `enqueue(repo)` (a webhook, on any replica) makes the repository due now and
  wakes this replica's claimer;
* the claimer takes the leases of due repositories while this replica has free
  slots (at most ``concurrency`` runs at once), and otherwise looks again every
  ``tick`` seconds;
* a run answers how long until the repository is due again (the shortest
  interval of its config); that is stored as the lease is released. A run
  that must wait for GitHub's rate limit raises `Postpone`: it is due again
  when the window allows, without counting as a failure;
* a repository is never reconciled twice at once, here or on another replica:
  it runs only under its lease, which is renewed while it runs. A request made
  during a run makes it due again right after, exactly once;
* a replica that dies stops renewing; its leases expire and another replica
  takes the repositories over (counted as takeovers);
* `stop()` stops claiming, lets running reconciles finish (bounded), cancels
  what is left and releases this replica's leases.

Start-up enqueues nothing: due times are already stored, and repositories a
fresh database learns of are spread over a window (`Store.add_repository`).

An exception in one run is logged and never reaches another run. A failed
run is tried again with backoff: `RETRY_FIRST` seconds, doubling with each
failure in a row (the count is stored, so another replica goes on with it),
capped at the repository's interval (`RetryLater.interval`) or `RETRY_CAP`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Collection

from sqlalchemy.exc import SQLAlchemyError

from bot import metrics
from bot.config import DEFAULT_REPOSITORY_INTERVAL
from bot.logs import log_context
from bot.store import Claim, Schedule
from bot.store.schedule import Finished

log = logging.getLogger(__name__)

#: A run: reconcile the claimed repository (its snapshot, read as it was claimed, is in
#: the claim), answer seconds until it is due again (None: no timer).
RunRepository = Callable[[Claim], Awaitable[float | None]]

#: Runs at once per replica. Most runs are one free conditional request, which waits
#: for GitHub's answer (tens of milliseconds): 10,000 of them take 64 at once to fit in
#: 20 s, and a claim then refills many slots in one transaction. What comes after the
#: short-circuit is bounded apart (`bot.reconcile.FULL_RUNS`); writes are paced per
#: installation (`WRITE_INTERVAL`) and planning is bounded by `WORKERS`.
DEFAULT_CONCURRENCY = 64
DEFAULT_TICK = 5.0  # seconds between looks for due repositories
SHUTDOWN_GRACE = 30.0  # seconds running reconciles get to finish on stop
#: How long a claimed repository stays this replica's without a renewal: how long a
#: dead replica's repositories wait before another replica takes them over.
DEFAULT_LEASE = 60.0
#: Leases are renewed this often, as a fraction of their length.
RENEW_FRACTION = 1 / 3
#: How often the due backlog is counted for /metrics.
BACKLOG_EVERY = 5.0
#: With fewer than half the slots free, the claimer waits up to this long after a run
#: ends for half of them to be free, then stores the ended runs and refills the slots
#: together, in one transaction each (no-op runs end every few milliseconds).
CLAIM_GATHER = 0.01

#: The first retry after a failed run, in seconds; each failure in a row doubles it.
RETRY_FIRST = 5.0
#: The longest wait between retries when the repository's interval is not known.
RETRY_CAP = DEFAULT_REPOSITORY_INTERVAL


class RetryLater(Exception):
    """A run failed in an expected way (GitHub unreachable, say): log one line, retry later.

    `interval` is the repository's own interval, which caps the backoff.
    """

    def __init__(self, message: str, *, interval: float | None = None) -> None:
        super().__init__(message)
        self.interval = interval


class Postpone(Exception):
    """Not now, and nothing failed: run again in `delay` seconds (a rate limit ran low).

    Unlike `RetryLater`, the failure count stays as it is: waiting for GitHub's
    window to reset is the plan, not a problem.
    """

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.delay = max(0.0, delay)


def retry_delay(failures: int, *, cap: float | None) -> float:
    """Seconds before retry number `failures` (1, 2, ...): doubling, capped, jittered by 10%."""
    limit = max(RETRY_FIRST, cap if cap is not None else RETRY_CAP)
    delay = min(RETRY_FIRST * 2 ** (failures - 1), limit)
    return delay * random.uniform(0.9, 1.0)


def replica_name() -> str:
    """This process's name as a lease holder: host, pid and a random part (pids repeat)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Scheduler:
    def __init__(
        self,
        run: RunRepository,
        schedule: Schedule,
        *,
        holder: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        tick: float = DEFAULT_TICK,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease <= 0:
            raise ValueError("the lease must be positive")
        self._run = run
        self._schedule = schedule
        self.holder = holder or replica_name()
        self._concurrency = concurrency
        self._tick = tick
        self._lease = lease
        self._running: dict[str, asyncio.Task] = {}
        self._ended: list[Finished] = []
        self._wake = asyncio.Event()
        self._claimer: asyncio.Task | None = None
        self._stopping = False

    # -- asking for runs ------------------------------------------------------

    def enqueue(self, repository: str) -> None:
        """Reconcile `repository` soon; coalesces with a queued or running run."""
        self.enqueue_all([repository])

    def enqueue_all(self, repositories: Collection[str]) -> None:
        """`enqueue` each, in one write (an installation may grant thousands at once).

        Written even while stopping: another replica, or this one restarted, runs them.
        """
        if self._schedule.request_runs(repositories) and not self._stopping:
            self._wake.set()

    def forget(self, repository: str) -> None:
        """The app lost access. Its row is gone with the repository; a run under way
        finds nothing to do, and its end updates nothing."""

    def due_in(self, repository: str) -> float | None:
        return self._schedule.due_in(repository)

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._claimer = asyncio.get_running_loop().create_task(self._claim_loop())

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Until nothing runs here and nothing is due (tests and benchmarks)."""

        async def idle() -> None:
            while self._running or self._schedule.backlog():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(idle(), timeout)

    def stop_claiming(self) -> None:
        """The first step of shutdown: no new runs start here from now on."""
        self._stopping = True
        if self._claimer is not None:
            self._claimer.cancel()

    async def stop(self, *, grace: float = SHUTDOWN_GRACE) -> None:
        """Graceful shutdown: no new runs; running ones get `grace` seconds to finish."""
        self.stop_claiming()
        if self._claimer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._claimer
            self._claimer = None
        running = [task for task in self._running.values() if not task.done()]
        if running:
            _done, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._store_ended()
        try:
            released = self._schedule.release(self.holder)
        except SQLAlchemyError as exc:
            log.warning("could not release leases at shutdown (they expire by themselves): %s", exc)
        else:
            if released:
                log.info("released %d lease(s)", released)

    # -- internals ----------------------------------------------------------------

    async def _claim_loop(self) -> None:
        renew_every = self._lease * RENEW_FRACTION
        renewed_at = backlog_at = time.monotonic()
        # Checked, not only cancelled: Python 3.11's wait_for can swallow a cancel that
        # arrives as the wake-up event is set.
        while not self._stopping:
            now = time.monotonic()
            try:
                if now - renewed_at >= renew_every:
                    renewed_at = now
                    self._renew()
                self._store_ended()
                if now - backlog_at >= BACKLOG_EVERY:
                    backlog_at = now
                    metrics.set_due_backlog(self._schedule.backlog())
                self._claim()
            except SQLAlchemyError as exc:
                # The database is away: nothing can be claimed; runs under way go on.
                log.warning("the schedule cannot be read: %s; trying again", exc)
            except Exception:
                # The claimer must outlive anything: without it this replica runs nothing.
                log.exception("claiming due repositories failed; trying again")
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(self._tick, renew_every))
            await self._gather_ended()

    async def _gather_ended(self) -> None:
        """Wait (briefly) until half the slots are free, so that claims come in batches."""
        deadline = time.monotonic() + CLAIM_GATHER
        while not self._stopping and len(self._running) - len(self._ended) > self._concurrency // 2:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=left)

    def _store_ended(self) -> None:
        """Store the next due time of the runs that ended, and release their leases."""
        ended, self._ended = self._ended, []
        if not ended:
            return
        try:
            self._schedule.finish_all(ended, self.holder)
        except SQLAlchemyError as exc:
            log.warning("could not store the next due times (the leases expire): %s", exc)
        for end in ended:
            self._running.pop(end.claim.repository, None)

    def _claim(self) -> None:
        free = 0 if self._stopping else self._concurrency - len(self._running)
        for claim in self._schedule.claim(self.holder, limit=free, lease=self._lease):
            if claim.taken_from is not None:
                metrics.count_lease_takeover()
                log.warning(
                    "%s: taking over from %s, whose lease expired",
                    claim.repository,
                    claim.taken_from,
                )
            task = asyncio.get_running_loop().create_task(self._execute(claim))
            self._running[claim.repository] = task

    def _renew(self) -> None:
        lost = self._schedule.renew(self.holder, list(self._running), lease=self._lease)
        for repository in lost:
            # Only a replica that stalled longer than a lease gets here; the branch
            # compare-and-swap still guards what this run writes.
            log.warning("%s: lease lost to another replica while running", repository)

    async def _execute(self, claim: Claim) -> None:
        repository = claim.repository
        due_in: float | None = None
        failed = False
        started = time.time()
        with log_context(repository=repository):
            log.debug("run started (lease %s)", self.holder)
            try:
                due_in = await self._run(claim)
            except asyncio.CancelledError:
                # Shutdown: the lease is released and the repository stays due.
                self._running.pop(repository, None)
                raise
            except Postpone as exc:
                due_in = exc.delay
                log.info("postponed by %.0f s: %s", exc.delay, exc)
            except RetryLater as exc:
                failed, due_in = True, retry_delay(claim.failures + 1, cap=exc.interval)
                log.warning("reconcile stopped: %s; retrying in %.0f s", exc, due_in)
            except Exception:
                # Whatever went wrong stays with this repository: the replica lives on.
                failed, due_in = True, retry_delay(claim.failures + 1, cap=None)
                log.exception("reconcile failed; retrying in %.0f s", due_in)
            finally:
                log.debug(
                    "run finished (lease %s, %.3f s)",
                    self.holder,
                    time.time() - started,
                    extra={"run_started": started, "run_finished": time.time()},
                )
            # Stored by the claimer with the others that ended meanwhile: one commit for
            # many no-op runs. The slot stays taken (and the lease held) until then.
            self._ended.append(Finished(claim, due_in, failed))
            self._wake.set()
