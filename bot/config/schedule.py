"""When an automation may propose: ``schedule`` windows in a time zone (issue 12 §4).

A window is either words, Renovate-like::

    after 22:00 and before 05:00 on weekdays
    before 06:00
    on saturday and sunday

or a cron expression of five fields, whose every matching minute is inside
(``* 22-23,0-4 * * 1-5`` is the first example above). Words: a minute is inside
when its day is one of the days (default: every day) and its time of day is at or
after ``after`` and before ``before``; when ``after`` is later than ``before`` the
range wraps midnight, and each minute is judged on its own day (05:00 on Saturday
is outside "on weekdays"). Pure: the caller gives the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_SETS = {
    "weekdays": frozenset(range(5)),
    "weekday": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
    "every day": frozenset(range(7)),
    "daily": frozenset(range(7)),
}
_TIME = r"([01]?\d|2[0-3]):([0-5]\d)"
_WORDS = re.compile(
    rf"^(?:after\s+{_TIME})?\s*(?:and\s+)?(?:before\s+{_TIME})?\s*(?:on\s+(?P<days>.+))?$",
    re.IGNORECASE,
)
#: How far `next_open` looks: a window that never opens within it is reported as such.
LOOKAHEAD = timedelta(days=400)


class ScheduleError(ValueError):
    """A window or time zone the bot cannot read; the message says what to write."""


@dataclass(frozen=True)
class Window:
    text: str
    cron: str | None = None
    after: time | None = None
    before: time | None = None
    days: frozenset[int] = frozenset(range(7))

    def contains(self, moment: datetime) -> bool:
        """``moment`` is local time in the schedule's zone."""
        if self.cron is not None:
            from croniter import croniter

            return bool(croniter.match(self.cron, moment.replace(second=0, microsecond=0)))
        if moment.weekday() not in self.days:
            return False
        now = moment.time()
        after, before = self.after or time(0, 0), self.before
        if before is None:
            return now >= after
        if after <= before:
            return after <= now < before
        return now >= after or now < before  # wraps midnight

    def next_start(self, moment: datetime) -> datetime | None:
        """The first minute after ``moment`` that is inside (None: not within LOOKAHEAD)."""
        if self.cron is not None:
            from croniter import CroniterBadDateError, croniter

            try:
                found = croniter(self.cron, moment).get_next(datetime)
            except CroniterBadDateError:  # a date that never comes (30 February)
                return None
            return found if found - moment <= LOOKAHEAD else None
        # Words: a window opens at `after` (or midnight) of one of its days, or at once.
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        candidates = [start]
        for day in range(8):
            date = (start + timedelta(days=day)).date()
            for at in (self.after or time(0, 0), time(0, 0)):
                candidates.append(datetime.combine(date, at, tzinfo=moment.tzinfo))
        return min((c for c in candidates if c >= start and self.contains(c)), default=None)


@dataclass(frozen=True)
class Schedule:
    timezone: str
    windows: tuple[Window, ...]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        return any(window.contains(local) for window in self.windows)

    def next_open(self, now: datetime) -> datetime | None:
        """When the next window opens (in the schedule's zone), or None if none will."""
        local = now.astimezone(self.zone)
        starts = [s for s in (w.next_start(local) for w in self.windows) if s is not None]
        return min(starts, default=None)


def parse_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"'{name}' is not a time zone; write an IANA name like Europe/Berlin or UTC"
        ) from None
    return name


def parse_window(text: str) -> Window:
    words = " ".join(text.split())
    if len(words.split(" ")) == 5 and not words.lower().startswith(("after", "before", "on")):
        from croniter import croniter

        if not croniter.is_valid(words):
            raise ScheduleError(f"'{text}' is not a valid cron expression (5 fields)")
        window = Window(text=text, cron=words)
        if window.next_start(datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC"))) is None:
            raise ScheduleError(f"'{text}' never matches a date (like 30 February); fix it")
        return window
    match = _WORDS.match(words)
    if not words or match is None or not any(match.groups()):
        raise ScheduleError(
            f"'{text}' is not a window; write e.g. 'after 22:00 and before 05:00 on weekdays' "
            "or a cron expression like '* 22-23,0-4 * * 1-5'"
        )
    after = time(int(match.group(1)), int(match.group(2))) if match.group(1) else None
    before = time(int(match.group(3)), int(match.group(4))) if match.group(3) else None
    days = _days(match.group("days"), text) if match.group("days") else frozenset(range(7))
    return Window(text=text, after=after, before=before, days=days)


def _days(text: str, window: str) -> frozenset[int]:
    phrase = text.strip().lower()
    if phrase in _DAY_SETS:
        return _DAY_SETS[phrase]
    days = set()
    for word in re.split(r"\s*(?:,|\band\b)\s*", phrase):
        name = word.strip().removesuffix("s")
        found = [i for i, day in enumerate(DAY_NAMES) if len(name) >= 3 and day.startswith(name)]
        if len(found) != 1:
            raise ScheduleError(
                f"'{word.strip()}' in '{window}' is not a day; write weekdays, weekends, "
                "every day, or day names like monday, tue"
            )
        days.add(found[0])
    return frozenset(days)
