"""Delivering one request to a registry: retries, safe redirects, bounded bodies.

Every failure becomes a `RegistryError` whose message names the image and what
to do, and never holds a secret. Authentication sits on top, in `authflow`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from bot import metrics
from bot.registry.addresses import ALLOWED_ADDRESSES_VARIABLE, AddressNotAllowed
from bot.registry.auth import basic_authorization
from bot.registry.credentials import Credential
from bot.registry.errors import RegistryError
from bot.retry_after import retry_after_seconds

log = logging.getLogger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5
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

    def error(self, problem: str) -> RegistryError:
        """An error about this image, with its credential's secret redacted."""
        return RegistryError(redact(f"{self.image}: {problem}", self.credential))


@dataclass(frozen=True)
class Request:
    """One request as the layers above ask for it; `kind` counts it in `request_counts`."""

    method: str
    url: URL
    kind: str
    max_bytes: int  # largest 200 body accepted
    headers: Mapping[str, str] = field(default_factory=dict)


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
    #: Tag-list pages per scan. Quay serves at most 100 tags a page whatever `n` says,
    #: so 1000 pages still reach `max_tags`; an endless chain of tiny pages ends here.
    max_pages: int = 1000
    max_page_bytes: int = 16 << 20
    max_manifest_bytes: int = 4 << 20
    retries: int = 3
    backoff: float = 0.5  # first 5xx retry delay; doubles, with jitter
    max_retry_after: float = 30.0  # longest 429 Retry-After honoured


class Transport:
    """Sends requests as they are (no auth of its own); counts them by kind."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: ClientSettings,
        request_counts: Counter[str],
    ) -> None:
        self._session = session
        self._settings = settings
        self.request_counts = request_counts

    async def send(self, target: Target, request: Request) -> Reply:
        """Send with retries: 429 honours Retry-After (bounded), 5xx backs off with jitter."""
        limits = self._settings
        for attempt in range(limits.retries + 1):
            reply = await self._send_following_redirects(target, request)
            last = attempt == limits.retries
            if reply.status == 429:
                delay = retry_after_seconds(reply.headers.get("Retry-After"))
                if delay is None:
                    delay = limits.backoff * 2**attempt
                if last or delay > limits.max_retry_after:
                    wait = f"; the registry asks to wait {delay:g}s" if delay else ""
                    raise target.error(
                        f"rate limited by the registry (HTTP 429){wait}; try again later"
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

    async def _send_following_redirects(self, target: Target, request: Request) -> Reply:
        origin = request.url.origin()
        for _ in range(_MAX_REDIRECTS + 1):
            reply = await self._send_once(target, request)
            location = reply.headers.get("Location")
            if reply.status not in _REDIRECTS or not location:
                return reply
            url = request.url.join(URL(location))
            if request.url.scheme == "https" and url.scheme != "https":
                raise target.error(f"the registry redirected to plain http ({url.host})")
            headers = request.headers
            if url.origin() != origin:
                # Credentials belong to one host: never forward them elsewhere.
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
            request = replace(request, url=url, headers=headers)
        raise target.error(f"too many redirects (more than {_MAX_REDIRECTS})")

    async def _send_once(self, target: Target, request: Request) -> Reply:
        self.request_counts[request.kind] += 1
        method, url = request.method, request.url
        ssl_arg: ssl.SSLContext | bool = target.ssl_context or True
        status: int | str = metrics.NO_ANSWER  # counted once, whatever happens next
        try:
            async with self._session.request(
                method, url, headers=dict(request.headers), allow_redirects=False, ssl=ssl_arg
            ) as resp:
                status = resp.status
                body: bytes | None = b""
                if method != "HEAD" and resp.status not in _REDIRECTS:
                    # Error bodies only feed messages: keep their start, whatever their size.
                    truncate = resp.status != 200
                    limit = _ERROR_BODY_BYTES if truncate else request.max_bytes
                    body = await _read_capped(resp, limit, truncate=truncate)
                    if body is None:
                        raise target.error(
                            f"the registry's answer to {url.path} is larger than "
                            f"{request.max_bytes} bytes; refusing to read it",
                        )
                next_url = resp.links.get("next", {}).get("url") if request.kind == "tags" else None
                return Reply(resp.status, resp.headers, body, resp.url, next_url)
        except AddressNotAllowed as exc:
            status = metrics.REFUSED
            raise _refused(target, request, exc) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise target.error(
                f"the TLS certificate of {url.host} is not trusted "
                f"({exc.certificate_error}); set caFile in the credentials for this registry",
            ) from None
        except aiohttp.ClientConnectorDNSError:
            raise target.error(
                f"cannot resolve host {url.host}; check the image's registry name"
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise target.error(f"TLS error talking to {url.host}: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            raise target.error(
                f"cannot connect to {url.host}:{url.port} ({exc.os_error}); is it up?"
            ) from None
        except aiohttp.ClientError as exc:
            raise target.error(f"request to {url.host} failed: {exc!r}") from None
        finally:
            metrics.observe_registry(url, status)


def _refused(target: Target, request: Request, exc: AddressNotAllowed) -> RegistryError:
    """The address policy refused the connection: say what and how the operator allows it.

    Nothing was sent, so nothing the address would have answered can be in it.
    """
    if request.kind == "token":
        what = "the token realm"
    elif request.url.origin() != target.base.origin():
        what = "the registry's redirect to"
    else:
        what = "the registry"
    log.warning(
        "%s: refused to connect to %s (%s, %s: %s)",
        target.image,
        exc.where,
        request.kind,
        exc.kind,
        exc.address,
    )
    return target.error(
        f"not contacting {what} {exc.where}: its address is not allowed: "
        f"{exc.describe('it')}; the bot contacts no loopback, private, link-local or other "
        f"internal address unless its operator allows it in {ALLOWED_ADDRESSES_VARIABLE}"
    )


def status_error(target: Target, reply: Reply, doing: str) -> RegistryError:
    """An unexpected status, with the registry's own error codes and a hint."""
    detail = _registry_errors(reply.body)
    if reply.status == 404:
        hint = "check the image name, and that the repository exists"
    elif reply.status == 403:
        hint = "the credentials are not allowed to pull it"
    else:
        # Whether an earlier scan's tags stand in is the caller's to say (a one-shot
        # `plan` has none): here only what the registry answered.
        hint = "the registry could not answer; try again later"
    detail = f": {detail}" if detail else ""
    return target.error(f"{doing} failed with HTTP {reply.status}{detail}; {hint}")


def redact(message: str, credential: Credential | None) -> str:
    """Remove a credential's secrets from a message, in case a server echoed one."""
    if credential is None:
        return message
    secrets = set()
    for username, password in credential.logins():
        secrets.add(password)
        secrets.add(basic_authorization(username, password).split(" ", 1)[1])
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
