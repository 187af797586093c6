"""Small helpers for tests that talk to the simulator over raw HTTP (not the bot's client)
and receive its webhook deliveries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer

PERMISSIONS = {"contents": "write", "pull_requests": "write", "issues": "write",
               "checks": "write", "metadata": "read"}  # fmt: skip


def app_jwt(app_id: int, private_pem: str, *, now: float | None = None, iat_offset: float = -60,
            lifetime: float = 600, alg: str = "RS256") -> str:  # fmt: skip
    now = time.time() if now is None else now
    iat = int(now + iat_offset)
    return jwt.encode({"iat": iat, "exp": iat + int(lifetime), "iss": str(app_id)}, private_pem,
                      algorithm=alg)  # fmt: skip


@dataclass
class Reply:
    status: int
    headers: Any
    body: Any  # decoded JSON, or bytes for non-JSON


class Api:
    """A thin raw-HTTP client: returns status, headers and body, never raises on 4xx/5xx."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str | None = None):
        self.session, self.base, self.token = session, base, token

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                   headers: dict[str, str] | None = None, raw: bytes | None = None,
                   allow_redirects: bool = True) -> Reply:  # fmt: skip
        hdrs = {"Accept": "application/vnd.github+json"}
        auth = token if token is not None else self.token
        if auth:
            hdrs["Authorization"] = f"token {auth}" if auth.startswith("ghs_") else f"Bearer {auth}"
        hdrs.update(headers or {})
        kwargs: dict[str, Any] = {"headers": hdrs, "allow_redirects": allow_redirects}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, url, **kwargs) as resp:
            data = await resp.read()
            if resp.content_type == "application/json" and data:
                return Reply(resp.status, resp.headers, await resp.json())
            return Reply(resp.status, resp.headers, data)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("POST", path, body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("PATCH", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("PUT", path, body, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("DELETE", path, body, **kw)


@dataclass
class Received:
    """One webhook delivery as the receiver saw it."""

    event: str
    action: str | None
    headers: dict[str, str]
    body: bytes
    payload: dict
    signature_ok: bool


class Receiver:
    """A webhook receiver on 127.0.0.1 that checks `X-Hub-Signature-256` with `secret` and
    collects deliveries; answers `status` after `delay` seconds."""

    def __init__(self, secret: str | None = "s3cret") -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.status = 200
        self.delay = 0.0
        self._server: TestServer | None = None
        self.url = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        self.url = str(self._server.make_url("/hook"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = False
        if self.secret is not None:
            want = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(want, request.headers.get("X-Hub-Signature-256", ""))
        payload = json.loads(body)
        self.received.append(Received(request.headers["X-GitHub-Event"], payload.get("action"),
                                      dict(request.headers), body, payload, ok))  # fmt: skip
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status)

    def events(self) -> list[tuple[str, str | None]]:
        return [(r.event, r.action) for r in self.received]
