"""Fakes of the network edge, shared by the tests and the benchmarks.

Only what the bot reaches over the network is faked here. A test that just
needs tags from a file has the real thing: `bot.snapshot.SnapshotTagSource`
(`plan --tags`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from bot.config import ImageRepositoryConfig
from bot.policy import apply_exclusions
from bot.policy.model import DigestLookup
from bot.registry.errors import RegistryError


class FakeRegistry:
    """Container registries, faked as a `bot.planner.TagSource`: tags and digests from dicts.

    ``images`` maps an image, as the config writes it, to its tags; ``digests``
    maps an image to ``{tag: digest}``. Both are the registry's content: a test
    changes them (or calls `push`) between runs. An image that is not in
    ``images`` fails like an unreachable registry, a tag without a digest like
    a missing manifest, both with `RegistryError` as the real source raises.

    Every question is recorded: ``scans`` (tag listings per image),
    ``digests_asked`` ((image, tag) in order), ``refreshed`` ((image, tags to
    refresh) per `digest_lookup`) and ``asked_by`` (the GitHub repositories
    that `source` was called for, as ``Deps.tag_source`` is).
    """

    def __init__(
        self,
        images: Mapping[str, Iterable[str]] | None = None,
        digests: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.images: dict[str, list[str]] = {
            image: list(tags) for image, tags in (images or {}).items()
        }
        self.digests: dict[str, dict[str, str]] = {
            image: dict(by_tag) for image, by_tag in (digests or {}).items()
        }
        self.scans: Counter[str] = Counter()
        self.digests_asked: list[tuple[str, str]] = []
        self.refreshed: list[tuple[str, tuple[str, ...]]] = []
        self.asked_by: list[str] = []
        self.pushed_seen: list[dict[str, float]] = []
        #: image -> {tag: created (Unix time)}, or {tag: ImageMetadata}: what
        #: `metadata_lookup` answers (the metadata first).
        self.created: dict[str, dict[str, float]] = {}
        self.metadata: dict[str, dict[str, Any]] = {}

    def push(self, image: str, tag: str, *, digest: str | None = None) -> None:
        """A new tag appears in the registry (``digest``: the manifest it points at)."""
        tags = self.images.setdefault(image, [])
        if tag not in tags:
            tags.append(tag)
        if digest is not None:
            self.digests.setdefault(image, {})[tag] = digest

    def source(self, github_repository: str, *, pushed=None) -> FakeRegistry:
        """The tag source as one GitHub repository sees it: ``Deps(tag_source=registry.source)``;
        ``pushed`` (registry push events) is recorded in `pushed_seen`."""
        self.asked_by.append(github_repository)
        self.pushed_seen.append(dict(pushed or {}))
        return self

    async def tags(self, image_repository: ImageRepositoryConfig) -> list[str]:
        """The image's tags after its exclusion list, in Flux order, as the real source gives them."""
        self.scans[image_repository.image] += 1
        if image_repository.image not in self.images:
            raise RegistryError(f"registry unreachable for {image_repository.image}")
        return apply_exclusions(
            self.images[image_repository.image], image_repository.exclusion_list
        )

    async def tags_of_all(self, image_repositories):
        """Concurrently, as the registry source scans them."""
        return await asyncio.gather(
            *(self.tags(image_repository) for image_repository in image_repositories),
            return_exceptions=True,
        )

    def all_tags(self, image_repository: ImageRepositoryConfig) -> list[str] | None:
        """The image's tags before the exclusion list, as the real source remembers them."""
        return list(self.images.get(image_repository.image, [])) or None

    def metadata_lookup(self, image_repository: ImageRepositoryConfig):
        """What an image says about itself: `metadata`, else its `created` time."""
        from bot.imagemeta import ImageMetadata

        async def lookup(tag: str) -> ImageMetadata | None:
            described = self.metadata.get(image_repository.image, {}).get(tag)
            if described is not None:
                return described
            created = self.created.get(image_repository.image, {}).get(tag)
            return None if created is None else ImageMetadata(digest="", created=created)

        return lookup

    def digest_lookup(
        self, image_repository: ImageRepositoryConfig, *, refresh: Iterable[str] = ()
    ) -> DigestLookup:
        self.refreshed.append((image_repository.image, tuple(refresh)))

        async def lookup(tag: str) -> str:
            self.digests_asked.append((image_repository.image, tag))
            if image_repository.image not in self.images:
                raise RegistryError(f"registry unreachable for {image_repository.image}")
            digest = self.digests.get(image_repository.image, {}).get(tag)
            if digest is None:
                raise RegistryError(f"{image_repository.image}: no manifest for tag {tag!r}")
            return digest

        return lookup
