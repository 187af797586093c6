"""/metrics: bounded labels, counters fed by real requests, and the scrape endpoint.

The metrics live in one process-wide registry (`bot.metrics.REGISTRY`), so the
tests compare before and after rather than absolute values, and use their own
installation ids and hosts.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from gidgethub import sansio
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import metrics
from bot.github.auth import AppCredentials, TokenCache
from bot.github.client import AppClient, GitHubClient
from bot.github.errors import ServerError, Unreachable
from bot.registry.addresses import AddressPolicy, registry_session
from bot.registry.client import RegistryClient
from bot.registry.errors import RegistryError
from bot.registry.transport import ClientSettings, Target
from bot.web import make_app
from tests.registry.edges import Edge, challenge, tags_json
from tests.test_github_client import (
    BASE,
    NOW,
    answer,
    make_client,
    private_key_pem,
)

GITHUB_REQUESTS = "image_automation_github_requests_total"
RATE_LIMIT = "image_automation_github_rate_limit_remaining"
REGISTRY_REQUESTS = "image_automation_registry_requests_total"


def sample(name: str, **labels: str) -> float:
    """A sample's current value; 0 when the series does not exist yet."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def github_count(route: str, status: str) -> float:
    return sample(GITHUB_REQUESTS, route=route, status=status)


def registry_count(registry: str, status: str) -> float:
    return sample(REGISTRY_REQUESTS, registry=registry, status=status)


# -- route normalisation ---------------------------------------------------------------

R = "/repos/{owner}/{repo}"

ROUTES = [
    # What the bot itself requests (bot/github/*), with concrete values.
    ("/repos/octo/hello", R),
    ("/repos/octo/hello/git/ref/heads/main", R + "/git/ref/{ref}"),
    ("/repos/octo/hello/git/ref/heads/image-updates/flux-system", R + "/git/ref/{ref}"),
    ("/repos/octo/hello/git/ref/heads%2Fmain", R + "/git/ref/{ref}"),
    ("/repos/octo/hello/git/refs", R + "/git/refs"),
    ("/repos/octo/hello/git/refs/heads/image-updates", R + "/git/refs/{ref}"),
    ("/repos/octo/hello/git/trees", R + "/git/trees"),
    ("/repos/octo/hello/git/trees/" + "a" * 40, R + "/git/trees/{sha}"),
    ("/repos/octo/hello/git/blobs", R + "/git/blobs"),
    ("/repos/octo/hello/git/blobs/" + "0f" * 20, R + "/git/blobs/{sha}"),
    ("/repos/octo/hello/git/blobs/" + "ab" * 32, R + "/git/blobs/{sha}"),  # SHA-256 repo
    ("/repos/octo/hello/git/commits", R + "/git/commits"),
    ("/repos/octo/hello/commits/" + "c" * 40, R + "/commits/{ref}"),
    ("/repos/octo/hello/commits/heads/main", R + "/commits/{ref}"),
    ("/repos/octo/hello/commits/" + "c" * 40 + "/check-runs", R + "/commits/{ref}/check-runs"),
    ("/repos/octo/hello/tarball/" + "d" * 40, R + "/tarball/{ref}"),
    ("/repos/octo/hello/pulls", R + "/pulls"),
    ("/repos/octo/hello/pulls/42", R + "/pulls/{number}"),
    ("/repos/octo/hello/pulls/42/files", R + "/pulls/{number}/files"),
    ("/repos/octo/hello/issues/42/labels", R + "/issues/{number}/labels"),
    ("/repos/octo/hello/issues/42/comments", R + "/issues/{number}/comments"),
    ("/repos/octo/hello/check-runs", R + "/check-runs"),
    ("/repos/octo/hello/check-runs/4242424242", R + "/check-runs/{id}"),
    ("/app/installations", "/app/installations"),
    ("/app/installations/123/access_tokens", "/app/installations/{id}/access_tokens"),
    ("/installation/repositories", "/installation/repositories"),
    # Recorded by octokit/fixtures (tests/data/github/fixtures).
    ("/", "/"),
    ("/repos/octokit-fixture-org/add-labels-to-issue/issues", R + "/issues"),
    ("/repos/octokit-fixture-org/create-file/contents/test.txt", R + "/contents/{path}"),
    ("/repos/octokit-fixture-org/hello-world/contents/", R + "/contents"),
    ("/repos/octokit-fixture-org/git-refs/git/refs/", R + "/git/refs"),
    ("/repos/octokit-fixture-org/git-refs/git/refs/heads/test", R + "/git/refs/{ref}"),
    ("/repos/octokit-fixture-org/labels/labels", R + "/labels"),
    ("/repos/octokit-fixture-org/labels/labels/test-label", R + "/labels/{name}"),
    ("/repositories/1000/issues", "/repositories/{rest}"),
    # Absolute URLs: the query (which may hold a token) is never part of the route.
    ("https://api.github.com/repos/o/r/pulls?head=o:b&state=open", R + "/pulls"),
    ("https://API.GitHub.com/rate_limit", "/rate_limit"),
    ("https://codeload.github.com/o/r/legacy.tar.gz/main?token=AAAA", "{external}"),
    ("http://api.github.com/repos/o/r", "{external}"),  # another scheme, another origin
    # Shapes outside the table collapse.
    ("/repos/o/r/wiki/pages/x/y/z", R + "/{kind}/{rest}"),
    ("/repos/o/r/pulls/42/some/new/thing", R + "/pulls/{rest}"),
    ("/repos/o/r/actions", R + "/{kind}"),
    ("/repos/o", "/repos/{rest}"),
    ("/enterprise/x/y", "/{other}/{rest}"),
    ("/unknown", "/{other}"),
]


@pytest.mark.parametrize(("path", "route"), ROUTES)
def test_route_is_the_url_template(path: str, route: str) -> None:
    assert metrics.github_route(path) == route


def _github_url_templates() -> set[str]:
    """Every GitHub URL template in the bot's source (suffixes completed with the repository)."""
    found: set[str] = set()
    for source in (Path(__file__).parent.parent / "bot").rglob("*.py"):
        for template in re.findall(r'"(/[a-z][^"\s]*\{[^"\s]*)"', source.read_text()):
            if template.startswith("/v2/"):
                continue  # a registry's, not GitHub's
            if not template.startswith(("/repos/", "/app", "/orgs/", "/users/", "/repositories/")):
                template = "/repos/{owner}/{repo}" + template
            found.add(template)
    return found


def test_a_template_route_is_the_route_of_its_filled_urls() -> None:
    """The client labels a request by its URL template (`template_route`), once per template;
    that must be what matching the filled URL gives, slashes in ``{+ref}`` and queries too."""
    templates = _github_url_templates()
    assert len(templates) > 40 and "/repos/{owner}/{repo}/commits/{+ref}" in templates
    for base in ("https://api.github.com", "https://ghe.example.com/api/v3"):
        for template in sorted(templates):
            names = re.findall(r"[{,][+/?&]?([a-z_.]+)", template)
            values = {name: "heads/feature/x" if "{+" + name in template else "v" for name in names}
            filled = sansio.format_url(template, values, base_url=base)
            assert metrics.template_route(template) == metrics.github_route(filled, base), template


def test_enterprise_server_base_path_is_not_part_of_the_route() -> None:
    base = "https://ghe.example.com/api/v3"
    url = base + "/repos/o/r/git/ref/heads/main"
    assert metrics.github_route(url, base) == R + "/git/ref/{ref}"
    assert metrics.github_route("https://ghe.example.com/api/v30/x", base) == "{external}"
    assert metrics.github_route("https://ghe.example.com/_codeload/o/r", base) == "{external}"


_TEMPLATE_SEGMENT = re.compile(r"[a-z_-]{1,40}|\{[a-z_]{1,20}\}")


def assert_bounded(route: str, hostile: list[str]) -> None:
    """A route of known words and placeholders only, short, with none of the input in it."""
    assert len(route) <= 100, route
    assert route.isascii(), route
    if route == metrics.EXTERNAL_ROUTE:
        return
    segments = [s for s in route.split("/") if s]
    assert len(segments) <= 8, route
    assert all(_TEMPLATE_SEGMENT.fullmatch(s) for s in segments), route
    for value in hostile:
        assert value not in segments, (value, route)


HOSTILE_NAMES = [
    "x" * 10_000,
    "ünïcødé-répö",
    "名前",
    "🙂" * 50,
    "..",
    "%2e%2e",
    "{evil}",
    "repo name with spaces",
    "a\x00b",
    "ghp_" + "S" * 36,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_repository_names_do_not_reach_the_label(name: str) -> None:
    for path in (
        f"/repos/{name}/{name}",
        f"/repos/{name}/{name}/git/ref/heads/{name}",
        f"/repos/{name}/{name}/{name}",
        f"/repos/{name}/{name}/{name}/{name}",
        f"/repos/{name}/{name}/pulls/{name}",
        f"/{name}",
        f"/{name}/{name}/{name}",
    ):
        assert_bounded(metrics.github_route(path), [name])


def test_many_segments_collapse() -> None:
    deep = "/repos/o/r/git/ref/" + "/".join(f"s{i}" for i in range(5000))
    assert metrics.github_route(deep) == R + "/git/ref/{ref}"
    deep_unknown = "/repos/o/r/" + "/".join(f"s{i}" for i in range(5000))
    assert metrics.github_route(deep_unknown) == R + "/{kind}/{rest}"
    assert metrics.github_route("/" * 10_000) == "/"


def test_thousands_of_random_paths_give_a_handful_of_routes() -> None:
    rng = random.Random(1234)
    alphabet = string.ascii_letters + string.digits + "-._~%é名"
    words = ["repos", "git", "ref", "refs", "pulls", "issues", "labels", "app", "commits"]

    def segment() -> str:
        if rng.random() < 0.3:
            return rng.choice(words)
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))

    routes = set()
    for _ in range(5000):
        path = "/" + "/".join(segment() for _ in range(rng.randint(0, 12)))
        route = metrics.github_route(path)
        assert_bounded(route, [])
        routes.add(route)
    # The table has ~75 templates; a generic form per known word; never 5000.
    assert len(routes) < 150, sorted(routes)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), max_size=12))
def test_any_path_gives_a_bounded_route(segments: list[str]) -> None:
    hostile = [s for s in segments if "/" not in s and not _TEMPLATE_SEGMENT.fullmatch(s)]
    assert_bounded(metrics.github_route("/" + "/".join(segments)), hostile)


# -- GitHub requests are counted ---------------------------------------------------------


async def test_each_github_request_is_counted_with_route_status_and_rate_limit() -> None:
    route = R + "/git/ref/{ref}"

    def handler(method: str, url: str, headers: dict, body: bytes):
        assert url == BASE + "/repos/octo/hello/git/ref/heads/main"
        if headers.get("if-none-match") == '"v1"':
            return answer(304, x_ratelimit_remaining="4990")
        return answer(200, {"object": {"sha": "a" * 40}}, etag='"v1"', x_ratelimit_remaining="4991")

    client, _, _ = make_client(handler)
    client.installation_id = 9001
    ok, not_modified = github_count(route, "200"), github_count(route, "304")

    await client.getitem(
        "/repos/{owner}/{repo}/git/ref/{+ref}",
        {"owner": "octo", "repo": "hello", "ref": "heads/main"},
    )
    assert github_count(route, "200") == ok + 1
    assert sample(RATE_LIMIT, installation="9001") == 4991

    assert (
        await client.get_if_none_match("/repos/octo/hello/git/ref/heads/main", etag='"v1"')
        is None
    )
    assert github_count(route, "304") == not_modified + 1
    assert github_count(route, "200") == ok + 1
    assert sample(RATE_LIMIT, installation="9001") == 4990
    assert len(client.sent) == 2


async def test_retries_and_connection_failures_are_counted_per_attempt() -> None:
    route = R + "/pulls/{number}"
    failures: list[Any] = [aiohttp.ClientConnectionError("reset"), answer(502, "bad gateway")]

    def handler(method: str, url: str, headers: dict, body: bytes):
        return failures.pop(0) if failures else answer(200, {"number": 5})

    client, _, _ = make_client(handler, max_attempts=3)
    errors, bad, ok = (github_count(route, s) for s in ("error", "502", "200"))
    assert (await client.getitem("/repos/o/r/pulls/5"))["number"] == 5
    assert github_count(route, "error") == errors + 1
    assert github_count(route, "502") == bad + 1
    assert github_count(route, "200") == ok + 1
    assert client.request_count == 3


async def test_a_request_that_never_gets_an_answer_is_counted_as_error() -> None:
    route = R + "/check-runs"
    client, _, _ = make_client(lambda *a: aiohttp.ClientConnectionError("refused"), max_attempts=1)
    before = github_count(route, "error")
    with pytest.raises(Unreachable):
        await client.post("/repos/o/r/check-runs", data={"name": "x"})
    assert github_count(route, "error") == before + 1


async def test_error_statuses_are_counted_once_each() -> None:
    route = R + "/labels"
    client, _, _ = make_client(lambda *a: answer(500, {"message": "boom"}), max_attempts=2)
    before = github_count(route, "500")
    with pytest.raises(ServerError):
        await client.getitem("/repos/o/r/labels")
    assert github_count(route, "500") == before + 2  # first try and one retry


async def test_archive_redirect_counts_the_external_hop_without_its_query() -> None:
    tarball = R + "/tarball/{ref}"
    signed = "https://codeload.github.com/o/r/legacy.tar.gz/abc?token=SIGNEDSECRET"

    def handler(method: str, url: str, headers: dict, body: bytes):
        if url.startswith(BASE):
            return answer(302, location=signed)
        return answer(200, "archive bytes")

    client, _, _ = make_client(handler)
    redirects, external = github_count(tarball, "302"), github_count("{external}", "200")
    assert await client.get_bytes("/repos/o/r/tarball/abc") == b"archive bytes"
    assert github_count(tarball, "302") == redirects + 1
    assert github_count("{external}", "200") == external + 1
    body, _ = metrics.render()
    assert b"SIGNEDSECRET" not in body
    assert b"codeload" not in body


class FakeAppClient(AppClient):
    def __init__(self, **kwargs: Any) -> None:
        self.urls: list[str] = []
        super().__init__(None, **kwargs)  # type: ignore[arg-type]

    async def _send(self, method, url, headers, body, *, allow_redirects=True):
        self.urls.append(url)
        assert headers["authorization"].startswith("bearer ")
        token = {"token": "ghs_minted", "expires_at": "2099-01-01T00:00:00Z"}
        return answer(201, token, x_ratelimit_remaining="4321")


async def test_app_requests_are_labelled_app() -> None:
    creds = AppCredentials(app_id="42", private_key=private_key_pem(), base_url=BASE)
    app = FakeAppClient(creds=creds, clock=lambda: NOW)
    route = "/app/installations/{id}/access_tokens"
    before = github_count(route, "201")
    assert (await app.mint_installation_token(77))["token"] == "ghs_minted"
    assert app.urls == [BASE + "/app/installations/77/access_tokens"]
    assert github_count(route, "201") == before + 1
    assert sample(RATE_LIMIT, installation="app") == 4321
    assert sample(RATE_LIMIT, installation="77") == 0  # the App's limit, not the installation's


async def test_real_transport_against_a_local_enterprise_server(aiohttp_server) -> None:
    """The client's own `_send` over a socket, with a GitHub Enterprise-style base path."""

    async def ref(request: web.Request) -> web.Response:
        return web.json_response(
            {"ref": "refs/heads/main", "object": {"sha": "b" * 40}},
            headers={"x-ratelimit-remaining": "123"},
        )

    app = web.Application()
    app.router.add_get("/api/v3/repos/{owner}/{repo}/git/ref/{ref:.+}", ref)
    server = await aiohttp_server(app)

    async def mint(installation_id: int) -> dict[str, Any]:
        return {"token": "ghs_local", "expires_at": "2099-01-01T00:00:00Z"}

    creds = AppCredentials(
        app_id="1", private_key="unused", base_url=str(server.make_url("/api/v3"))
    )
    route = R + "/git/ref/{ref}"
    before = github_count(route, "200")
    async with aiohttp.ClientSession() as session:
        client = GitHubClient(session, creds=creds, tokens=TokenCache(mint), installation_id=31337)
        data = await client.getitem(
            "/repos/{owner}/{repo}/git/ref/{+ref}", {"owner": "ö", "repo": "x", "ref": "heads/main"}
        )
    assert data["object"]["sha"] == "b" * 40
    assert github_count(route, "200") == before + 1
    assert sample(RATE_LIMIT, installation="31337") == 123


# -- the rest of the module --------------------------------------------------------------


def test_reconcile_helpers() -> None:
    name = "image_automation_reconciles_total"
    before = sample(name, outcome="changed")
    count = sample("image_automation_reconcile_duration_seconds_count")
    slow = sample("image_automation_reconcile_duration_seconds_bucket", le="60.0")
    metrics.observe_reconcile("changed", 42.0)
    assert sample(name, outcome="changed") == before + 1
    assert sample("image_automation_reconcile_duration_seconds_count") == count + 1
    assert sample("image_automation_reconcile_duration_seconds_bucket", le="60.0") == slow + 1
    other = sample(name, outcome="other")
    metrics.observe_reconcile("Not An Outcome {}")
    assert sample(name, outcome="other") == other + 1

    short = sample("image_automation_short_circuits_total")
    metrics.count_short_circuit()
    assert sample("image_automation_short_circuits_total") == short + 1
    takeovers = sample("image_automation_lease_takeovers_total")
    metrics.count_lease_takeover()
    assert sample("image_automation_lease_takeovers_total") == takeovers + 1
    metrics.set_due_backlog(17)
    assert sample("image_automation_due_backlog") == 17


def test_forgotten_installation_loses_its_rate_limit_series() -> None:
    metrics.observe_github("/user", 200, 5150, "10")
    assert metrics.REGISTRY.get_sample_value(RATE_LIMIT, {"installation": "5150"}) == 10
    metrics.forget_installation(5150)
    assert metrics.REGISTRY.get_sample_value(RATE_LIMIT, {"installation": "5150"}) is None
    metrics.forget_installation(5150)  # twice is fine


def test_unreadable_rate_limit_header_is_ignored() -> None:
    metrics.observe_github("/user", 200, 5151, "12")
    for junk in ("", "lots", "-1", "١٢"):
        metrics.observe_github("/user", 200, 5151, junk)
    assert sample(RATE_LIMIT, installation="5151") == 12


# -- registries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://ghcr.io/v2/o/app/tags/list?n=1000", "ghcr.io"),
        ("https://ghcr.io:443/v2/", "ghcr.io"),
        ("http://Registry.Local:5000/v2/", "registry.local:5000"),
        ("https://user:hunter2@reg.example/v2/?token=x", "reg.example"),
        ("https://bücher.example/v2/", "xn--bcher-kva.example"),
        ("http://[::1]:5000/v2/", "[::1]:5000"),
        ("https://auth.docker.io/token?scope=repository:library/nginx:pull", "auth.docker.io"),
        ("not a url", "other"),
    ],
)
def test_registry_label_is_host_and_port_only(url: str, label: str) -> None:
    assert metrics.registry_label(url) == label


def test_distinct_registries_are_capped() -> None:
    labels = metrics.BoundedLabels(3)
    assert [labels(h) for h in ("a", "b", "a", "c", "d", "e", "b")] == [
        "a", "b", "a", "c", "other", "other", "b",
    ]  # fmt: skip
    assert metrics.MAX_REGISTRIES == 500


@pytest.fixture
async def edges() -> AsyncIterator[list[Edge]]:
    started: list[Edge] = []
    yield started
    for edge in started:
        await edge.stop()


async def test_registry_requests_are_counted_by_host_and_status(edges: list[Edge]) -> None:
    """A token-protected registry: 401, the realm's token, then the tag list."""

    async def realm_respond(request: web.Request) -> web.Response:
        return web.json_response({"token": "registry-token", "expires_in": 300})

    realm = await Edge(realm_respond).start()
    edges.append(realm)

    async def registry_respond(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer registry-token":
            return challenge(realm.url("/token"), "repository:team/app:pull")
        return tags_json("team/app", ["1.0", "1.1"])

    registry = await Edge(registry_respond).start()
    edges.append(registry)

    before = {
        "401": registry_count(registry.host, "401"),
        "200": registry_count(registry.host, "200"),
        "realm": registry_count(realm.host, "200"),
    }
    target = Target(
        image=f"{registry.host}/team/app", host=registry.host, path="team/app", scheme="http"
    )
    async with aiohttp.ClientSession() as session:
        client = RegistryClient(session)
        assert sorted(await client.list_tags(target)) == ["1.0", "1.1"]
    assert registry_count(registry.host, "401") == before["401"] + 1
    assert registry_count(registry.host, "200") == before["200"] + 1
    assert registry_count(realm.host, "200") == before["realm"] + 1
    body, _ = metrics.render()
    assert b"registry-token" not in body
    assert b"/token" not in body


async def test_registry_connection_failures_and_refusals_are_counted(edges: list[Edge]) -> None:
    async def never(request: web.Request) -> web.Response:
        raise AssertionError("nothing should be sent")

    edge = await Edge(never).start()
    edges.append(edge)
    await edge.stop()  # now nothing listens on its port
    target = Target(image=f"{edge.host}/a", host=edge.host, path="a", scheme="http")
    before = registry_count(edge.host, "error")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RegistryError):
            await RegistryClient(session, settings=ClientSettings(retries=0)).list_tags(target)
    assert registry_count(edge.host, "error") == before + 1

    # The address policy refuses loopback: nothing is sent, and that is visible too.
    before = registry_count(edge.host, "refused")
    async with registry_session(AddressPolicy()) as session:
        with pytest.raises(RegistryError, match="not allowed"):
            await RegistryClient(session, settings=ClientSettings(retries=0)).list_tags(target)
    assert registry_count(edge.host, "refused") == before + 1


# -- the endpoint --------------------------------------------------------------------------


class _Unused:
    """Services the /metrics route never touches."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"/metrics touched {name}")


async def test_metrics_endpoint_serves_the_text_exposition(aiohttp_client) -> None:
    from bot.handlers import Services

    metrics.observe_github("https://api.github.com/repos/o/r/pulls?token=QUERYSECRET", 200, 1)
    client = await aiohttp_client(
        make_app(Services(store=_Unused(), scheduler=_Unused()), secret="s")  # type: ignore[arg-type]
    )
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "version=" in response.headers["Content-Type"]
    text = await response.text()
    for name in (
        "image_automation_reconciles_total",
        "image_automation_short_circuits_total",
        "image_automation_reconcile_duration_seconds_bucket",
        "image_automation_github_requests_total",
        "image_automation_github_rate_limit_remaining",
        "image_automation_registry_requests_total",
        "image_automation_due_backlog",
        "image_automation_lease_takeovers_total",
    ):
        assert name in text, name
    assert 'image_automation_reconciles_total{outcome="short_circuit"}' in text
    assert 'route="/repos/{owner}/{repo}/pulls",status="200"' in text
    assert "QUERYSECRET" not in text
    # Unauthenticated, like /healthz, and read-only.
    assert (await client.post("/metrics")).status == 405
    assert (await client.get("/healthz")).status == 200


def test_render_is_the_dedicated_registry_only() -> None:
    body, content_type = metrics.render()
    assert content_type == metrics.CONTENT_TYPE_LATEST
    assert b"image_automation_" in body
    assert b"python_gc_objects_collected_total" not in body  # the global default's collectors
