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

An exception in one run is logged and never reaches another run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: A run: reconcile this repository, answer seconds until it is due again (None: no timer).
RunRepository = Callable[[str], Awaitable[float | None]]

#: Retry sooner than the config interval after a failed run, but not hot.
RETRY_AFTER_FAILURE = 60.0


class Scheduler:
    def __init__(
        self,
        run: RunRepository,
        *,
        concurrency: int = 4,
        tick: float = 5.0,
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
        self._again.discard(repository)
        self._queued.discard(repository)

    def due_in(self, repository: str) -> float | None:
        when = self._due.get(repository)
        return None if when is None else when - self._clock()

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker()) for _ in range(self._concurrency)]
        self._tasks.append(loop.create_task(self._ticker()))

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Until nothing is queued or running (tests and shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, *, grace: float = 30.0) -> None:
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
                if delay is not None:
                    self.schedule(repository, float(delay))
            except asyncio.CancelledError:
                raise
            except Exception:
                # Whatever went wrong stays with this repository: the worker lives on.
                log.exception(
                    "reconcile of %s failed; retrying in %ss", repository, RETRY_AFTER_FAILURE
                )
                self.schedule(repository, RETRY_AFTER_FAILURE)
            finally:
                self._running.discard(repository)
            if repository in self._again:
                self._again.discard(repository)
                self.enqueue(repository)
            self._update_idle()

    def _update_idle(self) -> None:
        if not self._queued and not self._running:
            self._idle.set()
