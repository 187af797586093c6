"""A registry cannot make a scan endless, or huge (issue 8 §8).

Hostile registries over real HTTP on 127.0.0.1: an endless chain of distinct
``Link`` pages ends after ``max_pages`` requests with a clear error; a cycle of
next pages, or the same ``last`` decorated differently, ends the listing; a
10 MB tag page is parsed within a memory bound (tracemalloc, the page served by
another process so that only the bot's allocations are measured).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner
from bot.registry.transport import ClientSettings
from tests.registry.edges import Edge, tags_json
from tests.registryharness.scanning import image_repository_config

MakeScanner = Callable[..., RegistryScanner]
StartEdge = Callable[..., Awaitable[Edge]]

PATH = "team/app"
TAGS_PATH = f"/v2/{PATH}/tags/list"


@pytest.fixture
async def start_edge() -> AsyncIterator[StartEdge]:
    edges: list[Edge] = []

    async def start(respond) -> Edge:
        edge = await Edge(respond).start()
        edges.append(edge)
        return edge

    yield start
    for edge in edges:
        await edge.stop()


def page(tags: list[str], next_url: str | None) -> web.Response:
    response = tags_json(PATH, tags)
    if next_url is not None:
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response


async def scan_error(scanner: RegistryScanner, image: str) -> str:
    with pytest.raises(RegistryError) as info:
        await scanner.scan(image_repository_config(image))
    return str(info.value)


# -- endless chains and cycles ------------------------------------------------------------


@pytest.mark.parametrize("tags_per_page", [0, 1])
async def test_an_endless_chain_of_links_stops_at_max_pages(
    start_edge: StartEdge, make_scanner: MakeScanner, tags_per_page: int
) -> None:
    """Distinct Links forever, with empty or tiny pages: max_pages requests, then an error."""
    count = 0

    async def respond(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        tags = [f"t{count}"] * tags_per_page
        return page(tags, f"{TAGS_PATH}?n=1000&last=t{count}")

    registry = await start_edge(respond)
    scanner = make_scanner(max_pages=25)
    image = f"{registry.host}/{PATH}"
    message = await scan_error(scanner, image)
    assert message.startswith(f"{image}: the tag list goes on for more than 25 pages")
    assert "rather than use a partial list" in message and "page limit" in message
    assert len(registry.requests) == 25 == scanner.request_counts["tags"]


async def test_the_default_page_limit_bounds_an_endless_chain(
    start_edge: StartEdge, make_scanner: MakeScanner
) -> None:
    assert ClientSettings().max_pages == 1000
    count = 0

    async def respond(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        return page([], f"{TAGS_PATH}?last=x{count}")

    registry = await start_edge(respond)
    scanner = make_scanner()
    message = await scan_error(scanner, f"{registry.host}/{PATH}")
    assert "more than 1000 pages" in message
    assert len(registry.requests) == 1000


async def test_a_cycle_of_two_pages_ends_the_listing(
    start_edge: StartEdge, make_scanner: MakeScanner
) -> None:
    """start -> a -> b -> a: three requests, every tag read, no error."""

    async def respond(request: web.Request) -> web.Response:
        last = request.query.get("last")
        if last is None:
            return page(["1.0.0"], f"{TAGS_PATH}?n=1000&last=a")
        if last == "a":
            return page(["1.1.0"], f"{TAGS_PATH}?n=1000&last=b")
        return page(["1.2.0"], f"{TAGS_PATH}?n=1000&last=a")

    registry = await start_edge(respond)
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(f"{registry.host}/{PATH}"))
    assert result.tags == ["1.2.0", "1.1.0", "1.0.0"]
    assert registry.paths() == [
        f"{TAGS_PATH}?n=1000",
        f"{TAGS_PATH}?n=1000&last=a",
        f"{TAGS_PATH}?n=1000&last=b",
    ]


async def test_a_cycle_back_to_the_first_page_ends_the_listing(
    start_edge: StartEdge, make_scanner: MakeScanner
) -> None:
    async def respond(request: web.Request) -> web.Response:
        if "last" in request.query:
            return page(["2.0.0"], f"{TAGS_PATH}?n=1000")
        return page(["1.0.0"], f"{TAGS_PATH}?last=z&n=1000")

    registry = await start_edge(respond)
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(f"{registry.host}/{PATH}"))
    assert result.tags == ["2.0.0", "1.0.0"]
    assert len(registry.requests) == 2


async def test_the_same_last_in_other_clothes_is_the_same_page(
    start_edge: StartEdge, make_scanner: MakeScanner
) -> None:
    """Another parameter order, another ``n``, junk parameters, a fragment: not a new page."""
    count = 0

    async def respond(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        return page([f"1.0.{count}"], f"{TAGS_PATH}?junk={count}&n={count}&last=same#f{count}")

    registry = await start_edge(respond)
    scanner = make_scanner()
    result = await scanner.scan(image_repository_config(f"{registry.host}/{PATH}"))
    assert result.tags == ["1.0.2", "1.0.1"]
    assert len(registry.requests) == 2


# -- a 10 MB page, within a memory bound --------------------------------------------------

SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

body = open(sys.argv[1], "rb").read()

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

TEN_MB = 10 << 20
LEGAL_TAGS = 96_000


def ten_mb_pages() -> dict[str, tuple[bytes, str | None]]:
    """Bodies of about 10 MB: (body, the expected error or None)."""
    # 110-character tags, nearly as many as the default max_tags allows: a legal page.
    legal = [f"{i:06d}-" + "x" * 103 for i in range(LEGAL_TAGS)]
    assert len(legal) <= ClientSettings().max_tags
    tiny = [f"t{i}" for i in range(TEN_MB // 10)]  # ~1M tags: past max_tags
    nested = "[" * (TEN_MB // 2) + "]" * (TEN_MB // 2)  # millions of lists, no comma
    wide = "x" * TEN_MB + "\\ud83d\\ude00"  # one string that would take 4 bytes a character
    return {
        "legal": (json.dumps({"name": PATH, "tags": legal}).encode(), None),
        "too many tags": (
            json.dumps({"name": PATH, "tags": tiny}).encode(),
            "more than 100000 tags",
        ),
        "nested": (
            f'{{"name": "{PATH}", "tags": {nested}}}'.encode(),
            "not a plain list of tags",
        ),
        "wide": (
            f'{{"name": "{PATH}", "tags": ["{wide}"]}}'.encode(),
            "large and not plain ASCII JSON",
        ),
    }


@pytest.fixture
def serve_file(tmp_path: Path) -> Iterator[Callable[[bytes], str]]:
    """``serve(body)``: another process answers every GET with ``body``; its host:port."""
    processes: list[subprocess.Popen[str]] = []

    def serve(body: bytes) -> str:
        path = tmp_path / f"page-{len(processes)}.json"
        path.write_bytes(body)
        process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout is not None
        return f"127.0.0.1:{process.stdout.readline().strip()}"

    yield serve
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("kind", ["legal", "too many tags", "nested", "wide"])
async def test_a_ten_megabyte_page_stays_within_a_memory_bound(
    serve_file: Callable[[bytes], str], make_scanner: MakeScanner, kind: str
) -> None:
    body, error = ten_mb_pages()[kind]
    size = len(body)
    assert size >= TEN_MB
    host = serve_file(body)
    del body
    scanner = make_scanner(timeout=120.0)
    image_repository = image_repository_config(f"{host}/{PATH}")

    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        if error is None:
            result = await scanner.scan(image_repository)
            assert len(result.tags) == LEGAL_TAGS
        else:
            with pytest.raises(RegistryError, match=error):
                await scanner.scan(image_repository)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = peak - before
    print(f"{kind}: page {size} bytes, peak {growth} bytes ({growth / size:.2f}x)")
    assert growth < 5 * size
    assert scanner.request_counts["tags"] == 1
    await asyncio.sleep(0)
