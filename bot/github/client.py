"""The bot's GitHub REST client: gidgethub 6 plus what a long-running app needs.

gidgethub gives requests, decoding, pagination and an ETag cache; it has no
retries, no pacing, no token refresh, and its cache is keyed by URL alone.
This module adds, on top of its hooks:

* authentication per request (installation token or app JWT), so a token
  refreshed after a 401 is used by the retry;
* retries with bounded attempts: 5xx for requests that are safe to repeat,
  secondary rate limits (honouring ``retry-after``, seconds or an HTTP date,
  read by `bot.retry_after`), exhausted primary limits
  (until ``x-ratelimit-reset``), all with an injectable ``sleep``;
* writes one at a time, at least ``write_interval`` apart (GitHub's
  content-creation limits);
* a per-installation response cache that particular requests can bypass
  (immutable objects, and self-made conditional requests such as the
  ``application/vnd.github.sha`` head check, which gidgethub's cache would
  otherwise break);
* errors translated into `bot.github.errors` types.

The transport is ``_send``: tests subclass and override it to serve recorded
or synthetic answers without a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import logging
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import aiohttp
import gidgethub
import gidgethub.aiohttp
from gidgethub import sansio

from bot import metrics
from bot.github.auth import AppCredentials, TokenCache, app_jwt
from bot.github.errors import GitHubError, Unreachable, from_http, rate_limit_kind
from bot.github.ratelimit import RateBudget
from bot.redact import scrub
from bot.retry_after import retry_after_seconds

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
DEFAULT_REQUESTER = "image-automation-bot"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
#: POSTs that create content-addressed git objects: repeating one is harmless.
_REPEATABLE_POST_SUFFIXES = ("/git/blobs", "/git/trees", "/git/commits", "/access_tokens")
SECONDARY_LIMIT_FALLBACK = 60.0
#: Seconds between writes: GitHub's content-creation limits ask for about one a second.
DEFAULT_WRITE_INTERVAL = 1.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

Sleep = Callable[[float], Awaitable[None]]

# Set for the duration of one request that must not use the response cache.
_bypass_cache: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "github_bypass_cache", default=False
)


@dataclass
class _RequestState:
    """What one logical request (all its attempts) has done so far."""

    refreshed_auth: bool = False
    #: The route label for `bot.metrics`, when the caller's URL template gives it.
    route: str | None = None


_request_state: contextvars.ContextVar[_RequestState | None] = contextvars.ContextVar(
    "github_request_state", default=None
)


class AppClientOptions(TypedDict, total=False):
    """Keyword options of `AppClient`; their defaults are `_RetryingClient`'s."""

    requester: str
    max_attempts: int
    sleep: Sleep
    clock: Callable[[], float]


class ClientOptions(AppClientOptions, total=False):
    """Keyword options of `GitHubClient`: also write pacing, retry waits and the cache."""

    write_interval: float
    max_wait: float
    cache: MutableMapping[str, Any] | None


class NotModified(GitHubError):
    """304 to a conditional request the caller made itself."""


class ResponseCache(MutableMapping[str, Any]):
    """gidgethub's ETag cache for one installation: LRU-bounded, bypassable per request.

    Keep one per installation: entries are keyed by URL only, and ETags are
    per credential.
    """

    def __init__(self, maxsize: int = 2048) -> None:
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._maxsize = maxsize

    def __getitem__(self, key: str) -> Any:
        if _bypass_cache.get():
            raise KeyError(key)
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if _bypass_cache.get():
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._maxsize:
            self._data.popitem(last=False)

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@contextlib.contextmanager
def uncached() -> Iterator[None]:
    """Requests made inside skip the response cache (neither read nor filled)."""
    token = _bypass_cache.set(True)
    try:
        yield
    finally:
        _bypass_cache.reset(token)


def _path_of(url: str) -> str:
    """The path, for messages: a query may hold a token (codeload's ``?token=``)."""
    return urllib.parse.urlsplit(url).path


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def _is_repeatable(method: str, url: str) -> bool:
    if method in IDEMPOTENT_METHODS:
        return True
    path = urllib.parse.urlsplit(url).path.rstrip("/")
    return method == "POST" and path.endswith(_REPEATABLE_POST_SUFFIXES)


class _RetryingClient(gidgethub.aiohttp.GitHubAPI):
    """Retries, pacing, caching, counting and error translation; subclasses authenticate."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        requester: str = DEFAULT_REQUESTER,
        write_interval: float = DEFAULT_WRITE_INTERVAL,
        max_attempts: int = 4,
        max_wait: float = 900.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        cache: MutableMapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            session,
            requester,
            cache=ResponseCache() if cache is None else cache,
            base_url=base_url,
        )
        #: `base_url` with one trailing slash: paths are joined to it as gidgethub joins them.
        self._api_root = self.base_url.removesuffix("/") + "/"
        self.write_interval = write_interval
        self.max_attempts = max(1, max_attempts)
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._write_lock = asyncio.Lock()
        self._last_write = float("-inf")
        self.request_count = 0  # HTTP requests actually sent, retries included
        #: The credential's primary limit, spread over its window (`bot.github.ratelimit`).
        self.rate_budget = RateBudget(who=self._rate_limit_owner(), clock=clock)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _rate_limit_owner(self) -> str:
        return "the App"

    # -- authentication (subclasses) -------------------------------------------------

    async def _authorization(self) -> str:
        raise NotImplementedError

    def _forget_authorization(self) -> None:
        """Drop the credential after a 401 so the retry uses a new one."""

    # -- gidgethub hooks -------------------------------------------------------------

    async def sleep(self, seconds: float) -> None:
        await self._sleep(seconds)

    async def _make_request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        url_vars: Any,
        *args: Any,
        route: str | None = None,
        **kwargs: Any,
    ) -> tuple[Any, str | None, int]:
        # A path template names its route: no matching of the filled URL per request.
        if route is None and url_vars and url.startswith("/"):
            route = metrics.template_route(url)
        state = _request_state.set(_RequestState(route=route))
        try:
            data, more, status = await super()._make_request(method, url, url_vars, *args, **kwargs)
        except gidgethub.HTTPException as exc:
            if int(exc.status_code) == 304:
                # Expected on every conditional read: no message built for it.
                raise NotModified(f"{method} {url}: not modified", status=304) from None
            path = _path_of(sansio.format_url(url, url_vars, base_url=self.base_url))
            raise from_http(exc, method=method, path=path) from exc
        finally:
            _request_state.reset(state)
        if method == "GET" and not _bypass_cache.get() and isinstance(data, dict | list):
            # gidgethub hands out the cached object itself; keep the cache unpoisoned.
            data = copy.deepcopy(data)
        return data, more, status

    async def getstatus(self, url: str, url_vars: Any = {}, **kwargs: Any) -> int:  # noqa: B006
        try:
            return await super().getstatus(url, url_vars, **kwargs)
        except GitHubError as exc:
            if exc.status is None:
                raise
            return exc.status

    async def handle_rate_limit_error(
        self, *, method: str, url: str, exception: gidgethub.HTTPException, attempt: int
    ) -> bool:
        status = int(exception.status_code)
        if status == 304:
            return False  # not modified: the answer, not an error
        state = _request_state.get() or _RequestState()
        if status == 401:
            if state.refreshed_auth:
                return False
            state.refreshed_auth = True
            self._forget_authorization()
            log.info(
                "GitHub refused the credential for %s %s; retrying with a new one",
                method,
                _path_of(url),
            )
            return True
        if attempt >= self.max_attempts:
            return False
        delay = self._retry_delay(method, url, exception, attempt)
        if delay is None or delay > self.max_wait:
            return False
        log.warning(
            "GitHub answered %s to %s %s; retry %d/%d in %.1f s",
            status,
            method,
            _path_of(url),
            attempt,
            self.max_attempts - 1,
            delay,
        )
        await self.sleep(delay)
        return True

    def _retry_delay(
        self, method: str, url: str, exc: gidgethub.HTTPException, attempt: int
    ) -> float | None:
        retry_after = retry_after_seconds(exc.headers.get("retry-after"), now=self._clock())
        kind = rate_limit_kind(exc)
        if kind == "secondary":
            # The request was not processed, so any method may be repeated.
            if retry_after is not None:
                return retry_after
            return SECONDARY_LIMIT_FALLBACK * 2 ** (attempt - 1)
        if kind == "primary":
            reset = _epoch_seconds(exc.headers.get("x-ratelimit-reset"))
            if reset is None:
                return None
            return max(0.0, reset - self._clock()) + 1.0
        if int(exc.status_code) >= 500 and _is_repeatable(method, url):
            return retry_after if retry_after is not None else _backoff(attempt)
        return None

    async def _request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        allow_redirects: bool = True,
        authorize: bool = True,
    ) -> tuple[int, Mapping[str, str], bytes]:
        headers = dict(headers)
        if authorize and "authorization" not in headers:
            headers["authorization"] = await self._authorization()
        headers.setdefault("x-github-api-version", API_VERSION)
        if method not in WRITE_METHODS:
            return await self._send_counted(method, url, headers, body, allow_redirects)
        async with self._write_lock:  # one write at a time, spaced out
            wait = self._last_write + self.write_interval - time.monotonic()
            if wait > 0:
                await self.sleep(wait)
            try:
                return await self._send_counted(method, url, headers, body, allow_redirects)
            finally:
                self._last_write = time.monotonic()

    async def _send_counted(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        allow_redirects: bool,
    ) -> tuple[int, Mapping[str, str], bytes]:
        attempt = 0
        while True:
            attempt += 1
            # RateLimited: the scheduler postpones the run.
            pause = self.rate_budget.pause_before_request(
                write=method in WRITE_METHODS,
                # Header names are lower-case here (gidgethub's and our own).
                conditional="if-none-match" in headers,
            )
            if pause > 0:
                await self.sleep(pause)
            self.request_count += 1
            try:
                return await self._send_observed(method, url, headers, body, allow_redirects)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # No answer: safe to repeat only what cannot do anything twice.
                if attempt >= self.max_attempts or not _is_repeatable(method, url):
                    raise Unreachable(
                        f"no answer from GitHub for {method} {_path_of(url)}: "
                        f"{type(exc).__name__}: {scrub(str(exc))}"
                    ) from None
                await self.sleep(_backoff(attempt))

    async def _send_observed(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        allow_redirects: bool,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """`_send`, recorded in `bot.metrics`: route, status ("error" for no answer), rate limit."""
        who = self._metrics_installation()
        state = _request_state.get()
        route = state.route if state is not None else None
        try:
            reply = await self._send(method, url, headers, body, allow_redirects=allow_redirects)
        except Exception:
            metrics.observe_github(url, metrics.NO_ANSWER, who, base_url=self.base_url, route=route)
            raise
        remaining = reply[1].get("x-ratelimit-remaining")
        metrics.observe_github(url, reply[0], who, remaining, base_url=self.base_url, route=route)
        self.rate_budget.observe(reply[1])
        return reply

    def _metrics_installation(self) -> int | str:
        """Whose rate limit the answers report: the App's (JWT) unless an installation's."""
        return metrics.APP_INSTALLATION

    async def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        allow_redirects: bool = True,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """The transport: one HTTP exchange. Tests override this."""
        async with self._session.request(
            method, url, headers=headers, data=body, allow_redirects=allow_redirects
        ) as response:
            return response.status, response.headers, await response.read()

    # -- helpers ---------------------------------------------------------------------

    async def get_if_none_match(
        self,
        path: str,
        *,
        etag: str,
        accept: str = sansio.accept_format(),
        route: str | None = None,
    ) -> Any | None:
        """GET `path` (filled in, relative to the API) with our own ``If-None-Match``:
        the body, or None when GitHub answers 304.

        Every run makes this request (the head check), and most get 304; so it is
        sent straight through `_request`, without gidgethub's URL templating, response
        cache and error-per-304. Other answers go through the same decoding, retries
        (`handle_rate_limit_error`) and errors (`from_http`) as every request.
        `route` is the metrics label (`metrics.template_route` of the path's template).
        """
        url = self._api_root + path.removeprefix("/")
        headers = sansio.create_headers(self.requester, accept=accept)
        headers["if-none-match"] = etag
        state = _request_state.set(_RequestState(route=route))
        try:
            attempt = 0
            while True:
                attempt += 1
                status, response_headers, body = await self._request("GET", url, headers)
                if status == 304:
                    return None
                try:
                    return sansio.decipher_response(status, response_headers, body)[0]
                except gidgethub.HTTPException as exc:
                    retry = await self.handle_rate_limit_error(
                        method="GET", url=url, exception=exc, attempt=attempt
                    )
                    if not retry:
                        raise from_http(exc, method="GET", path=_path_of(url)) from exc
        finally:
            _request_state.reset(state)

    async def get_bytes(
        self,
        url: str,
        url_vars: Mapping[str, Any] | None = None,
        *,
        accept: str = "*/*",
        max_redirects: int = 5,
    ) -> bytes:
        """GET raw bytes (an archive), following redirects by hand.

        The credential is sent only to the API's own origin: a redirect to
        another host (codeload.github.com, a storage bucket) gets none.
        """
        current = sansio.format_url(url, url_vars or {}, base_url=self.base_url)
        headers = sansio.create_headers(self.requester, accept=accept)
        authorize = True
        for _ in range(max_redirects + 1):
            status, response_headers, body = await self._request(
                "GET", current, headers, b"", allow_redirects=False, authorize=authorize
            )
            if status in REDIRECT_STATUSES and "location" in response_headers:
                target = urllib.parse.urljoin(current, response_headers["location"])
                authorize = authorize and _same_origin(target, self.base_url)
                current = target
                continue
            if status == 200:
                return body
            try:
                sansio.decipher_response(status, response_headers, body)
            except gidgethub.HTTPException as exc:
                raise from_http(exc, method="GET", path=_path_of(current)) from None
            except (ValueError, UnicodeDecodeError):
                pass
            raise GitHubError(f"GitHub answered {status} to GET {_path_of(current)}", status=status)
        raise GitHubError(f"too many redirects for GET {_path_of(current)}")


def _backoff(attempt: int) -> float:
    """Seconds before retry ``attempt + 1`` of a request GitHub failed or did not answer."""
    return float(min(2 ** (attempt - 1), 30))


def _epoch_seconds(value: str | None) -> float | None:
    """A Unix time from a header such as ``x-ratelimit-reset``; None if unreadable."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class GitHubClient(_RetryingClient):
    """Client for one installation, authenticated with its (cached) installation token.

    Create one per installation and keep it: its response cache and write
    pacing are per installation.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        creds: AppCredentials,
        tokens: TokenCache,
        installation_id: int,
        **options: Unpack[ClientOptions],
    ) -> None:
        self.installation_id = installation_id
        super().__init__(session, base_url=creds.base_url, **options)
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"GitHubClient(installation_id={self.installation_id}, base_url={self.base_url!r})"

    async def _authorization(self) -> str:
        return f"token {await self._tokens.token(self.installation_id)}"

    def _forget_authorization(self) -> None:
        self._tokens.invalidate(self.installation_id)

    def _metrics_installation(self) -> int | str:
        return self.installation_id

    def _rate_limit_owner(self) -> str:
        return f"installation {self.installation_id}"


class AppClient(_RetryingClient):
    """Client authenticated as the app itself (JWT): installations and token minting."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        creds: AppCredentials,
        **options: Unpack[AppClientOptions],
    ) -> None:
        # Token minting is not content creation: no pacing needed.
        super().__init__(session, base_url=creds.base_url, write_interval=0.0, **options)
        self._creds = creds

    async def _authorization(self) -> str:
        # A fresh JWT per request is cheap (one RSA signature) and never stale.
        return f"bearer {app_jwt(self._creds, now=self._clock())}"

    async def mint_installation_token(self, installation_id: int) -> Mapping[str, Any]:
        """POST /app/installations/{id}/access_tokens → GitHub's JSON (token, expires_at...)."""
        return await self.post(
            "/app/installations/{installation_id}/access_tokens",
            {"installation_id": installation_id},
            data=b"",
        )

    def token_cache(self) -> TokenCache:
        """A `TokenCache` that mints through this client."""
        return TokenCache(self.mint_installation_token, clock=self._clock)


class TokenClient(_RetryingClient):
    """Client with one plain token: GitHub Actions' ``GITHUB_TOKEN``, an App's installation
    token made elsewhere, or a person's token (`python -m bot run`)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: str,
        base_url: str,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._token = token
        super().__init__(session, base_url=base_url, **options)

    def __repr__(self) -> str:
        return f"TokenClient(base_url={self.base_url!r})"  # never the token

    async def _authorization(self) -> str:
        return f"token {self._token}"

    def _rate_limit_owner(self) -> str:
        return "the token"

