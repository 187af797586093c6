"""A credential's primary rate limit, spread over its window before it runs out.

GitHub reports, on every answer, how many requests the credential has left
(``x-ratelimit-remaining``) until when (``x-ratelimit-reset``). `RateBudget`
keeps the last report and, before each request, decides:

* plenty left (at least half the limit): go at once;
* less: space the requests so that what is left lasts until the reset, less a
  reserve (``pace = seconds to reset / requests left``). A request waits for its
  slot when that is at most `max_pause` seconds away;
* otherwise, or once only the reserve is left: `RateLimited` for a read, with the time to
  try again (`RateLimited.resume_at`). The reconcile does not wait holding a
  worker: the scheduler postpones the repository to that time (issue 10 §5), so
  running out never fails a tick, it moves work later.

Writes are not spaced and may use the reserve (they are paced per installation
by ``WRITE_INTERVAL`` already, and a run that has read what it needs should
finish). Slots are taken one after another, so concurrent runs of one installation share
the pace rather than each going at it. Answers of 304 cost nothing on GitHub
and are counted as GitHub reports them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.github.errors import RateLimited

#: Requests kept back from reads, for the writes of runs already under way: at least
#: this many, or `RESERVE_SHARE` of the limit (100 of GitHub's 5,000 an hour), enough
#: for 16 full runs at once (`bot.reconcile.FULL_RUNS`) that open a PR with about six writes each.
RESERVE = 20
RESERVE_SHARE = 0.02
#: A request waits at most this long for its slot; beyond that the run is postponed.
MAX_PAUSE = 2.0


@dataclass
class RateBudget:
    """What GitHub last said of one credential's primary limit, and the next free slot."""

    who: str = "the App"
    reserve: int = RESERVE
    max_pause: float = MAX_PAUSE
    clock: Callable[[], float] = time.time
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None
    _next_slot: float = 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take in an answer's ``x-ratelimit-*`` headers (ignored when absent or unreadable)."""
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
            limit = int(headers.get("x-ratelimit-limit", "0")) or None
        except (KeyError, ValueError):
            return
        remaining = max(0, remaining)
        if self.reset is not None and self.reset > self.clock():
            if reset < self.reset:
                return  # an answer of the window before, arriving late
            if reset == self.reset and self.remaining is not None:
                # The same window only ever goes down: an answer sent before requests
                # already counted here must not give them back.
                remaining = min(remaining, self.remaining)
        self.limit, self.remaining, self.reset = limit, remaining, reset

    def pause_before_request(self, *, write: bool = False, conditional: bool = False) -> float:
        """Seconds to wait before the next request; `RateLimited` if it must not be sent now.

        A write goes while anything is left: the reserve is for it. Reads come
        first in a run, so a run the budget lets start can finish its writes,
        rather than stop half-way and do them again later. A `conditional` read
        (``If-None-Match``) is not counted here: answered 304 it costs nothing,
        and otherwise its answer says what is left.
        """
        now = self.clock()
        if self.remaining is None or self.reset is None or self.reset <= now:
            return 0.0  # nothing known, or a new window has begun
        if write:
            if self.remaining <= 0:
                raise self._postpone(self.reset + 1.0, "no requests left")
            self.remaining -= 1
            return 0.0
        reserve = max(self.reserve, int((self.limit or 0) * RESERVE_SHARE))
        usable = self.remaining - reserve
        if usable <= 0:
            raise self._postpone(self.reset + 1.0, f"{self.remaining} requests left")
        if self.limit is not None and self.remaining * 2 >= self.limit:
            return 0.0
        pace = (self.reset - now) / usable
        slot = max(now, self._next_slot)
        if slot - now > self.max_pause:
            raise self._postpone(slot, f"{self.remaining} requests left, one every {pace:.1f} s")
        self._next_slot = slot + pace
        if not conditional:
            self.remaining -= 1  # taken; the answer's header says what is really left
        return slot - now

    def _postpone(self, resume_at: float, why: str) -> RateLimited:
        reset = time.strftime("%H:%M:%S", time.gmtime(self.reset or resume_at))
        return RateLimited(
            f"GitHub rate limit of {self.who}: {why} until {reset} UTC; "
            f"work postponed by {max(0.0, resume_at - self.clock()):.0f} s",
            resume_at=resume_at,
        )
