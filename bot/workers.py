"""CPU-heavy work off the event loop: planning and policy ranking in a process pool.

`serve` acknowledges webhooks on its event loop, and GitHub gives up after
10 s. The setters (Python around libyaml's events), Jinja2 and the policy sort
hold the GIL, so a thread pool would still starve the loop: processes do not
(bench/bench_hostile.py measures both, with the setters of before issue 9). Each task runs under a wall-time
budget enforced inside its worker by SIGALRM, which interrupts pure-Python
work between bytecodes and leaves the worker alive for the next task.

`Workers(0)` runs tasks inline: the CLI plans on the user's own machine, and
in-process tests need no pool. Tasks and their arguments must pickle.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Modules the fork server imports once, so each worker starts warm.
_PRELOAD = ["bot.planner"]


class WallTimeExceeded(Exception):
    """A task ran longer than its budget and was stopped."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, ...]:  # raised in a worker, re-raised in the server
        return (WallTimeExceeded, (self.seconds,))


class WorkerLost(Exception):
    """The worker process died (killed, out of memory) while running a task."""


def default_processes() -> int:
    """One worker per core the process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _call_with_deadline(fn: Callable[..., T], seconds: float | None, args: tuple) -> T:
    """Run in a worker: `fn(*args)`, interrupted once `seconds` have passed."""
    if not seconds:
        return fn(*args)

    def expired(_signum: int, _frame: object) -> None:
        raise WallTimeExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Workers:
    """A pool of `processes` workers (0: run inline), shared by every installation."""

    def __init__(self, processes: int = 0) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Not fork: the server has threads and an event loop a child must not inherit.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            self._pool = ProcessPoolExecutor(self.processes, mp_context=context)
        return self._pool

    async def run(self, fn: Callable[..., T], *args: Any, seconds: float | None = None) -> T:
        """`fn(*args)` in a worker, stopped with `WallTimeExceeded` after `seconds`.

        Inline (no pool) the deadline is not enforced: nothing else waits on that loop.
        """
        if self.processes <= 0:
            return fn(*args)
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            return await loop.run_in_executor(pool, _call_with_deadline, fn, seconds, args)
        except BrokenProcessPool:
            # A task killed its worker (e.g. the kernel's OOM killer): the tasks that
            # follow get a fresh pool; this one, and others on the broken pool, fail.
            if self._pool is pool:
                log.warning("a worker process died; starting a new pool")
                self._discard_pool()
            raise WorkerLost("the worker process running it died") from None

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers; tasks still queued are cancelled."""
        self._discard_pool()
