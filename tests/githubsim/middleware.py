"""Cross-cutting behaviour of every API request: counters, faults, credentials, primary rate
limit, conditional GETs (ETag / 304) and GitHub-shaped error bodies."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from . import credentials
from .credentials import CALLER
from .protocol import ApiError, json_response

if TYPE_CHECKING:
    from .sim import GitHubSim

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exchange:
    """One API response as recorded when `sim.exchanges` is a list (schema tests use it)."""

    method: str
    route: str
    status: int
    content_type: str
    body: bytes
    path: str = ""  # the request's own path (the route is its template)


UNCOUNTED_RATE = {"/rate_limit", "/"}
API_VERSIONS = {"2022-11-28", "2026-03-10"}
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID SIM:0000."
)


def route_template(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "<unmatched>"
    return info.route.resource.canonical


def make_middleware(sim: GitHubSim):
    @web.middleware
    async def github_behaviour(request: web.Request, handler) -> web.StreamResponse:
        template = route_template(request)
        sim.base_url = str(request.url.origin())  # for URLs inside webhook payloads
        if template.startswith("/_sim"):
            return await _errors_as_json(handler, request)
        key = f"{request.method} {template}"
        sim.counters[key] += 1
        fault = sim.take_fault(request.method, template)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None and not fault.lose_answer:
                return _fault_response(fault)
        if template.startswith("/_codeload"):
            return await _errors_as_json(handler, request)
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            return ApiError(400, f"API version {version} is not supported.").response()
        try:
            caller = credentials.resolve(sim, request.headers.get("Authorization"))
        except ApiError as exc:
            return exc.response()
        request[CALLER] = caller
        counted = template not in UNCOUNTED_RATE
        bucket = sim.rate_bucket(caller.bucket)
        if counted and bucket.used >= bucket.limit:
            sim.counters["rate limited"] += 1
            response = _rate_limited(sim, caller)
        else:
            response = await _errors_as_json(handler, request)
            response = _conditional(request, response, caller.bucket)
            if response.status == 304:
                sim.counters[key + " 304"] += 1
            elif counted:
                bucket.used += 1
        _rate_headers(response, bucket)
        if sim.exchanges is not None and isinstance(response, web.Response):
            sim.exchanges.append(
                Exchange(
                    request.method,
                    template,
                    response.status,
                    response.content_type,
                    response.body or b"",
                    request.path,
                )  # fmt: skip
            )
        if fault is not None and fault.lose_answer and request.transport is not None:
            # Done, but the answer never arrives: the client sees the connection drop.
            request.transport.abort()
        return response

    return github_behaviour


async def _errors_as_json(handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status == 404:
            return ApiError(404, "Not Found").response()
        if exc.status == 405:
            return ApiError(404, "Not Found").response()
        raise
    except Exception:  # a simulator bug must show up as a 500 the test can see, not hang
        log.exception("simulator error on %s %s", request.method, request.path)
        return ApiError(500, "Simulator internal error (see log)").response()


def _fault_response(fault) -> web.Response:
    body = fault.body
    if body is None:
        if fault.status in (403, 429):
            body = {"message": SECONDARY_MESSAGE,
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}  # fmt: skip
        else:
            body = {"message": "Server Error"}
    return json_response(body, status=fault.status, headers=dict(fault.headers))


def _rate_limited(sim: GitHubSim, caller) -> web.Response:
    who = caller.bucket.replace(":", " ID ")
    return ApiError(
        sim.rate_limit_status,
        f"API rate limit exceeded for {who}. If you reach out to GitHub Support for help, "
        "please include the request ID SIM:0000.",
        doc="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        with_status=False,
    ).response()


def _rate_headers(response: web.StreamResponse, bucket) -> None:
    response.headers["x-ratelimit-limit"] = str(bucket.limit)
    response.headers["x-ratelimit-remaining"] = str(max(0, bucket.limit - bucket.used))
    response.headers["x-ratelimit-used"] = str(bucket.used)
    response.headers["x-ratelimit-reset"] = str(int(bucket.reset))
    response.headers["x-ratelimit-resource"] = "core"


def _conditional(request: web.Request, response: web.StreamResponse, who: str
                 ) -> web.StreamResponse:  # fmt: skip
    """Strong ETags per representation and credential; If-None-Match → 304 without body."""
    if request.method != "GET" or response.status != 200 or not isinstance(response, web.Response):
        return response
    etag = response.headers.get("ETag")
    if etag is None:
        digest = hashlib.sha256()
        digest.update(request.headers.get("Accept", "").encode() + b"\0" + who.encode() + b"\0")
        digest.update(response.body or b"")
        etag = f'"{digest.hexdigest()[:40]}"'
        response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
    response.headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
    wanted = request.headers.get("If-None-Match")
    if wanted and etag in {t.strip().removeprefix("W/") for t in wanted.split(",")}:
        not_modified = web.Response(status=304)
        for name in ("ETag", "Cache-Control", "Vary"):
            not_modified.headers[name] = response.headers[name]
        return not_modified
    return response
