"""The OCI distribution API the bot uses: tag lists and manifest digests.

One `RegistryClient` serves every image; a `Target` says where an image lives
and which credential goes with it. Requests go through `authflow` (login on
401) and `transport` (retries, redirects, bounded bodies); every failure is a
`RegistryError` whose message names the image and what to do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable

import aiohttp
from yarl import URL

from bot import imagemeta
from bot.imagemeta import ImageMetadata
from bot.imageref import DIGEST_RE, TAG_RE
from bot.registry.auth import TokenCache
from bot.registry.authflow import AuthFlow
from bot.registry.errors import RegistryError
from bot.registry.transport import (
    ClientSettings,
    Reply,
    Request,
    Target,
    Transport,
    redact,
    status_error,
)

__all__ = ["MANIFEST_ACCEPT", "ClientSettings", "RegistryClient", "Target", "redact"]

log = logging.getLogger(__name__)

#: Every manifest type, so the registry answers with the index/list digest of a
#: multi-arch tag instead of swapping in one platform's manifest (registry.md §4).
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


class RegistryClient:
    """Talks to registries; counts its requests by kind in `request_counts`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        settings: ClientSettings | None = None,
        tokens: TokenCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        request_counts: Counter[str] | None = None,
    ) -> None:
        self.settings = settings or ClientSettings()
        self.request_counts: Counter[str] = (
            request_counts if request_counts is not None else Counter()
        )
        transport = Transport(session, self.settings, self.request_counts)
        self._auth = AuthFlow(transport, tokens if tokens is not None else TokenCache(), clock)

    async def list_tags(self, target: Target) -> list[str]:
        """Every valid tag of the image repository, following ``Link`` pages (unsorted, unique).

        Valid: distribution/reference's tag grammar (`TAG_RE`); anything else is junk.
        Bounded: at most ``max_pages`` requests and ``max_tags`` tags, or an error (never a
        silently partial list, which could pick the wrong latest tag); a next page seen
        before (a cycle of any length, or the same ``last`` again) ends the listing.
        """
        limits = self.settings
        url: URL | None = target.base.with_path(f"/v2/{target.path}/tags/list").with_query(
            n=str(limits.page_size)
        )
        tags: dict[str, None] = {}
        seen: set[tuple] = set()
        previous_page: list[str] | None = None
        dropped = 0
        pages = 0
        while url is not None:
            key = _page_key(url)
            if key in seen:
                log.info("%s: tag page %s repeated; stopping pagination", target.image, url)
                break
            if pages >= limits.max_pages:
                raise target.error(
                    f"the tag list goes on for more than {limits.max_pages} pages; the scan "
                    "stops rather than use a partial list; exclude the image or ask the "
                    "operator to raise the page limit",
                )
            seen.add(key)
            pages += 1
            reply = await self._auth.request(
                target,
                Request(
                    "GET",
                    url,
                    kind="tags",
                    max_bytes=limits.max_page_bytes,
                    headers={"Accept": "application/json"},
                ),
            )
            if reply.status != 200:
                raise status_error(target, reply, "listing tags")
            page = _tag_page(target, reply, room=limits.max_tags - len(tags), limit=limits.max_tags)
            if page and page == previous_page:
                log.info("%s: tag page repeated; stopping pagination", target.image)
                break
            previous_page = page
            for tag in page:
                if isinstance(tag, str) and TAG_RE.fullmatch(tag):
                    tags[tag] = None
                else:
                    dropped += 1
            if len(tags) > limits.max_tags:
                raise _too_many_tags(target, limits.max_tags)
            url = _next_page(target, reply)
        if dropped:
            log.info("%s: ignored %d invalid tag names", target.image, dropped)
        return list(tags)

    async def manifest_digest(self, target: Target, tag: str) -> str:
        """The digest of ``tag``: HEAD first, GET and hash the body if HEAD doesn't say."""
        if not TAG_RE.fullmatch(tag):
            raise target.error(f"{tag!r} is not a valid tag name")
        url = target.base.with_path(f"/v2/{target.path}/manifests/{tag}")
        headers = {"Accept": MANIFEST_ACCEPT}
        reply = await self._auth.request(
            target, Request("HEAD", url, kind="manifest_head", max_bytes=0, headers=headers)
        )
        if reply.status == 404:
            raise target.error(f"tag {tag!r} not found (HTTP 404); check the tag exists")
        header = reply.headers.get("Docker-Content-Digest", "")
        if reply.status == 200 and DIGEST_RE.fullmatch(header):
            return header
        log.info(
            "%s:%s: HEAD gave HTTP %d without a digest; falling back to GET",
            target.image,
            tag,
            reply.status,
        )
        reply = await self._auth.request(
            target,
            Request(
                "GET",
                url,
                kind="manifest_get",
                max_bytes=self.settings.max_manifest_bytes,
                headers=headers,
            ),
        )
        if reply.status != 200:
            raise status_error(target, reply, f"fetching the manifest of tag {tag!r}")
        computed = "sha256:" + hashlib.sha256(reply.body).hexdigest()
        header = reply.headers.get("Docker-Content-Digest", "")
        if header.startswith("sha256:") and header.lower() != computed:
            raise target.error(
                f"the manifest of tag {tag!r} does not match its Docker-Content-Digest "
                f"({header} != {computed}); the registry or a proxy corrupted it",
            )
        return computed

    async def image_metadata(self, target: Target, reference: str) -> ImageMetadata:
        """What the image at ``reference`` (a tag or digest) says about itself: the
        manifest's annotations (a multi-arch index: linux/amd64's), and the config's
        labels and ``created`` when the annotations leave them out (issue 12)."""
        manifest, digest = await self._manifest(target, reference)
        index = None
        if imagemeta.is_index(manifest):
            child = imagemeta.platform_child(manifest)
            if child is None:
                raise target.error(f"the index of {reference!r} lists no manifest")
            index, (manifest, _child_digest) = manifest, await self._manifest(target, child)
        metadata = imagemeta.from_manifest(digest, manifest, index)
        config = imagemeta.config_digest(manifest)
        if metadata.needs_config and config is not None:
            metadata = imagemeta.with_config(metadata, await self._blob_json(target, config))
        return metadata

    async def _manifest(self, target: Target, reference: str) -> tuple[dict, str]:
        """The manifest at a tag or digest, parsed, and its digest (checked if asked by one)."""
        if not (TAG_RE.fullmatch(reference) or DIGEST_RE.fullmatch(reference)):
            raise target.error(f"{reference!r} is not a valid tag or digest")
        url = target.base.with_path(f"/v2/{target.path}/manifests/{reference}")
        request = Request("GET", url, kind="manifest_get",
                          max_bytes=self.settings.max_manifest_bytes,
                          headers={"Accept": MANIFEST_ACCEPT})  # fmt: skip
        reply = await self._auth.request(target, request)
        if reply.status != 200:
            raise status_error(target, reply, f"fetching the manifest of {reference!r}")
        digest = "sha256:" + hashlib.sha256(reply.body).hexdigest()
        if DIGEST_RE.fullmatch(reference) and reference != digest:
            raise target.error(f"the manifest {reference} does not match its digest ({digest})")
        return _json_object(target, reply.body, f"the manifest of {reference!r}"), digest

    async def _blob_json(self, target: Target, digest: str) -> dict:
        url = target.base.with_path(f"/v2/{target.path}/blobs/{digest}")
        request = Request("GET", url, kind="blob_get", max_bytes=MAX_CONFIG_BLOB_BYTES)
        reply = await self._auth.request(target, request)
        if reply.status != 200:
            raise status_error(target, reply, f"fetching the image config {digest}")
        if "sha256:" + hashlib.sha256(reply.body).hexdigest() != digest:
            raise target.error(f"the image config does not match its digest {digest}")
        return _json_object(target, reply.body, f"the image config {digest}")


#: An image config is a few KiB; labels make it larger, never this large.
MAX_CONFIG_BLOB_BYTES = 1 << 20


def _json_object(target: Target, body: bytes, what: str) -> dict:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise target.error(f"{what} is not JSON") from None
    if not isinstance(parsed, dict):
        raise target.error(f"{what} is not a JSON object")
    return parsed


#: JSON values and containers a tag page may hold beyond its tags (``name`` and the like).
_PAGE_SLACK = 16
#: Larger pages must be plain ASCII without ``\u`` escapes (tags and names are ASCII
#: by their grammar), so no string can take 2 or 4 bytes a character once parsed.
_ASCII_ONLY_ABOVE = 1 << 20


def _tag_page(target: Target, reply: Reply, *, room: int, limit: int) -> list:
    """The ``tags`` of one page, parsed within a memory bound; ``room``: tags still allowed.

    Before parsing, the body's commas and brackets bound how many JSON values it can
    hold: more than ``room`` (+ slack) values cannot be a page that fits, so it is
    refused without building them. The raw body is released once decoded.
    """
    body = reply.body
    reply.body = b""  # the only other reference: let the bytes go once decoded
    if body.count(b",") > room + _PAGE_SLACK:
        raise _too_many_tags(target, limit)
    if body.count(b"[") + body.count(b"{") > _PAGE_SLACK:
        raise target.error("the registry's tag list is not a plain list of tags")
    if len(body) > _ASCII_ONLY_ABOVE and (not body.isascii() or b"\\u" in body):
        raise target.error("the registry's tag list is large and not plain ASCII JSON")
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        del body
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise target.error("the registry returned malformed JSON for the tag list") from None
    del text
    if not isinstance(doc, dict):
        raise target.error("the registry's tag list is not a JSON object")
    page = doc.get("tags")
    if page is None:
        return []  # d2.8 answers null when every manifest was deleted
    if not isinstance(page, list):
        raise target.error("the registry's tag list has `tags` that is not a list")
    return page


def _too_many_tags(target: Target, limit: int) -> RegistryError:
    return target.error(
        f"the repository has more than {limit} tags; exclude it or ask the operator to "
        "raise the tag limit",
    )


def _page_key(url: URL) -> tuple:
    """What makes a next-page URL a new page: its path and ``last`` (else its sorted query).

    Parameter order, ``n``, extra parameters and fragments do not make a page new,
    so a registry cannot loop by decorating the same ``last``.
    """
    last = url.query.getall("last", [])
    if last:
        return (url.path, "last", tuple(last))
    return (url.path, "query", tuple(sorted(url.query.items())))


def _next_page(target: Target, reply: Reply) -> URL | None:
    if reply.next_link is None:
        return None
    next_url = reply.next_link
    if next_url.origin() != target.base.origin():
        raise target.error(
            f"refusing to follow the tag list's next page to another host ({next_url.host})",
        )
    return next_url
