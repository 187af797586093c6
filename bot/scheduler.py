"""When reconciles run: webhook triggers, interval ticks, one at a time per repository.

* `enqueue(repo)` asks for a run soon (a webhook, a startup catch-up);
* the run itself answers how long until the repository is due again (the
  shortest automation / image-repository interval of its config), and a
  ticker enqueues it once that time has passed;
* a repository is never reconciled twice at once: asking again while it runs
  queues exactly one more run after it;
* at most ``concurrency`` repositories run at once;
* `stop()` stops taking work, lets running reconciles finish (bounded), then
  cancels what is left.

An exception in one run is logged and never reaches another run. A failed
run is tried again with backoff: `RETRY_FIRST` seconds, doubling with each
failure in a row, capped at the repository's interval (`RetryLater.interval`)
or `RETRY_CAP`; a success starts the count again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from bot.config import DEFAULT_REPOSITORY_INTERVAL

log = logging.getLogger(__name__)

#: A run: reconcile this repository, answer seconds until it is due again (None: no timer).
RunRepository = Callable[[str], Awaitable[float | None]]

DEFAULT_CONCURRENCY = 4
DEFAULT_TICK = 5.0  # seconds between looks for due repositories
SHUTDOWN_GRACE = 30.0  # seconds running reconciles get to finish on stop

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


def retry_delay(failures: int, *, cap: float | None) -> float:
    """Seconds before retry number `failures` (1, 2, ...): doubling, capped, jittered by 10%."""
    limit = max(RETRY_FIRST, cap if cap is not None else RETRY_CAP)
    delay = min(RETRY_FIRST * 2 ** (failures - 1), limit)
    return delay * random.uniform(0.9, 1.0)


class Scheduler:
    def __init__(
        self,
        run: RunRepository,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        tick: float = DEFAULT_TICK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._run = run
        self._concurrency = concurrency
        self._tick = tick
        self._clock = clock
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._due: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._tasks: list[asyncio.Task] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    # -- asking for runs ------------------------------------------------------

    def enqueue(self, repository: str) -> None:
        """Reconcile `repository` soon; coalesces with a queued or running run."""
        if self._stopping:
            return
        if repository in self._running:
            self._again.add(repository)
            return
        if repository in self._queued:
            return
        self._queued.add(repository)
        self._idle.clear()
        self._queue.put_nowait(repository)

    def schedule(self, repository: str, delay: float) -> None:
        """Run `repository` again after `delay` seconds (replaces its timer)."""
        self._due[repository] = self._clock() + max(0.0, delay)

    def forget(self, repository: str) -> None:
        """The app lost access: no more timers; a queued run is dropped."""
        self._due.pop(repository, None)
        self._failures.pop(repository, None)
        self._again.discard(repository)
        self._queued.discard(repository)

    def due_in(self, repository: str) -> float | None:
        when = self._due.get(repository)
        return None if when is None else when - self._clock()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker()) for _ in range(self._concurrency)]
        self._tasks.append(loop.create_task(self._ticker()))

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Until nothing is queued or running (tests and shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, *, grace: float = SHUTDOWN_GRACE) -> None:
        """Graceful shutdown: no new runs; running ones get `grace` seconds to finish."""
        self._stopping = True
        self._again.clear()
        while not self._queue.empty():
            self._queued.discard(self._queue.get_nowait())
        if self._running:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wait_running(), grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _wait_running(self) -> None:
        while self._running:
            await asyncio.sleep(0.01)

    # -- internals ----------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            now = self._clock()
            for repository, when in list(self._due.items()):
                if when <= now:
                    del self._due[repository]
                    self.enqueue(repository)

    async def _worker(self) -> None:
        while True:
            repository = await self._queue.get()
            if repository not in self._queued:  # forgotten while queued
                self._update_idle()
                continue
            self._queued.discard(repository)
            if self._stopping:
                continue
            self._running.add(repository)
            try:
                delay = await self._run(repository)
                self._failures.pop(repository, None)
                if delay is not None:
                    self.schedule(repository, float(delay))
            except asyncio.CancelledError:
                raise
            except RetryLater as exc:
                retry = self._retry(repository, exc.interval)
                log.warning("%s: reconcile stopped: %s; retrying in %.0f s", repository, exc, retry)
            except Exception:
                # Whatever went wrong stays with this repository: the worker lives on.
                retry = self._retry(repository, None)
                log.exception("reconcile of %s failed; retrying in %.0f s", repository, retry)
            finally:
                self._running.discard(repository)
            if repository in self._again:
                self._again.discard(repository)
                self.enqueue(repository)
            self._update_idle()

    def _retry(self, repository: str, interval: float | None) -> float:
        failures = self._failures.get(repository, 0) + 1
        self._failures[repository] = failures
        delay = retry_delay(failures, cap=interval)
        self.schedule(repository, delay)
        return delay

    def _update_idle(self) -> None:
        if not self._queued and not self._running:
            self._idle.set()
