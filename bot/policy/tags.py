"""Tag lists as Flux keeps them: exclusions applied, in descending byte order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.policy.filtertags import compile_re2
from bot.policy.model import DEFAULT_EXCLUSION_LIST


def flux_order(tags: Iterable[str]) -> list[str]:
    """Descending byte order, the order Flux stores a scan's tags in.

    Python compares ``str`` by code point, which is UTF-8 byte order.
    """
    return sorted(tags, reverse=True)


def apply_exclusions(tags: Iterable[str], patterns: Sequence[str] | None) -> list[str]:
    """Drop tags that any pattern finds (unanchored RE2 search), in Flux order.

    ``None`` or an empty list means `DEFAULT_EXCLUSION_LIST` (cosign ``.sig`` tags).
    Raises `InvalidPolicyError` (``failed to compile regex ...``) for a bad pattern.
    """
    compiled = [
        compile_re2(pattern, error_prefix="failed to compile regex")
        for pattern in (patterns or DEFAULT_EXCLUSION_LIST)
    ]
    return flux_order(tag for tag in tags if not any(r.search(tag) for r in compiled))
