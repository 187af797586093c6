"""`/_sim/` admin routes for webhooks: an App's URL and secret, the delivery record,
waiting for the queue to drain, redelivery, and dropping chosen deliveries."""

from __future__ import annotations

import contextlib

from aiohttp import web

from .admin import _body, _value_errors
from .protocol import ApiError, json_response
from .sim import sim_of


@_value_errors
async def set_webhook(request: web.Request) -> web.Response:
    sim = sim_of(request)
    body = await _body(request)
    app_id = int(request.match_info["app_id"])
    if app_id not in sim.apps:
        raise ApiError(404, f"no app {app_id}")
    sim.set_webhook(app_id, body.get("url"), body.get("secret"))
    return json_response({"app_id": app_id, "url": body.get("url"),
                          "hook_id": sim.apps[app_id].hook_id})  # fmt: skip


@_value_errors
async def list_deliveries(request: web.Request) -> web.Response:
    query = request.query
    out = [
        d.summary()
        for d in sim_of(request).deliveries
        if query.get("event") in (None, d.event)
        and query.get("action") in (None, d.action)
        and query.get("app_id") in (None, str(d.app_id))
        and query.get("state") in (None, d.state)
    ]  # fmt: skip
    return json_response(out)


async def clear_deliveries(request: web.Request) -> web.Response:
    sim_of(request).deliveries.clear()
    return web.Response(status=204)


@_value_errors
async def wait_deliveries(request: web.Request) -> web.Response:
    """Wait (up to `timeout`, default 30 s) until every queued delivery was attempted."""
    sim = sim_of(request)
    body = await _body(request)
    with contextlib.suppress(TimeoutError):
        await sim.wait_deliveries(float(body.get("timeout", 30.0)))
    return json_response({"pending": sim.hooks.pending()})


@_value_errors
async def redeliver(request: web.Request) -> web.Response:
    delivery = sim_of(request).redeliver(request.match_info["delivery_id"])
    return json_response(delivery.summary(), status=201)


@_value_errors
async def drop(request: web.Request) -> web.Response:
    body = await _body(request)
    sim_of(request).drop_deliveries(event=body.get("event"), action=body.get("action"),
                                    times=body.get("times", 1), app_id=body.get("app_id"))  # fmt: skip
    return json_response({"drops": len(sim_of(request).hooks.drops)}, status=201)


async def clear_drops(request: web.Request) -> web.Response:
    sim_of(request).clear_drops()
    return web.Response(status=204)


ROUTES = [
    ("POST", "/_sim/apps/{app_id}/webhook", set_webhook),
    ("GET", "/_sim/deliveries", list_deliveries),
    ("DELETE", "/_sim/deliveries", clear_deliveries),
    ("POST", "/_sim/deliveries/wait", wait_deliveries),
    ("POST", "/_sim/deliveries/{delivery_id}/redeliver", redeliver),
    ("POST", "/_sim/deliveries/drop", drop),
    ("DELETE", "/_sim/deliveries/drop", clear_drops),
]
