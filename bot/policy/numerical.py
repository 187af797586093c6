"""Numerical policy: tags as Go ``strconv.ParseFloat`` numbers (Flux ``numerical``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from bot.policy.model import Order, PolicyError

_DIGITS = r"[0-9](?:_?[0-9])*"
_HEX_DIGITS = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
# Go's grammar: an optional sign; decimal with optional exponent, or hex with
# a mandatory ``p`` exponent; ``_`` only between digits (or right after
# ``0x``); ``inf``/``infinity`` (signed) and ``nan`` (unsigned) in any case.
_DECIMAL = re.compile(
    rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?"
)
_HEX = re.compile(
    rf"[+-]?0[xX](?:_?{_HEX_DIGITS}(?:\.(?:{_HEX_DIGITS})?)?|\.{_HEX_DIGITS})[pP][+-]?{_DIGITS}"
)
_INFINITY = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)
_NAN = re.compile(r"nan", re.IGNORECASE)


def parse_go_float(text: str) -> float | None:
    """The float64 Go's ``strconv.ParseFloat(text, 64)`` yields, or None where Go errors.

    Python's ``float()`` alone is both more lenient (whitespace, non-ASCII
    digits) and stricter (hex floats), hence the grammar check first. Values
    out of float64 range are an error in Go too.
    """
    if _INFINITY.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    try:
        if _DECIMAL.fullmatch(text):
            value = float(text.replace("_", ""))
        elif _HEX.fullmatch(text):
            value = float.fromhex(text.replace("_", ""))
        else:
            return None
    except (OverflowError, ValueError):
        return None
    return None if math.isinf(value) else value


def parse_all(tags: Sequence[str]) -> list[float]:
    """Every tag as a number; one bad tag fails the whole list, as in Flux."""
    values = []
    for tag in tags:
        value = parse_go_float(tag)
        if value is None:
            raise PolicyError(f"failed to parse invalid numeric value '{tag}'")
        values.append(value)
    return values


def latest(order: Order, tags: Sequence[str]) -> str | None:
    """Flux's walk: a later tag replaces the best unless strictly worse.

    So ties go to the later tag, and NaN (never "worse") always replaces the
    best when reached and is replaced by the next tag. None for an empty list.
    """
    best_tag: str | None = None
    best = 0.0
    for i, (tag, value) in enumerate(zip(tags, parse_all(tags), strict=True)):
        if i > 0 and (value < best if order == "asc" else value > best):
            continue
        best_tag, best = tag, value
    return best_tag


def ranked(order: Order, tags: Sequence[str]) -> list[str]:
    """All tags, best first, such that ``ranked(...)[0] == latest(...)``.

    Rank is the order of successive `latest` picks. Because of the walk, the
    tags after the last NaN come first (sorted, later tag first on ties), then
    that NaN, then the run before it, and so on back to the start.
    """
    values = parse_all(tags)
    sign = 1.0 if order == "asc" else -1.0
    result: list[str] = []
    run: list[int] = []
    for i in reversed(range(len(tags))):
        if math.isnan(values[i]):
            result.extend(_sorted_run(run, values, tags, sign))
            result.append(tags[i])
            run = []
        else:
            run.append(i)
    result.extend(_sorted_run(run, values, tags, sign))
    return result


def _sorted_run(run: list[int], values: list[float], tags: Sequence[str], sign: float) -> list[str]:
    # Best value first; on equal values the later tag (higher index) first.
    return [tags[i] for i in sorted(run, key=lambda i: (sign * values[i], i), reverse=True)]
