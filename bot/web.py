"""The HTTP face of the app: the webhook endpoint, liveness and readiness.

A delivery takes what GitHub sends and nothing else:

* a body of at most `MAX_BODY_BYTES` (GitHub's cap), else 413;
* signed with ``X-Hub-Signature-256: sha256=<hex>`` (HMAC-SHA256 of the raw body,
  constant-time compare; no other algorithm), else 401;
* JSON whose fields each handler reads through `bot.handlers.payloads`, else 400
  naming the field (deep nesting included), and nothing of it is stored.

It is then de-duplicated by ``X-GitHub-Delivery``, dispatched to the handlers
(which only record facts and queue reconciles) and acknowledged at once. Every
refusal is a short plain-text answer saying what is wrong; never a traceback.

``/healthz`` is liveness (the process answers); ``/readyz`` is readiness: 503
with the reason while the database cannot be written (see `Readiness`) or
GitHub does not answer the App's JWT (`GitHubReadiness`). A
delivery that fails meanwhile is answered 503 with the same reason (GitHub
may redeliver it), and is not remembered as handled.

``/metrics`` is the Prometheus text exposition of `bot.metrics`. Like
``/healthz`` it is unauthenticated: operators restrict it at the network level
(a scrape-only port, a network policy). Its labels carry route templates,
registry ``host[:port]`` and installation ids, never a URL's query, userinfo or
a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from gidgethub import sansio
from gidgethub.routing import Router

from bot import metrics, registryevents
from bot.github.errors import GitHubError
from bot.handlers import Services
from bot.handlers import router as default_router
from bot.handlers.packages import record_pushes
from bot.handlers.payloads import MalformedPayload, action
from bot.logs import log_context
from bot.store import Store, StoreError

log = logging.getLogger(__name__)

WEBHOOK_PATHS = ("/", "/api/github/webhooks")
SERVICES = web.AppKey("services", Services)

#: GitHub caps webhook payloads at 25 MB and never sends a larger one.
MAX_BODY_BYTES = 25 * 1024 * 1024
#: Where registries send push notifications (design §8), and the most one may send.
REGISTRY_EVENTS_PATH = "/registry/events"
MAX_REGISTRY_EVENT_BYTES = 1 << 20
SIGNATURE_PREFIX = "sha256="
#: GitHub's event names (``installation_repositories``) and delivery ids (a GUID), with room.
EVENT_NAME = re.compile(r"[a-z0-9_]{1,64}")
DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,100}")
#: /readyz probes the database at most this often (seconds); calls in between
#: get the last answer, so a flood of probes is not a flood of disk writes.
READY_PROBE_INTERVAL = 1.0
#: /readyz asks GitHub (``GET /app`` with the App's JWT) at most this often (seconds).
GITHUB_PROBE_INTERVAL = 30.0


class Readiness:
    """Can the database be written? Known by writing (`Store.check_writable`).

    A write probe rather than the outcome of the last write: a quiet bot has no
    last write to go by, and a bot that is taken out of rotation because it is
    not ready receives no deliveries, so it would never find out it recovered.
    The probe is one small committed write; it is repeated at most every
    `interval` seconds.
    """

    def __init__(
        self,
        store: Store,
        *,
        interval: float = READY_PROBE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._interval = interval
        self._clock = clock
        self._probed_at: float | None = None
        self._problem: str | None = None

    def problem(self) -> str | None:
        """None when ready; otherwise why not, in a few words."""
        now = self._clock()
        if self._probed_at is None or now - self._probed_at >= self._interval:
            try:
                self._store.check_writable()
                self._problem = None
            except StoreError as exc:
                self._problem = str(exc)
                log.warning("not ready: %s", exc)
            self._probed_at = now
        return self._problem


class GitHubReadiness:
    """Does GitHub answer the App's JWT? Known by asking (``GET /app``), at most every
    `interval` seconds: a bad key, a wrong APP_ID or GitHub out of reach all mean no
    work can be done, though the process is alive."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        interval: float = GITHUB_PROBE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._interval = interval
        self._clock = clock
        self._probed_at: float | None = None
        self._problem: str | None = None
        self._lock = asyncio.Lock()  # one probe at a time, however many /readyz arrive

    async def problem(self) -> str | None:
        async with self._lock:
            now = self._clock()
            if self._probed_at is not None and now - self._probed_at < self._interval:
                return self._problem
            try:
                await self._probe()
                self._problem = None
            except GitHubError as exc:
                self._problem = f"GitHub does not answer the App's JWT: {exc}"
                log.warning("not ready: %s", self._problem)
            self._probed_at = self._clock()
            return self._problem


def make_app(
    services: Services,
    *,
    secret: str,
    router: Router = default_router,
    ready_probe_interval: float = READY_PROBE_INTERVAL,
    github_probe: Callable[[], Awaitable[object]] | None = None,
    registry_tokens: Mapping[str, str] | None = None,
) -> web.Application:
    """The aiohttp application; refuses to exist without a webhook secret.

    ``registry_tokens``: each registry kind's token for ``POST /registry/events``
    (`bot.registryevents`); a kind without one is refused there.
    """
    if not secret:
        raise ValueError(
            "WEBHOOK_SECRET is not set: set it to the app's webhook secret "
            "(unsigned deliveries are never accepted)"
        )
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SERVICES] = services
    readiness = Readiness(services.store, interval=ready_probe_interval)
    github = GitHubReadiness(github_probe) if github_probe is not None else None

    async def webhook(request: web.Request) -> web.Response:
        return await _handle_delivery(request, services, secret, router)

    async def readyz(request: web.Request) -> web.Response:
        problem = readiness.problem()
        if problem is None and github is not None:
            problem = await github.problem()
        if problem is not None:
            return web.json_response({"status": "unavailable", "reason": problem}, status=503)
        return web.json_response({"status": "ok"})

    async def registry_events(request: web.Request) -> web.Response:
        return await _handle_registry_event(request, services, registry_tokens or {})

    for path in WEBHOOK_PATHS:
        app.router.add_post(path, webhook)
    app.router.add_post(REGISTRY_EVENTS_PATH, registry_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers (whether it can do its work is /readyz)."""
    return web.json_response({"status": "ok"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus scrape: every metric of `bot.metrics`, unauthenticated (see above)."""
    body, content_type = metrics.render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def _refuse(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=reason + "\n")


def signature_problem(body: bytes, signature: str | None, secret: str) -> str | None:
    """Why ``X-Hub-Signature-256`` does not prove `secret` signed `body`; None when it does."""
    if not signature:
        return "missing X-Hub-Signature-256: deliveries must be signed"
    if not signature.startswith(SIGNATURE_PREFIX):
        return "X-Hub-Signature-256 must be 'sha256=<hex digest>'; no other algorithm is accepted"
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = signature[len(SIGNATURE_PREFIX) :].encode("utf-8", "replace")
    if not hmac.compare_digest(given, expected.encode()):
        return "bad X-Hub-Signature-256: check the app's webhook secret"
    return None


async def _handle_registry_event(
    request: web.Request, services: Services, tokens: Mapping[str, str]
) -> web.Response:
    """A registry's push notification: authenticated by its kind's token, before the body
    is read; answered with how many repositories it made due (never which)."""
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer ") :] if header.startswith("Bearer ") else request.query.get("token")
    kind = registryevents.kind_for(token, tokens)
    if kind is None:
        return _refuse(401, "unknown or missing token: send the operator's token for this registry")
    if (request.content_length or 0) > MAX_REGISTRY_EVENT_BYTES:
        return _refuse(413, f"body larger than {MAX_REGISTRY_EVENT_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_REGISTRY_EVENT_BYTES:
            return _refuse(413, f"body larger than {MAX_REGISTRY_EVENT_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        images = registryevents.images_of(kind, json.loads(body))
    except RecursionError:
        return _refuse(400, "body is JSON nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:  # EventError is a ValueError
        why = str(exc) if isinstance(exc, registryevents.EventError) else "body is not JSON"
        return _refuse(400, f"not a {kind.name} notification: {why}")
    due = record_pushes(services, images) if images else 0
    return web.json_response({"images": len(images), "repositories": due}, status=202)


def _too_large() -> web.Response:
    return _refuse(413, f"body larger than {MAX_BODY_BYTES} bytes (GitHub's 25 MB cap)")


async def _handle_delivery(
    request: web.Request, services: Services, secret: str, router: Router
) -> web.Response:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _too_large()
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _too_large()
    problem = signature_problem(body, request.headers.get("x-hub-signature-256"), secret)
    if problem is not None:
        return _refuse(401, problem)

    # The signature covers the body only: these headers are checked for shape, as they
    # are stored (a replayed body must not bring a megabyte-long delivery id along).
    event_name = request.headers.get("x-github-event")
    delivery = request.headers.get("x-github-delivery")
    if not event_name or not delivery:
        return _refuse(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    if not EVENT_NAME.fullmatch(event_name):
        return _refuse(400, "X-GitHub-Event is not an event name (a-z, 0-9, _)")
    if not DELIVERY_ID.fullmatch(delivery):
        return _refuse(400, "X-GitHub-Delivery is not a delivery id (GitHub sends a GUID)")
    try:
        payload = json.loads(body)
    except RecursionError:
        return _refuse(400, "body is JSON nested too deeply")
    except (ValueError, UnicodeDecodeError):
        return _refuse(400, "body is not JSON (configure the webhook's content type as JSON)")
    if not isinstance(payload, dict):
        return _refuse(400, "body is not a JSON object")
    try:
        event_action = action(payload)
    except MalformedPayload as exc:
        return _refuse(400, f"malformed {event_name!r} payload: {exc}")

    if event_name == "ping":
        zen = payload.get("zen")
        return web.json_response({"msg": "pong", "zen": zen if isinstance(zen, str) else ""})
    with log_context(delivery=delivery):  # on every line about this delivery
        return await _dispatch(services, router, payload, delivery, event_name, event_action)


async def _dispatch(
    services: Services,
    router: Router,
    payload: dict,
    delivery: str,
    event_name: str,
    event_action: str | None,
) -> web.Response:
    """Handle a checked delivery once: de-duplicated, dispatched, remembered."""
    store = services.store
    try:
        if store.delivery_seen(delivery):
            return web.Response(status=200, text="already handled\n")
        event = sansio.Event(payload, event=event_name, delivery_id=delivery)
        await router.dispatch(event, services)
        store.record_delivery(delivery, event_name)
    except MalformedPayload as exc:
        log.warning("delivery %s (%s): malformed payload: %s", delivery, event_name, exc)
        return _refuse(400, f"malformed {event_name!r} payload: {exc}")
    except Exception:
        # Not recorded as handled, so a redelivery tries again. Was it the database?
        try:
            store.check_writable()
        except StoreError as exc:
            log.warning("delivery %s (%s) not stored: %s", delivery, event_name, exc)
            return _refuse(503, f"{exc}; the delivery can be redelivered")
        log.exception("delivery %s (%s) failed", delivery, event_name)
        return _refuse(500, "internal error; the delivery can be redelivered")
    log.info("delivery %s: %s %s", delivery, event_name, event_action or "")
    return web.Response(status=202, text="accepted\n")
