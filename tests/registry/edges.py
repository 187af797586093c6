"""Hostile network edges for the registry tests: tiny aiohttp servers on 127.0.0.1.

An `Edge` records every request it gets (method, path and query, headers, body)
and answers with whatever its ``respond`` function says. Tests use them as a
registry that names odd token realms, as the realm itself, as a redirect target,
or as a registry whose tag list never ends; they then assert on what each edge
received (no Authorization, no password bytes) and how many requests it got.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Respond = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: list[tuple[str, str]]
    body: bytes

    def raw(self) -> bytes:
        """The request as bytes, near enough to what came over the wire."""
        lines = [f"{self.method} {self.path_qs}", *(f"{k}: {v}" for k, v in self.headers)]
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + self.body


class Edge:
    """A server on 127.0.0.1 (https with ``ssl_context``) that records and answers."""

    def __init__(self, respond: Respond, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.requests: list[Seen] = []
        self._respond = respond
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context else "http"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "", *, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def start(self) -> Edge:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Seen(request.method, request.path_qs, list(request.headers.items()), body)
        )
        return await self._respond(request)

    def paths(self) -> list[str]:
        return [seen.path_qs for seen in self.requests]

    def authorizations(self) -> list[str]:
        return [
            v for seen in self.requests for k, v in seen.headers if k.lower() == "authorization"
        ]


def tags_json(name: str, tags: list[str]) -> web.Response:
    return web.json_response({"name": name, "tags": tags})


def challenge(realm: str, scope: str) -> web.Response:
    """A registry's 401 naming ``realm`` for a Bearer token."""
    return web.json_response(
        {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
        status=401,
        headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="edge",scope="{scope}"'},
    )


def secret_spellings(user: str, password: str) -> tuple[str, ...]:
    """Every spelling of a password that could leak: raw, and base64 in Basic (alone too)."""
    return (
        password,
        base64.b64encode(f"{user}:{password}".encode()).decode(),
        base64.b64encode(password.encode()).decode(),
    )
