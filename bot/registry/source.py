"""The planner's `TagSource` backed by live registries."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.policy.model import DigestLookup
from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner

if TYPE_CHECKING:
    from bot.config import ImageRepositoryConfig

log = logging.getLogger(__name__)

__all__ = ["RegistryError", "RegistryTagSource"]


class RegistryTagSource:
    """Tags and digests for one GitHub repository (``owner/name``; None for a local plan)."""

    def __init__(self, scanner: RegistryScanner, *, repository: str | None) -> None:
        self._scanner = scanner
        self._repository = repository

    async def tags(self, repo: ImageRepositoryConfig) -> list[str]:
        """Tags after the exclusion list, in Flux order; the last good ones if a scan fails.

        Raises `RegistryError` when no good scan result exists.
        """
        result = await self._scanner.scan(repo, repository=self._repository)
        if result.stale:
            log.warning("%s: using the last good tags: %s", repo.image, result.error)
        return result.tags

    def digest_lookup(
        self, repo: ImageRepositoryConfig, *, refresh: Iterable[str] = ()
    ) -> DigestLookup:
        return self._scanner.digest_lookup(repo, repository=self._repository, refresh=refresh)
