"""The planner's `TagSource` backed by live registries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from bot.policy.model import DigestLookup
from bot.registry.errors import RegistryError
from bot.registry.scanner import MetadataLookup, RegistryScanner

if TYPE_CHECKING:
    from bot.config import ImageRepositoryConfig
    from bot.progress import ScanProgress

log = logging.getLogger(__name__)

__all__ = ["RegistryError", "RegistryTagSource"]


class RegistryTagSource:
    """Tags and digests of image repositories, as one GitHub repository may see them.

    ``github_repository`` is its ``owner/name`` (None for a local plan); it decides
    which credentials may be used.
    """

    def __init__(
        self,
        scanner: RegistryScanner,
        *,
        github_repository: str | None,
        progress: ScanProgress | None = None,
        pushed: Mapping[str, float] | None = None,
    ) -> None:
        self._scanner = scanner
        self._github_repository = github_repository
        #: Canonical image name -> when a registry said it was pushed (`bot.registryevents`).
        self._pushed = dict(pushed or {})
        #: Canonical image name -> its tags before any exclusion list, as last scanned.
        self._all_tags: dict[str, list[str]] = {}
        #: Told of each scan as it starts and ends (`plan` on a terminal).
        self._progress = progress

    async def tags(self, image_repository: ImageRepositoryConfig) -> list[str]:
        """Tags after the exclusion list, in Flux order; the last good ones if a scan fails.

        Raises `RegistryError` when no good scan result exists.
        """
        if self._progress is not None:
            self._progress.started(image_repository.image)
        try:
            result = await self._scanner.scan(
                image_repository,
                github_repository=self._github_repository,
                pushed_at=self._pushed.get(image_repository.ref.canonical_name),
            )
        finally:
            if self._progress is not None:
                self._progress.finished(image_repository.image)
        if result.stale:
            log.warning("%s: using the last good tags: %s", image_repository.image, result.error)
        self._all_tags[result.canonical] = result.all_tags
        return result.tags

    def all_tags(self, image_repository: ImageRepositoryConfig) -> list[str] | None:
        """The image's tags before the exclusion list (after `tags` was asked)."""
        return self._all_tags.get(image_repository.ref.canonical_name)

    async def tags_of_all(
        self, image_repositories: Sequence[ImageRepositoryConfig]
    ) -> list[list[str] | BaseException]:
        """Every image repository scanned concurrently; a failure is returned, not raised."""
        if self._progress is not None:
            self._progress.expect(len(image_repositories))
        return await asyncio.gather(
            *(self.tags(image_repository) for image_repository in image_repositories),
            return_exceptions=True,
        )

    def metadata_lookup(self, image_repository: ImageRepositoryConfig) -> MetadataLookup:
        return self._scanner.metadata_lookup(
            image_repository, github_repository=self._github_repository
        )

    def digest_lookup(
        self, image_repository: ImageRepositoryConfig, *, refresh: Iterable[str] = ()
    ) -> DigestLookup:
        return self._scanner.digest_lookup(
            image_repository, github_repository=self._github_repository, refresh=refresh
        )
