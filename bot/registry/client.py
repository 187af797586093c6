"""OCI distribution client over aiohttp: tag pages, manifest digests, auth, faults.

One `RegistryClient` serves every image; a `Target` says where an image lives
and which credential goes with it. Every failure becomes a `RegistryError`
whose message names the image and what to do, and never holds a secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from bot.imageref import DIGEST_RE, TAG_RE, is_loopback
from bot.registry.auth import (
    AuthKey,
    Challenge,
    Token,
    TokenCache,
    basic_authorization,
    parse_challenges,
    parse_token_response,
    repository_scope,
)
from bot.registry.credentials import Credential
from bot.registry.errors import RegistryError
from bot.retry_after import retry_after_seconds

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

#: distribution/reference's tag and digest grammars; their one home is `bot.imageref`.

_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5
_MAX_TOKEN_BYTES = 1 << 20
_ERROR_BODY_BYTES = 64 << 10


@dataclass(frozen=True)
class Target:
    """An image repository to talk to: where, as what, and how to trust it."""

    image: str  # as written in the config, for messages
    host: str  # API host[:port]
    path: str  # image repository path, e.g. library/nginx
    scheme: str  # https or http
    credential: Credential | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)

    @property
    def base(self) -> URL:
        return URL(f"{self.scheme}://{self.host}")

    @property
    def identity(self) -> str:
        return self.credential.identity if self.credential else ""


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL
    next_link: URL | None = None


@dataclass
class ClientSettings:
    """Limits and retry policy; small values make fault tests fast."""

    page_size: int = 1000
    max_tags: int = 100_000
    max_page_bytes: int = 16 << 20
    max_manifest_bytes: int = 4 << 20
    retries: int = 3
    backoff: float = 0.5  # first 5xx retry delay; doubles, with jitter
    max_retry_after: float = 30.0  # longest 429 Retry-After honoured


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
        self._session = session
        self.settings = settings or ClientSettings()
        self._tokens = tokens if tokens is not None else TokenCache()
        self._clock = clock
        self.request_counts: Counter[str] = (
            request_counts if request_counts is not None else Counter()
        )

    # -- public operations -------------------------------------------------

    async def list_tags(self, target: Target) -> list[str]:
        """Every valid tag of the image repository, following ``Link`` pages (unsorted, unique).

        Valid: distribution/reference's tag grammar (`TAG_RE`); anything else is junk.
        """
        limits = self.settings
        url: URL | None = target.base.with_path(f"/v2/{target.path}/tags/list").with_query(
            n=str(limits.page_size)
        )
        tags: dict[str, None] = {}
        visited: set[URL] = set()
        previous_page: list[str] | None = None
        dropped = 0
        while url is not None:
            if url in visited:
                log.info("%s: tag page %s repeated; stopping pagination", target.image, url)
                break
            visited.add(url)
            reply = await self._request(
                target,
                "GET",
                url,
                kind="tags",
                headers={"Accept": "application/json"},
                max_bytes=limits.max_page_bytes,
            )
            if reply.status != 200:
                raise self._status_error(target, reply, "listing tags")
            page = self._tag_page(target, reply)
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
                raise self._error(
                    target,
                    f"the repository has more than {limits.max_tags} tags; exclude it or ask "
                    "the operator to raise the tag limit",
                )
            url = self._next_page(target, reply)
        if dropped:
            log.info("%s: ignored %d invalid tag names", target.image, dropped)
        return list(tags)

    async def manifest_digest(self, target: Target, tag: str) -> str:
        """The digest of ``tag``: HEAD first, GET and hash the body if HEAD doesn't say."""
        if not TAG_RE.fullmatch(tag):
            raise self._error(target, f"{tag!r} is not a valid tag name")
        url = target.base.with_path(f"/v2/{target.path}/manifests/{tag}")
        headers = {"Accept": MANIFEST_ACCEPT}
        reply = await self._request(
            target, "HEAD", url, kind="manifest_head", headers=headers, max_bytes=0
        )
        if reply.status == 404:
            raise self._error(target, f"tag {tag!r} not found (HTTP 404); check the tag exists")
        header = reply.headers.get("Docker-Content-Digest", "")
        if reply.status == 200 and DIGEST_RE.fullmatch(header):
            return header
        log.info(
            "%s:%s: HEAD gave HTTP %d without a digest; falling back to GET",
            target.image,
            tag,
            reply.status,
        )
        reply = await self._request(
            target,
            "GET",
            url,
            kind="manifest_get",
            headers=headers,
            max_bytes=self.settings.max_manifest_bytes,
        )
        if reply.status != 200:
            raise self._status_error(target, reply, f"fetching the manifest of tag {tag!r}")
        computed = "sha256:" + hashlib.sha256(reply.body).hexdigest()
        header = reply.headers.get("Docker-Content-Digest", "")
        if header.startswith("sha256:") and header.lower() != computed:
            raise self._error(
                target,
                f"the manifest of tag {tag!r} does not match its Docker-Content-Digest "
                f"({header} != {computed}); the registry or a proxy corrupted it",
            )
        return computed

    # -- request machinery -------------------------------------------------

    async def _request(
        self,
        target: Target,
        method: str,
        url: URL,
        *,
        kind: str,
        headers: dict[str, str],
        max_bytes: int,
    ) -> Reply:
        """One authenticated request: cached auth, then one re-auth on 401."""
        scope = repository_scope(target.path)
        key: AuthKey = (target.host, scope, target.identity)
        authorization = self._tokens.get(key, self._clock())
        for attempt in range(2):
            sent = dict(headers)
            if authorization:
                sent["Authorization"] = authorization
            reply = await self._send(target, method, url, sent, kind=kind, max_bytes=max_bytes)
            if reply.status != 401:
                return reply
            challenges = parse_challenges(reply.headers.getall("WWW-Authenticate", []))
            self._tokens.invalidate(key)
            if attempt == 1:
                raise self._denied(target, challenges)
            token = await self._authenticate(target, challenges, scope)
            self._tokens.put(key, token)
            authorization = token.authorization
        raise AssertionError("unreachable")

    async def _authenticate(self, target: Target, challenges: list[Challenge], scope: str) -> Token:
        credential = target.credential
        by_scheme = {c.scheme: c for c in reversed(challenges)}
        bearer, basic = by_scheme.get("bearer"), by_scheme.get("basic")
        if bearer is not None and bearer.params.get("realm"):
            return await self._fetch_token(target, bearer, scope)
        if basic is not None:
            if credential is None or not credential.has_secret:
                raise self._error(
                    target,
                    "the registry requires a login (HTTP 401, Basic); set `credentials:` on "
                    "the image repository",
                )
            authorization = basic_authorization(credential.username, credential.password)
            return Token(authorization, float("inf"))
        schemes = ", ".join(sorted(by_scheme)) or "none"
        raise self._error(
            target,
            f"the registry answered 401 with no usable challenge (schemes: {schemes}); "
            "it is not a supported OCI registry",
        )

    async def _fetch_token(self, target: Target, challenge: Challenge, scope: str) -> Token:
        realm = URL(challenge.params["realm"])
        if not realm.is_absolute() or realm.scheme not in ("http", "https"):
            raise self._error(target, f"the registry sent an invalid token realm {realm}")
        query = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        headers = {"Accept": "application/json"}
        credential = target.credential
        if credential is not None and credential.has_secret:
            # Never send a password in clear text unless the registry itself is plain http
            # (the operator's explicit choice) or the realm is on this machine.
            if realm.scheme != "https" and target.scheme != "http" and not is_loopback(realm.host):
                raise self._error(
                    target,
                    f"refusing to send credentials to the plain-http token realm {realm.host}",
                )
            headers["Authorization"] = basic_authorization(credential.username, credential.password)
        reply = await self._send(
            target,
            "GET",
            realm.with_query(query),
            headers,
            kind="token",
            max_bytes=_MAX_TOKEN_BYTES,
        )
        if reply.status in (401, 403):
            if credential is not None and credential.has_secret:
                what = (
                    f"rejected credentials {credential.name!r} (HTTP {reply.status}); check "
                    "their username and password"
                )
            else:
                what = (
                    f"refused an anonymous token (HTTP {reply.status}); the image may be "
                    "private: set `credentials:` on the image repository"
                )
            raise self._error(target, f"the token server {realm.host} {what}")
        if reply.status != 200:
            raise self._status_error(target, reply, f"getting a token from {realm.host}")
        try:
            return parse_token_response(reply.body, self._clock())
        except ValueError as exc:
            raise self._error(target, f"{exc} ({realm.host})") from None

    async def _send(
        self,
        target: Target,
        method: str,
        url: URL,
        headers: dict[str, str],
        *,
        kind: str,
        max_bytes: int,
    ) -> Reply:
        """Send with retries: 429 honours Retry-After (bounded), 5xx backs off with jitter."""
        limits = self.settings
        for attempt in range(limits.retries + 1):
            reply = await self._send_following_redirects(
                target, method, url, headers, kind=kind, max_bytes=max_bytes
            )
            last = attempt == limits.retries
            if reply.status == 429:
                delay = retry_after_seconds(reply.headers.get("Retry-After"))
                if delay is None:
                    delay = limits.backoff * 2**attempt
                if last or delay > limits.max_retry_after:
                    wait = f"; the registry asks to wait {delay:g}s" if delay else ""
                    raise self._error(
                        target,
                        f"rate limited by the registry (HTTP 429){wait}; the last good "
                        "result stays in use, try again later",
                    )
                log.info("%s: HTTP 429, retrying in %.2fs", target.image, delay)
                await asyncio.sleep(delay)
                continue
            if reply.status >= 500 and not last:
                delay = limits.backoff * 2**attempt * (0.5 + random.random())
                log.info("%s: HTTP %d, retrying in %.2fs", target.image, reply.status, delay)
                await asyncio.sleep(delay)
                continue
            return reply
        raise AssertionError("unreachable")

    async def _send_following_redirects(
        self,
        target: Target,
        method: str,
        url: URL,
        headers: dict[str, str],
        *,
        kind: str,
        max_bytes: int,
    ) -> Reply:
        headers = dict(headers)
        origin = url.origin()
        for _ in range(_MAX_REDIRECTS + 1):
            reply = await self._send_once(target, method, url, headers, kind, max_bytes)
            location = reply.headers.get("Location")
            if reply.status not in _REDIRECTS or not location:
                return reply
            new_url = url.join(URL(location))
            if url.scheme == "https" and new_url.scheme != "https":
                raise self._error(target, f"the registry redirected to plain http ({new_url.host})")
            if new_url.origin() != origin:
                # Credentials belong to one host: never forward them elsewhere.
                headers.pop("Authorization", None)
            url = new_url
        raise self._error(target, f"too many redirects (more than {_MAX_REDIRECTS})")

    async def _send_once(
        self,
        target: Target,
        method: str,
        url: URL,
        headers: dict[str, str],
        kind: str,
        max_bytes: int,
    ) -> Reply:
        self.request_counts[kind] += 1
        ssl_arg: ssl.SSLContext | bool = target.ssl_context or True
        try:
            async with self._session.request(
                method, url, headers=headers, allow_redirects=False, ssl=ssl_arg
            ) as resp:
                body: bytes | None = b""
                if method != "HEAD" and resp.status not in _REDIRECTS:
                    # Error bodies only feed messages: keep their start, whatever their size.
                    truncate = resp.status != 200
                    limit = _ERROR_BODY_BYTES if truncate else max_bytes
                    body = await _read_capped(resp, limit, truncate=truncate)
                    if body is None:
                        raise self._error(
                            target,
                            f"the registry's answer to {url.path} is larger than "
                            f"{max_bytes} bytes; refusing to read it",
                        )
                next_url = resp.links.get("next", {}).get("url") if kind == "tags" else None
                return Reply(resp.status, resp.headers, body, resp.url, next_url)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise self._error(
                target,
                f"the TLS certificate of {url.host} is not trusted "
                f"({exc.certificate_error}); set caFile in the credentials for this registry",
            ) from None
        except aiohttp.ClientConnectorDNSError:
            raise self._error(
                target, f"cannot resolve host {url.host}; check the image's registry name"
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise self._error(target, f"TLS error talking to {url.host}: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            raise self._error(
                target, f"cannot connect to {url.host}:{url.port} ({exc.os_error}); is it up?"
            ) from None
        except aiohttp.ClientError as exc:
            raise self._error(target, f"request to {url.host} failed: {exc!r}") from None

    # -- helpers -------------------------------------------------------------

    def _tag_page(self, target: Target, reply: Reply) -> list:
        try:
            doc = json.loads(reply.body)
        except (ValueError, UnicodeDecodeError):
            raise self._error(
                target, "the registry returned malformed JSON for the tag list"
            ) from None
        if not isinstance(doc, dict):
            raise self._error(target, "the registry's tag list is not a JSON object")
        page = doc.get("tags")
        if page is None:
            return []  # d2.8 answers null when every manifest was deleted
        if not isinstance(page, list):
            raise self._error(target, "the registry's tag list has `tags` that is not a list")
        return page

    def _next_page(self, target: Target, reply: Reply) -> URL | None:
        if reply.next_link is None:
            return None
        next_url = reply.next_link
        if next_url.origin() != target.base.origin():
            raise self._error(
                target,
                f"refusing to follow the tag list's next page to another host ({next_url.host})",
            )
        return next_url

    def _status_error(self, target: Target, reply: Reply, doing: str) -> RegistryError:
        detail = _registry_errors(reply.body)
        if reply.status == 404:
            hint = "check the image name, and that the repository exists"
        elif reply.status == 403:
            hint = "the credentials are not allowed to pull it"
        else:
            hint = "the last good result stays in use"
        detail = f": {detail}" if detail else ""
        return self._error(target, f"{doing} failed with HTTP {reply.status}{detail}; {hint}")

    def _denied(self, target: Target, challenges: list[Challenge]) -> RegistryError:
        reasons = sorted({c.params["error"] for c in challenges if c.params.get("error")})
        reason = f", {', '.join(reasons)}" if reasons else ""
        credential = target.credential
        if credential is not None and credential.has_secret:
            hint = f"check that credentials {credential.name!r} may pull this image"
        else:
            hint = "the image may be private: set `credentials:` on the image repository"
        return self._error(target, f"access denied (HTTP 401{reason}); {hint}")

    def _error(self, target: Target, problem: str) -> RegistryError:
        return RegistryError(redact(f"{target.image}: {problem}", target.credential))


def redact(message: str, credential: Credential | None) -> str:
    """Remove a credential's secret from a message, in case a server echoed it."""
    if credential is None or not credential.password:
        return message
    secrets = {
        credential.password,
        basic_authorization(credential.username, credential.password).split(" ", 1)[1],
    }
    for secret in secrets:
        message = message.replace(secret, "***")
    return message


async def _read_capped(
    resp: aiohttp.ClientResponse, max_bytes: int, *, truncate: bool = False
) -> bytes | None:
    """The body; past ``max_bytes`` its start if ``truncate``, else None."""
    if not truncate and resp.content_length is not None and resp.content_length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 << 10):
        size += len(chunk)
        chunks.append(chunk)
        if size > max_bytes:
            if truncate:
                return b"".join(chunks)[:max_bytes]
            return None
    return b"".join(chunks)


def _registry_errors(body: bytes) -> str:
    """The registry's error codes and messages (``{"errors": [...]}``), short."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for error in errors[:3]:
        if isinstance(error, dict):
            code, message = error.get("code", ""), error.get("message", "")
            parts.append(" ".join(str(p) for p in (code, message) if p)[:200])
    return "; ".join(parts)
