"""Alphabetical policy: plain byte-wise string order (Flux ``alphabetical``)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.policy.model import Order


def latest(order: Order, tags: Sequence[str]) -> str | None:
    """``asc`` picks the greatest string, ``desc`` the smallest; None for an empty list.

    Python compares ``str`` by code point, which is UTF-8 byte order, as Go does.
    """
    if not tags:
        return None
    return max(tags) if order == "asc" else min(tags)


def ranked(order: Order, tags: Sequence[str]) -> list[str]:
    """Distinct tags, best first."""
    return sorted(set(tags), reverse=(order == "asc"))
