"""A tag source read from a JSON snapshot (`plan --tags FILE`, design §6).

Format: ``{"<image as written>": ["tag", ...]}`` or
``{"<image>": {"tags": ["tag", ...], "digests": {"<tag>": "sha256:..."},
"created": {"<tag>": "2026-11-20T10:00:00Z"}}}`` (``created``: for ``minimumReleaseAge``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.config import ImageRepositoryConfig
from bot.imagemeta import ImageMetadata, parse_time
from bot.imageref import DIGEST_RE, ImageRefError, canonical_name
from bot.policy import PolicyError, apply_exclusions
from bot.policy.model import DigestLookup


class SnapshotError(Exception):
    """The snapshot file itself is unusable; the message names the file and the problem."""


@dataclass
class ImageSnapshot:
    tags: list[str]
    digests: dict[str, str] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)


class SnapshotTagSource:
    """Serves tags and digests from a snapshot instead of a registry."""

    def __init__(self, images: Mapping[str, ImageSnapshot]) -> None:
        self._images = dict(images)
        self._by_canonical: dict[str, ImageSnapshot] = {}
        for image, snap in self._images.items():
            # A bad name is reported when a repository actually asks for it.
            with contextlib.suppress(ImageRefError):
                self._by_canonical.setdefault(canonical_name(image), snap)

    @classmethod
    def parse(cls, text: str | bytes, *, path: str) -> SnapshotTagSource:
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", 1)
            col = getattr(exc, "colno", 1)
            raise SnapshotError(f"{path}:{line}:{col}: not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise SnapshotError(
                f"{path}: expected a JSON object mapping each image to its tags, "
                f'e.g. {{"ghcr.io/org/app": ["1.0.0", "1.1.0"]}}'
            )
        images = {}
        for image, entry in doc.items():
            images[image] = _parse_entry(path, image, entry)
        return cls(images)

    def _lookup(self, image_repository: ImageRepositoryConfig) -> ImageSnapshot:
        image = image_repository.image
        snap = self._images.get(image)
        if snap is None:
            try:
                snap = self._by_canonical.get(canonical_name(image))
            except ImageRefError:
                snap = None
        if snap is None:
            raise PolicyError(
                f"image {image!r} (imageRepository {image_repository.name!r}) is not in the "
                "tags file; add it or scan the registry instead"
            )
        return snap

    async def tags(self, image_repository: ImageRepositoryConfig) -> list[str]:
        return apply_exclusions(
            self._lookup(image_repository).tags, image_repository.exclusion_list
        )

    async def tags_of_all(
        self, image_repositories: Sequence[ImageRepositoryConfig]
    ) -> list[list[str] | BaseException]:
        """One after the other: nothing here waits, so a plan needs no event loop."""
        found: list[list[str] | BaseException] = []
        for image_repository in image_repositories:
            try:
                found.append(await self.tags(image_repository))
            except Exception as exc:
                found.append(exc)
        return found

    def all_tags(self, image_repository: ImageRepositoryConfig) -> list[str]:
        return list(self._lookup(image_repository).tags)

    def metadata_lookup(self, image_repository: ImageRepositoryConfig):  # noqa: ANN201
        """The created times the file gives (nothing else: a snapshot has no manifests)."""

        async def lookup(tag: str) -> ImageMetadata | None:  # never waits: no event loop needed
            created = self._lookup(image_repository).created.get(tag)
            return None if created is None else ImageMetadata(digest="", created=created)

        return lookup

    def digest_lookup(
        self, image_repository: ImageRepositoryConfig, *, refresh: Iterable[str] = ()
    ) -> DigestLookup:
        def lookup(tag: str) -> str:
            digest = self._lookup(image_repository).digests.get(tag)
            if not digest:
                raise PolicyError(
                    f"no digest for {image_repository.image}:{tag} in the tags file; "
                    f'add it under "digests" for that image'
                )
            return digest

        return lookup


def _parse_entry(path: str, image: str, entry: object) -> ImageSnapshot:
    where = f"{path}: image {image!r}"
    if isinstance(entry, list):
        return ImageSnapshot(tags=_tag_list(where, entry))
    if not isinstance(entry, dict):
        raise SnapshotError(
            f'{where}: expected a list of tags or {{"tags": [...], "digests": {{...}}}}'
        )
    unknown = set(entry) - {"tags", "digests", "created"}
    if unknown:
        raise SnapshotError(
            f"{where}: unknown keys {sorted(unknown)}; allowed: tags, digests, created"
        )
    created = {}
    for tag, when in (entry.get("created") or {}).items():
        seconds = parse_time(when)
        if seconds is None:
            raise SnapshotError(
                f"{where}: created time of tag {tag!r} must be RFC 3339, like "
                f"'2026-11-20T10:00:00Z', got {when!r}"
            )
        created[tag] = seconds
    tags = _tag_list(where, entry.get("tags", []))
    digests = entry.get("digests", {})
    if not isinstance(digests, dict):
        raise SnapshotError(f'{where}: "digests" must map tags to digests')
    for tag, digest in digests.items():
        if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
            raise SnapshotError(
                f"{where}: digest of tag {tag!r} must look like 'sha256:<64 hex>', got {digest!r}"
            )
    return ImageSnapshot(tags=tags, digests=dict(digests), created=created)


def _tag_list(where: str, tags: object) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SnapshotError(f"{where}: tags must be a list of strings")
    return list(tags)
