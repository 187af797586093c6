"""Hostile network edges for the address-policy tests (issue 8 §2), and the namespace they live in.

`Listener` records every TCP connection it accepts and answers any HTTP request
with a tag list holding `LEAK_TAG`: were the bot to reach it, that answer would
become an observed tag. `Edge` is a small registry front that redirects or
names a token realm. The SSRF tests run inside a network namespace that only
has loopback (`namespace_command`); the addresses below are put on its ``lo``
and the names into its own ``/etc/hosts``, so nothing can leave the machine.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

#: What a hostile listener answers: were it ever read, these would show up as tags.
LEAK_TAG = "1.0.0-leaked-by-listener"
LEAK_VERSION = "9.9.9"
ANSWER = json.dumps({"name": "team/app", "tags": [LEAK_VERSION, LEAK_TAG]}).encode()

#: Addresses the namespace puts on lo (besides 127.0.0.1 and ::1).
NAMESPACE_ADDRESSES = (
    "169.254.169.254/32",  # cloud metadata
    "10.0.0.5/32",
    "172.16.0.1/32",
    "192.168.1.1/32",
    "100.64.0.1/32",  # CGNAT
    "fd00::5/128",  # unique local
)

#: The namespace's /etc/hosts: hostile names, one of them public-looking.
HOSTS = {
    "localhost": ("127.0.0.1", "::1"),
    "metadata.evil.test": ("169.254.169.254",),
    "registry.example.com": ("10.0.0.5",),  # looks public, resolves private
    "cgnat.evil.test": ("100.64.0.1",),
    "router.evil.test": ("192.168.1.1",),
    "ula.evil.test": ("fd00::5",),
}

NETNS_VARIABLE = "BOT_NETNS"


def hosts_file_text() -> str:
    return "".join(f"{address} {name}\n" for name, addrs in HOSTS.items() for address in addrs)


def namespace_command(hosts_file: Path, argv: list[str]) -> list[str]:
    """``unshare`` into new network and mount namespaces with only loopback, then exec ``argv``.

    Inside: ``lo`` up with `NAMESPACE_ADDRESSES`, and ``hosts_file`` bind-mounted
    on /etc/hosts (private to the mount namespace).
    """
    adds = " && ".join(
        f"ip {'-6 ' if ':' in a else ''}addr add {a} dev lo" for a in NAMESPACE_ADDRESSES
    )
    script = f'ip link set lo up && {adds} && mount --bind "$1" /etc/hosts && shift && exec "$@"'
    return ["unshare", "--net", "--mount", "sh", "-c", script, "netns", str(hosts_file), *argv]


def in_loopback_only_namespace() -> bool:
    """True only inside the namespace `namespace_command` makes: lo is the only interface."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


@dataclass
class Listener:
    """Accepts TCP connections, records each, and answers any HTTP request with `ANSWER`."""

    connections: list[tuple[str, str]] = field(default_factory=list)  # (peer, local address)
    port: int = 0  # the first port it listens on, for the caller's convenience
    _servers: list[asyncio.base_events.Server] = field(default_factory=list)

    async def listen(self, host: str, port: int = 0, *, dual_stack: bool = False) -> int:
        """Listen on ``host``:``port`` (``dual_stack``: ``::`` for IPv4 and IPv6); the port."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind((host, port))
        server = await asyncio.start_server(self._client, sock=sock)
        self._servers.append(server)
        return sock.getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        self.connections.append((f"{peer[0]}:{peer[1]}", f"{local[0]}:{local[1]}"))
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(ANSWER)}\r\n".encode()
                + b"Docker-Content-Digest: sha256:"
                + b"0" * 64
                + b"\r\nConnection: close\r\n\r\n"
                + ANSWER
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # e.g. a TLS handshake: recorded all the same
        finally:
            writer.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()


Handler = Callable[[web.Request], web.StreamResponse]


@dataclass
class Edge:
    """A registry front on 127.0.0.1: ``routes`` maps a repository path to its tag-list answer."""

    routes: dict[str, Handler]
    requests: list[str] = field(default_factory=list)  # paths, in order
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> Edge:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests.append(request.path)
            name = request.match_info["name"]
            if name not in self.routes:
                return web.json_response({"errors": [{"code": "NAME_UNKNOWN"}]}, status=404)
            return self.routes[name](request)

        app = web.Application()
        app.router.add_get("/v2/{name:.+}/tags/list", handle)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def _other(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        return web.json_response({"errors": [{"code": "UNSUPPORTED"}]}, status=404)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def redirect(location: str) -> Handler:
    return lambda _request: web.Response(status=307, headers={"Location": location})


def realm(url: str) -> Handler:
    challenge = f'Bearer realm="{url}",service="edge",scope="repository:team/app:pull"'
    return lambda _request: web.json_response(
        {"errors": [{"code": "UNAUTHORIZED"}]}, status=401, headers={"WWW-Authenticate": challenge}
    )
