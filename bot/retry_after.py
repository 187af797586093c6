"""The ``Retry-After`` header (RFC 9110 §10.2.3), read once for every HTTP client.

Both forms are understood: delta-seconds (``"120"``) and an HTTP date
(``"Wed, 21 Oct 2015 07:28:00 GMT"``). Pure: the current time is a parameter.
"""

from __future__ import annotations

import datetime
import email.utils
import re
import time

# RFC 9110 allows digits only; a decimal fraction is accepted too, as servers send it.
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value; None when absent or unreadable.

    ``now`` is the current Unix time (default `time.time()`), used for the date
    form only; a date in the past means no wait (0.0).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
