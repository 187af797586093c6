"""Scanning image repositories: intervals, shared caches, the last good result.

A scan within an image repository's interval is answered from the cache without
a request; concurrent scans of one image share one request. A failed scan keeps
the last good tags in use (``stale=True``, ``error`` set), as Flux does.

Names: ``image_repository`` is an `ImageRepositoryConfig` (what a config file
declares), ``github_repository`` the GitHub ``owner/name`` asking (None for a
local plan), which only matters for the credentials' ``allowed`` list.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.config import ImageRepositoryConfig
from bot.imagemeta import ImageMetadata
from bot.imageref import default_scheme
from bot.policy import apply_exclusions
from bot.policy.model import DigestLookup, PolicyError
from bot.registry.auth import TokenCache
from bot.registry.cache import DigestCache, DigestEntry, ImageKey, TagCache, TagEntry
from bot.registry.client import ClientSettings, RegistryClient, Target, redact
from bot.registry.credentials import CredentialStore
from bot.registry.errors import RegistryError

log = logging.getLogger(__name__)

#: How long one scan or digest request may take, unless the image repository sets ``timeout``.
DEFAULT_SCAN_TIMEOUT = 30.0
#: After a failed scan, callers get the failure (or the last good tags) for this
#: long (at most the interval) instead of hammering a broken registry.
DEFAULT_FAILURE_BACKOFF = 60.0

__all__ = ["RegistryError", "RegistryScanner", "ScanResult"]


@dataclass(frozen=True)
class ScanResult:
    image: str  # as written in the config
    canonical: str
    tags: list[str]  # after exclusions, Flux order (descending byte-wise)
    scanned_at: float  # clock time of the scan the tags come from
    all_tags: list[str] = field(default_factory=list)  # before exclusions (not a copy)
    error: str | None = None  # why the latest scan failed, when stale
    stale: bool = False  # True: the tags are the last good ones, the latest scan failed


#: Images whose metadata is kept (a few values of at most 1 KiB each: `bot.imagemeta`).
MAX_METADATA_ENTRIES = 20_000

MetadataLookup = Callable[[str], Awaitable[ImageMetadata | None]]


class RegistryScanner:
    """Scans registries for many image and GitHub repositories, sharing what it may."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: CredentialStore,
        *,
        settings: ClientSettings | None = None,
        timeout: float = DEFAULT_SCAN_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        failure_backoff: float = DEFAULT_FAILURE_BACKOFF,
    ) -> None:
        self._credentials = credentials
        self._timeout = timeout
        self._clock = clock
        self._failure_backoff = failure_backoff
        settings = settings or ClientSettings()
        self._client = RegistryClient(session, settings=settings, tokens=TokenCache(), clock=clock)
        self._tags = TagCache()
        self._digests = DigestCache()
        #: What each image (by manifest digest: immutable) says about itself.
        self._metadata: OrderedDict[tuple[ImageKey, str], ImageMetadata] = OrderedDict()
        self._inflight: dict[Any, asyncio.Future[Any]] = {}
        self._ssl_contexts: dict[str, ssl.SSLContext] = {}

    @property
    def request_counts(self) -> Counter[str]:
        """HTTP requests made, by kind: tags, token, manifest_head, manifest_get."""
        return self._client.request_counts

    # -- tags ----------------------------------------------------------------

    async def scan(
        self,
        image_repository: ImageRepositoryConfig,
        *,
        github_repository: str | None = None,
        force: bool = False,
        pushed_at: float | None = None,
    ) -> ScanResult:
        """The image repository's tags, scanning only when its interval has passed (or ``force``).

        ``github_repository`` is the GitHub ``owner/name`` asking (for credential checks).
        ``pushed_at``: when a registry said the image was pushed (wall clock); a scan
        started before that is not good enough, whatever the interval.
        Raises `RegistryError` when the scan fails and no good result exists.
        """
        target = self._target(image_repository, github_repository)
        key = self._key(image_repository, target)
        interval = image_repository.interval
        now = self._clock()
        entry = self._tags.get(key)
        if entry is not None and pushed_at is not None:
            # Scan again once after a push: not again while that scan's failure backs off.
            failure = self._tags.failure(key)
            tried = max(entry.started_wall, failure.at_wall if failure is not None else 0.0)
            force = force or tried < pushed_at
        if not force:
            if entry is not None and now - entry.scanned_at < interval:
                return self._result(image_repository, key, entry)
            failure = self._tags.failure(key)
            if failure is not None and now - failure.at < min(interval, self._failure_backoff):
                return self._failed(image_repository, key, failure.message)
        try:
            entry = await self._single_flight(
                ("tags", key), lambda: self._scan_now(image_repository, target)
            )
        except RegistryError as exc:
            return self._failed(image_repository, key, str(exc))
        return self._result(image_repository, key, entry)

    async def _scan_now(self, image_repository: ImageRepositoryConfig, target: Target) -> TagEntry:
        key = self._key(image_repository, target)
        started, started_wall = self._clock(), time.time()
        try:
            async with asyncio.timeout(self._timeout_for(image_repository)):
                tags = await self._client.list_tags(target)
        except TimeoutError:
            seconds = self._timeout_for(image_repository)
            message = (
                f"{target.image}: the registry did not answer within {seconds:g}s "
                "(the scan's timeout); is it up?"
            )
            self._tags.fail(key, message, started, started_wall)
            raise RegistryError(message) from None
        except RegistryError as exc:
            self._tags.fail(key, str(exc), started, started_wall)
            raise
        except Exception as exc:  # never let one registry crash the bot
            log.exception("%s: unexpected error while scanning", target.image)
            message = redact(
                f"{target.image}: unexpected error while scanning: {exc!r}", target.credential
            )
            self._tags.fail(key, message, started, started_wall)
            raise RegistryError(message) from None
        self._digests.keep_only(key, set(tags))
        log.info("%s: scanned, %d tags", target.image, len(tags))
        return self._tags.store(key, tags, started, started_wall)

    def _result(
        self, image_repository: ImageRepositoryConfig, key: ImageKey, entry: TagEntry
    ) -> ScanResult:
        return ScanResult(
            image=image_repository.image,
            canonical=key[0],
            tags=self._filtered(image_repository, entry),
            scanned_at=entry.scanned_at,
            all_tags=entry.tags,
        )

    def _failed(
        self, image_repository: ImageRepositoryConfig, key: ImageKey, message: str
    ) -> ScanResult:
        entry = self._tags.get(key)
        if entry is None:
            raise RegistryError(message)
        return ScanResult(
            image=image_repository.image,
            canonical=key[0],
            tags=self._filtered(image_repository, entry),
            scanned_at=entry.scanned_at,
            error=message,
            stale=True,
        )

    def _filtered(self, image_repository: ImageRepositoryConfig, entry: TagEntry) -> list[str]:
        patterns = image_repository.exclusion_list
        tags = entry.filtered.get(patterns)
        if tags is None:
            try:
                tags = apply_exclusions(entry.tags, patterns)
            except PolicyError as exc:
                raise RegistryError(
                    f"{image_repository.image}: invalid exclusionList: {exc}; fix the regular expression"
                ) from None
            entry.filtered[patterns] = tags
        return list(tags)

    # -- digests -------------------------------------------------------------

    def digest_lookup(
        self,
        image_repository: ImageRepositoryConfig,
        *,
        github_repository: str | None = None,
        refresh: Iterable[str] = (),
    ) -> DigestLookup:
        """An async ``tag -> digest`` for the image repository's image.

        Digests are cached per (image, credential identity, tag). Tags in ``refresh``
        (a rolling or alias tag, whose digest moves) are fetched again once per scan:
        when the cached digest predates the image's latest scan.
        """
        refresh_tags = frozenset(refresh)
        try:
            target = self._target(image_repository, github_repository)
        except RegistryError as exc:
            error = exc

            async def failing(tag: str) -> str:
                raise error

            return failing

        key = self._key(image_repository, target)
        refreshed: set[str] = set()

        async def lookup(tag: str) -> str:
            entry = self._tags.get(key)
            generation = entry.generation if entry is not None else 0
            cached = self._digests.get(key, tag)
            if cached is not None:
                fresh = (
                    tag not in refresh_tags
                    or tag in refreshed
                    or (generation and cached.generation >= generation)
                )
                if fresh:
                    return cached.digest
            refreshed.add(tag)
            return await self._single_flight(
                ("digest", key, tag, generation),
                lambda: self._fetch_digest(image_repository, target, key, tag, generation),
            )

        return lookup

    async def _fetch_digest(
        self,
        image_repository: ImageRepositoryConfig,
        target: Target,
        key: ImageKey,
        tag: str,
        generation: int,
    ) -> str:
        try:
            async with asyncio.timeout(self._timeout_for(image_repository)):
                digest = await self._client.manifest_digest(target, tag)
        except TimeoutError:
            raise RegistryError(
                f"{target.image}: getting the digest of tag {tag!r} timed out after "
                f"{self._timeout_for(image_repository):g}s"
            ) from None
        except RegistryError:
            raise
        except Exception as exc:  # never let one registry crash the bot
            log.exception("%s: unexpected error while getting a digest", target.image)
            raise RegistryError(
                redact(
                    f"{target.image}: unexpected error getting the digest of {tag!r}: {exc!r}",
                    target.credential,
                )
            ) from None
        self._digests.put(key, tag, DigestEntry(digest, generation))
        return digest

    # -- what an image says about itself ---------------------------------------

    def metadata_lookup(
        self, image_repository: ImageRepositoryConfig, *, github_repository: str | None = None
    ) -> MetadataLookup:
        """An async ``tag -> ImageMetadata | None``: the tag's digest (the cached one), then
        its manifest and config once per digest. Best effort: a failure is None, logged."""
        digest_of = self.digest_lookup(image_repository, github_repository=github_repository)

        async def lookup(tag: str) -> ImageMetadata | None:
            try:
                target = self._target(image_repository, github_repository)
                key = self._key(image_repository, target)
                digest = await digest_of(tag)
                cached = self._metadata.get((key, digest))
                if cached is not None:
                    self._metadata.move_to_end((key, digest))
                    return cached
                async with asyncio.timeout(self._timeout_for(image_repository)):
                    metadata = await self._single_flight(
                        ("metadata", key, digest),
                        lambda: self._client.image_metadata(target, digest),
                    )
            except (RegistryError, TimeoutError) as exc:
                log.info("%s:%s: no image metadata: %s", image_repository.image, tag, exc)
                return None
            except Exception:  # a registry's odd answer must never fail a run
                log.exception("%s:%s: reading image metadata failed", image_repository.image, tag)
                return None
            self._metadata[(key, digest)] = metadata
            if len(self._metadata) > MAX_METADATA_ENTRIES:
                self._metadata.popitem(last=False)
            return metadata

        return lookup

    # -- shared helpers -------------------------------------------------------

    async def _single_flight(self, key: Any, start: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``start()`` once for concurrent callers with the same key."""
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(start())
            self._inflight[key] = future
            future.add_done_callback(lambda _f: self._inflight.pop(key, None))
        return await asyncio.shield(future)

    def _target(
        self, image_repository: ImageRepositoryConfig, github_repository: str | None
    ) -> Target:
        ref = image_repository.ref
        credential = None
        if image_repository.credentials:
            try:
                credential = self._credentials.resolve(
                    image_repository.credentials,
                    github_repository=github_repository,
                    registry=ref.domain,
                )
            except RegistryError as exc:
                raise type(exc)(f"{image_repository.image}: {exc}") from None
        insecure = image_repository.insecure
        if credential is not None and credential.ca_file and not insecure:
            scheme = "https"  # an extra CA is only meaningful over TLS
        else:
            scheme = default_scheme(ref.api_host, insecure=insecure)
        ssl_context = None
        if scheme == "https" and credential is not None and credential.ca_file:
            ssl_context = self._ssl_context(
                credential.ca_file, image_repository.image, credential.name
            )
        return Target(
            image=image_repository.image,
            host=ref.api_host,
            path=ref.path,
            scheme=scheme,
            credential=credential,
            ssl_context=ssl_context,
        )

    def _ssl_context(self, ca_file: str, image: str, name: str) -> ssl.SSLContext:
        context = self._ssl_contexts.get(ca_file)
        if context is None:
            context = ssl.create_default_context()
            try:
                context.load_verify_locations(cafile=ca_file)  # added to the system CAs
            except (OSError, ssl.SSLError) as exc:
                # The path is the operator's: their log gets it, the check run does not.
                log.error(
                    "%s: cannot load caFile %s of credentials %r: %s", image, ca_file, name, exc
                )
                raise RegistryError(
                    f"{image}: the CA file of credentials {name!r} cannot be loaded; ask the "
                    "operator of this bot to fix it"
                ) from None
            self._ssl_contexts[ca_file] = context
        return context

    @staticmethod
    def _key(image_repository: ImageRepositoryConfig, target: Target) -> ImageKey:
        # The scheme is part of the identity: an http and an https scan are not the same.
        identity = target.identity if target.scheme == "https" else f"http|{target.identity}"
        return (image_repository.ref.canonical_name, identity)

    def _timeout_for(self, image_repository: ImageRepositoryConfig) -> float:
        if image_repository.timeout is None:
            return self._timeout
        return image_repository.timeout
