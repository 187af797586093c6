"""The HTTP face of the app: the webhook endpoint and a health check.

A delivery is verified (HMAC-SHA256 of the raw body, constant-time compare),
de-duplicated by ``X-GitHub-Delivery``, dispatched to the handlers (which only
record facts and queue reconciles) and acknowledged at once. Every refusal is
a short plain-text answer saying what is wrong; never a traceback.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web
from gidgethub import ValidationFailure, sansio
from gidgethub.routing import Router

from bot.handlers import Services
from bot.handlers import router as default_router

log = logging.getLogger(__name__)

WEBHOOK_PATHS = ("/", "/api/github/webhooks")
SERVICES = web.AppKey("services", Services)


def make_app(
    services: Services, *, secret: str, router: Router = default_router
) -> web.Application:
    """The aiohttp application; refuses to exist without a webhook secret."""
    if not secret:
        raise ValueError(
            "WEBHOOK_SECRET is not set: set it to the app's webhook secret "
            "(unsigned deliveries are never accepted)"
        )
    app = web.Application()
    app[SERVICES] = services

    async def webhook(request: web.Request) -> web.Response:
        return await _handle_delivery(request, services, secret, router)

    for path in WEBHOOK_PATHS:
        app.router.add_post(path, webhook)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _refuse(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=reason + "\n")


async def _handle_delivery(
    request: web.Request, services: Services, secret: str, router: Router
) -> web.Response:
    body = await request.read()
    signature = request.headers.get("x-hub-signature-256")
    if not signature:
        return _refuse(401, "missing X-Hub-Signature-256: deliveries must be signed")
    try:
        sansio.validate_event(body, signature=signature, secret=secret)
    except ValidationFailure:
        return _refuse(401, "bad X-Hub-Signature-256: check the app's webhook secret")

    event_name = request.headers.get("x-github-event")
    delivery = request.headers.get("x-github-delivery")
    if not event_name or not delivery:
        return _refuse(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _refuse(400, "body is not JSON (configure the webhook's content type as JSON)")
    if not isinstance(payload, dict):
        return _refuse(400, "body is not a JSON object")

    if event_name == "ping":
        return web.json_response({"msg": "pong", "zen": payload.get("zen", "")})
    store = services.store
    if store.delivery_seen(delivery):
        return web.Response(status=200, text="already handled\n")

    event = sansio.Event(payload, event=event_name, delivery_id=delivery)
    try:
        await router.dispatch(event, services)
    except (KeyError, TypeError, AttributeError) as exc:
        log.warning("delivery %s (%s): malformed payload: %r", delivery, event_name, exc)
        return _refuse(400, f"payload of {event_name!r} lacks an expected field ({exc})")
    except Exception:
        # Not recorded as handled, so a redelivery tries again.
        log.exception("delivery %s (%s) failed", delivery, event_name)
        return _refuse(500, "internal error; the delivery can be redelivered")
    store.record_delivery(delivery, event_name)
    log.info("delivery %s: %s %s", delivery, event_name, payload.get("action", ""))
    return web.Response(status=202, text="accepted\n")
