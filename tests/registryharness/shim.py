"""Test-only proxy in front of the real registry: tag pagination and fault injection.

distribution 2.8 ignores ``n``/``last`` on tags/list (registry.md §9), so the
shim sorts the tags, applies ``last`` and a page size (``min(n, page_limit)``)
and sets a ``Link`` header (relative, or absolute with ``absolute_links``).
Everything else is proxied unchanged (auth challenges included).

Faults are queued per (image repository path, route) and each one is used by one request:
``shim.inject("app/x", "tags", "429:1", "500")``. Routes: ``tags``,
``manifest`` (HEAD and GET of /manifests/). Faults:

- ``"<status>"`` or ``"<status>:<retry-after>"``: answer that status (no upstream call)
- ``malformed``: 200 with a body that is not JSON
- ``oversized:<bytes>``: 200 with a valid JSON body of at least that size
- ``slow:<seconds>``: wait, then answer normally
- ``link-other-host``: a next-page Link to another host
- ``repeat-link``: a next-page Link to the page itself
- ``null-tags``: ``"tags": null``
- ``junk-tags``: add invalid names (null, numbers, ``-bad``, a digest, 129 chars)
- ``redirect-other-host``: 307 to the same URL on ``localhost`` (another origin)
- ``no-digest``: drop ``Docker-Content-Digest`` (and ETag) from the answer
- ``wrong-digest``: replace ``Docker-Content-Digest`` with another digest
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

_TAGS = re.compile(r"^/v2/(.+)/tags/list$")
_MANIFEST = re.compile(r"^/v2/(.+)/manifests/[^/]+$")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
JUNK_TAGS = [None, 5, "-bad", ".bad", "sha256:" + "a" * 64, "x" * 129, "", "ok/slash"]


class QuietServer(ThreadingHTTPServer):
    """Threads are daemons; a client that hung up (timeout tests) is not an error."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class Shim:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.page_limit: int | None = None
        self.absolute_links = False
        #: Answer the first page for every ``last`` (with a fresh ``page=`` in each Link).
        self.ignore_last = False
        self.faults: dict[tuple[str, str], deque[str]] = defaultdict(deque)
        #: (method, path, had Authorization, Host header) of every request
        self.log: list[tuple[str, str, bool, str]] = []
        #: Extra endpoints on the registry's host, by (method, path): the request body in,
        #: (status, JSON body) out; e.g. ACR's ``POST /oauth2/exchange``.
        self.routes: dict[tuple[str, str], Callable[[bytes], tuple[int, Any]]] = {}
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Shim:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, image_path: str, route: str, *faults: str) -> None:
        with self._lock:
            self.faults[(image_path, route)].extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()
        self.page_limit = None
        self.absolute_links = False
        self.ignore_last = False

    def _next_fault(self, image_path: str, route: str) -> str | None:
        with self._lock:
            queue = self.faults.get((image_path, route))
            return queue.popleft() if queue else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        shim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_HEAD(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PATCH(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def _handle(self) -> None:
                url = urlsplit(self.path)
                with shim._lock:
                    shim.log.append(
                        (
                            self.command,
                            self.path,
                            "Authorization" in self.headers,
                            self.headers.get("Host", ""),
                        )
                    )
                route = shim.routes.get((self.command, url.path))
                if route is not None:
                    length = int(self.headers.get("Content-Length") or 0)
                    status, answer = route(self.rfile.read(length))
                    body = json.dumps(answer).encode()
                    self._reply(status, [("Content-Type", "application/json")], body)
                    return
                tags_match = _TAGS.match(url.path) if self.command == "GET" else None
                manifest_match = _MANIFEST.match(url.path)
                if tags_match:
                    image_path, route = tags_match.group(1), "tags"
                elif manifest_match and self.command in ("GET", "HEAD"):
                    image_path, route = manifest_match.group(1), "manifest"
                else:
                    image_path, route = "", ""
                fault = shim._next_fault(image_path, route) if route else None
                if fault and self._answer_fault(fault, url):
                    return
                status, headers, body = self._upstream(url.path if tags_match else self.path)
                if tags_match and status == 200:
                    status, headers, body = self._paginate(url, tags_match.group(1), body, fault)
                if fault == "no-digest":
                    headers = [
                        (k, v)
                        for k, v in headers
                        if k.lower() not in ("docker-content-digest", "etag")
                    ]
                if fault == "wrong-digest":
                    headers = [(k, v) for k, v in headers if k.lower() != "docker-content-digest"]
                    headers.append(("Docker-Content-Digest", "sha256:" + "0" * 64))
                self._reply(status, headers, body)

            def _answer_fault(self, fault: str, url) -> bool:
                kind, _, arg = fault.partition(":")
                if kind.isdigit():
                    headers = [("Content-Type", "application/json")]
                    if arg:
                        headers.append(("Retry-After", arg))
                    body = json.dumps(
                        {
                            "errors": [
                                {
                                    "code": "TOOMANYREQUESTS" if kind == "429" else "UNKNOWN",
                                    "message": f"injected {kind}",
                                }
                            ]
                        }
                    ).encode()
                    self._reply(int(kind), headers, body)
                    return True
                if kind == "malformed":
                    self._reply(
                        200, [("Content-Type", "application/json")], b'{"name": "x", "tags": ['
                    )
                    return True
                if kind == "oversized":
                    tags = [f"t{i:08d}" for i in range(int(arg) // 12 + 1)]
                    body = json.dumps({"name": "x", "tags": tags}).encode()
                    self._reply(200, [("Content-Type", "application/json")], body)
                    return True
                if kind == "slow":
                    time.sleep(float(arg))
                    return False
                if kind == "redirect-other-host":
                    location = f"http://localhost:{shim.port}{self.path}"
                    self._reply(307, [("Location", location)], b"")
                    return True
                return False

            def _paginate(self, url, name: str, body: bytes, fault: str | None):
                doc = json.loads(body)
                tags = sorted(doc.get("tags") or [])
                query = parse_qs(url.query)
                last = None if shim.ignore_last else query.get("last", [None])[0]
                if last is not None:
                    tags = [t for t in tags if t > last]
                n = int(query["n"][0]) if "n" in query else None
                if shim.page_limit is not None:
                    n = shim.page_limit if n is None else min(n, shim.page_limit)
                headers = [("Content-Type", "application/json")]
                base = f"http://{shim.host}" if shim.absolute_links else ""
                if n is not None:
                    if 0 < n < len(tags):
                        params: dict[str, object] = {"n": n, "last": tags[n - 1]}
                        if shim.ignore_last:
                            params["page"] = int(query.get("page", ["1"])[0]) + 1
                        link = f"{base}{url.path}?{urlencode(params)}"
                        headers.append(("Link", f'<{link}>; rel="next"'))
                    tags = tags[:n]
                if fault == "link-other-host":
                    headers = [h for h in headers if h[0] != "Link"]
                    headers.append(
                        ("Link", f'<http://other.invalid:1{url.path}?n=1&last=zzz>; rel="next"')
                    )
                if fault == "repeat-link":
                    headers = [h for h in headers if h[0] != "Link"]
                    headers.append(("Link", f'<{self.path}>; rel="next"'))
                page: list = tags
                if fault == "null-tags":
                    page = None
                if fault == "junk-tags":
                    page = tags + JUNK_TAGS
                return 200, headers, json.dumps({"name": name, "tags": page}).encode()

            def _upstream(self, path: str):
                conn = http.client.HTTPConnection("127.0.0.1", shim.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                try:
                    conn.request(self.command, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_HEADERS]
                    if self.command == "HEAD":
                        out.append(("Content-Length", resp.getheader("Content-Length", "0")))
                    return resp.status, out, data
                finally:
                    conn.close()

            def _reply(self, status: int, headers, body: bytes) -> None:
                self.send_response(status)
                has_length = False
                for key, value in headers:
                    has_length = has_length or key.lower() == "content-length"
                    self.send_header(key, value)
                if not has_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD" and body:
                    self.wfile.write(body)

        return Handler
