"""Fetching what the PR body's release notes need (issue 12 §1): each changed image's
metadata (the tag source, once per digest) and its source repository's GitHub releases.

The releases are read with the installation's token, and only from a repository
GitHub says is public: the token also reads the installation's private
repositories, whose notes an image's label must not be able to pull into a PR.
They are cached per installation, source repository and pair of versions (an empty
list only briefly: the release often follows the image), and their requests are
counted in `ReleaseNotes.requests`, apart from the reconcile's. Best effort: a
failure leaves the notes out, never the PR.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.github.client import GitHubClient
from bot.github.errors import GitHubError
from bot.policy.semver import parse_tag
from bot.update.releasenotes import (
    MAX_RELEASES,
    ImageChange,
    ImageNotes,
    Release,
    github_source,
)

log = logging.getLogger(__name__)

#: Release lists kept (by source repository and the two versions).
CACHE_SIZE = 2_000


#: How long "no releases" is believed: the GitHub release often comes after the image.
EMPTY_TTL = 600.0


class ReleaseNotes:
    """Shared by every run: the cache, and how many requests the notes cost."""

    def __init__(self, size: int = CACHE_SIZE, clock: Callable[[], float] = time.monotonic):
        self._cache: OrderedDict[tuple[Any, ...], tuple[list[Release], float]] = OrderedDict()
        self._size = size
        self._clock = clock
        self.requests = 0

    async def notes(
        self,
        changes: Sequence[ImageChange],
        metadata_of: Mapping[str, Any],
        github: GitHubClient,
        *,
        owner: int,
    ) -> list[ImageNotes]:
        """``metadata_of``: policy -> its image's async ``tag -> ImageMetadata | None``;
        ``owner``: the installation whose token ``github`` holds (a cache never crosses)."""
        found = []
        for change in changes:
            lookup = metadata_of.get(change.policy)
            notes = ImageNotes(change)
            if lookup is not None:
                notes.new = await lookup(change.new.tag)
                if change.old_tag and not change.digest_only:
                    notes.old = await lookup(change.old_tag)
            source = github_source(notes.new)
            if source is not None and change.old_tag and not change.digest_only:
                notes.releases = await self._releases(github, owner, *source, change.old_tag,
                                                      change.new.tag)  # fmt: skip
            found.append(notes)
        return found

    async def _releases(
        self, github: GitHubClient, owner: int, account: str, name: str, old: str, new: str
    ) -> list[Release]:
        key = (owner, account.lower(), name.lower(), old, new)
        cached = self._cache.get(key)
        if cached is not None and (cached[0] or self._clock() - cached[1] < EMPTY_TTL):
            self._cache.move_to_end(key)
            return cached[0]
        where = {"owner": account, "repo": name}
        try:
            self.requests += 1
            repository = await github.getitem("/repos/{owner}/{repo}", where)
            releases: list[Release] = []
            if isinstance(repository, dict) and repository.get("private") is False:
                self.requests += 1
                listed = await github.getitem(
                    "/repos/{owner}/{repo}/releases{?per_page}", {**where, "per_page": 100}
                )
                releases = between(_releases(listed), old, new)
        except GitHubError as exc:
            log.info("release notes of %s/%s: %s", account, name, exc)
            return []
        self._cache[key] = (releases, self._clock())
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return releases


def _releases(listed: object) -> list[Release]:
    if not isinstance(listed, list):
        return []
    out = []
    for item in listed:
        if not isinstance(item, dict) or item.get("draft"):
            continue
        tag = item.get("tag_name")
        if not isinstance(tag, str):
            continue
        out.append(
            Release(
                tag_name=tag,
                name=item.get("name") if isinstance(item.get("name"), str) else tag,
                body=item.get("body") if isinstance(item.get("body"), str) else "",
                html_url=item.get("html_url") if isinstance(item.get("html_url"), str) else "",
                prerelease=bool(item.get("prerelease")),
            )
        )
    return out


def between(releases: list[Release], old: str, new: str) -> list[Release]:
    """The releases after ``old`` up to ``new``, newest first: by version when the tags
    are versions (a leading ``v`` either side), else by list position."""
    old_version, new_version = parse_tag(old), parse_tag(new)
    if old_version is not None and new_version is not None:
        picked = []
        for release in releases:
            version = parse_tag(release.tag_name)
            if version is not None and (
                version.compare(old_version) > 0 and version.compare(new_version) <= 0
            ):
                picked.append(release)
        return picked[:MAX_RELEASES]
    names = [r.tag_name.removeprefix("v") for r in releases]
    if new.removeprefix("v") not in names:
        return []
    start = names.index(new.removeprefix("v"))
    end = names.index(old.removeprefix("v")) if old.removeprefix("v") in names else start + 1
    return releases[start:end][:MAX_RELEASES] if end > start else []

