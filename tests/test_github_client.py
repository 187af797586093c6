"""GitHubClient: retries, token refresh, pacing, conditional requests, errors, secrets.

The network edge is faked by overriding the client's transport (`_send`);
everything above it (gidgethub, our hooks, the token cache) is real.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from multidict import CIMultiDict

from bot.github.auth import AppCredentials, TokenCache
from bot.github.client import AppClient, GitHubClient
from bot.github.errors import (
    AuthenticationFailed,
    EmptyRepository,
    GitHubError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    Unreachable,
    ValidationFailed,
)
from bot.retry_after import retry_after_seconds

BASE = "https://api.example.test"
NOW = 1_800_000_000.0

Response = tuple[int, CIMultiDict, bytes]
Handler = Callable[[str, str, dict[str, str], bytes], "Response | Exception"]


def answer(status: int = 200, data: Any = None, **headers: str) -> Response:
    """A JSON (or empty) HTTP answer as the transport returns it."""
    h = CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()})
    if data is None:
        return status, h, b""
    if isinstance(data, str):
        h.setdefault("content-type", "text/plain; charset=utf-8")
        return status, h, data.encode()
    h.setdefault("content-type", "application/json; charset=utf-8")
    return status, h, json.dumps(data).encode()


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Minter:
    """The token endpoint (a network edge): hands out numbered tokens."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def __call__(self, installation_id: int) -> dict[str, Any]:
        self.calls.append(installation_id)
        expires = datetime.datetime.fromtimestamp(NOW + 3600, datetime.UTC)
        return {
            "token": f"ghs_secret{len(self.calls)}",
            "expires_at": expires.isoformat().replace("+00:00", "Z"),
        }


@dataclass
class Sleeps:
    seconds: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


class FakeTransportClient(GitHubClient):
    """GitHubClient whose transport answers from `handler` and records requests."""

    def __init__(self, handler: Handler, **kwargs: Any) -> None:
        self.handler = handler
        self.sent: list[Sent] = []
        self.in_flight_writes = 0
        self.max_in_flight_writes = 0
        super().__init__(None, **kwargs)  # type: ignore[arg-type]

    async def _send(self, method, url, headers, body, *, allow_redirects=True):
        self.sent.append(Sent(method, url, dict(headers), body))
        write = method != "GET"
        if write:
            self.in_flight_writes += 1
            self.max_in_flight_writes = max(self.max_in_flight_writes, self.in_flight_writes)
        try:
            await asyncio.sleep(0)  # let concurrent requests interleave if they can
            result = self.handler(method, url, dict(headers), body)
        finally:
            if write:
                self.in_flight_writes -= 1
        if isinstance(result, Exception):
            raise result
        return result


def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


CREDS = AppCredentials(app_id="42", private_key="unused-here", base_url=BASE)


def make_client(handler: Handler, **kwargs: Any) -> tuple[FakeTransportClient, Minter, Sleeps]:
    minter, sleeps = Minter(), Sleeps()
    tokens = kwargs.pop("tokens", None) or TokenCache(minter, clock=lambda: NOW)
    options: dict[str, Any] = {"write_interval": 0.0, "sleep": sleeps, "clock": lambda: NOW}
    options.update(kwargs)
    client = FakeTransportClient(handler, creds=CREDS, tokens=tokens, installation_id=7, **options)
    return client, minter, sleeps


def script(*responses: Response | Exception) -> Handler:
    """A handler giving `responses` in order."""
    queue = list(responses)

    def handler(method, url, headers, body):
        assert queue, f"unexpected extra request {method} {url}"
        return queue.pop(0)

    return handler


# -- headers and auth ------------------------------------------------------------------


async def test_requests_carry_installation_token_api_version_and_user_agent():
    client, minter, _ = make_client(script(answer(200, {"ok": True})))
    assert await client.getitem("/repos/{owner}/{repo}", {"owner": "o", "repo": "r"}) == {
        "ok": True
    }
    (sent,) = client.sent
    assert sent.url == f"{BASE}/repos/o/r"
    assert sent.headers["authorization"] == "token ghs_secret1"
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert sent.headers["user-agent"] == "image-automation-bot"
    assert minter.calls == [7]
    assert client.request_count == 1


async def test_token_is_reused_across_requests():
    client, minter, _ = make_client(script(answer(200, {}), answer(200, {})))
    await client.getitem("/a")
    await client.getitem("/b")
    assert minter.calls == [7]
    assert [s.headers["authorization"] for s in client.sent] == ["token ghs_secret1"] * 2


async def test_401_refreshes_the_token_once_and_retries_with_the_new_one():
    client, minter, _ = make_client(
        script(answer(401, {"message": "Bad credentials"}), answer(200, {"n": 1}))
    )
    assert await client.getitem("/x") == {"n": 1}
    assert [s.headers["authorization"] for s in client.sent] == [
        "token ghs_secret1",
        "token ghs_secret2",
    ]
    assert minter.calls == [7, 7]


async def test_second_401_gives_up_with_authentication_failed():
    client, minter, _ = make_client(
        script(answer(401, {"message": "Bad credentials"}), answer(401, {"message": "Bad"}))
    )
    with pytest.raises(AuthenticationFailed) as info:
        await client.getitem("/x")
    assert info.value.status == 401
    assert len(client.sent) == 2


# -- retries ---------------------------------------------------------------------------


async def test_5xx_on_get_is_retried_with_backoff():
    client, _, sleeps = make_client(
        script(answer(502, {"message": "Bad Gateway"}), answer(503), answer(200, {"a": 1}))
    )
    assert await client.getitem("/x") == {"a": 1}
    assert sleeps.seconds == [1.0, 2.0]
    assert client.request_count == 3


async def test_persistent_5xx_stops_after_max_attempts():
    client, _, sleeps = make_client(lambda *a: answer(500, {"message": "boom"}), max_attempts=3)
    with pytest.raises(ServerError) as info:
        await client.getitem("/repos/o/r/git/trees/abc")
    assert len(client.sent) == 3
    assert sleeps.seconds == [1.0, 2.0]
    assert "500" in str(info.value) and "/repos/o/r/git/trees/abc" in str(info.value)


async def test_5xx_on_non_idempotent_post_is_not_retried():
    client, _, sleeps = make_client(lambda *a: answer(502))
    with pytest.raises(ServerError):
        await client.post("/repos/o/r/pulls", data={"title": "t"})
    assert len(client.sent) == 1 and sleeps.seconds == []


async def test_5xx_on_content_addressed_post_is_retried():
    client, _, _ = make_client(script(answer(502), answer(201, {"sha": "t1"})))
    assert await client.post("/repos/o/r/git/trees", data={"tree": []}) == {"sha": "t1"}
    assert len(client.sent) == 2


async def test_secondary_rate_limit_honours_retry_after_even_for_posts():
    limited = answer(
        403,
        {"message": "You have exceeded a secondary rate limit. Please wait."},
        retry_after="7",
    )
    client, _, sleeps = make_client(script(limited, answer(201, {"number": 3})))
    assert await client.post("/repos/o/r/pulls", data={}) == {"number": 3}
    assert sleeps.seconds == [7.0]


async def test_secondary_rate_limit_without_retry_after_waits_a_minute_then_longer():
    limited = answer(429, {"message": "You have exceeded a secondary rate limit"})
    client, _, sleeps = make_client(script(limited, limited, answer(200, {})))
    await client.getitem("/x")
    assert sleeps.seconds == [60.0, 120.0]


async def test_exhausted_primary_limit_waits_until_reset():
    exhausted = answer(
        403,
        {"message": "API rate limit exceeded"},
        x_ratelimit_limit="5000",
        x_ratelimit_remaining="0",
        x_ratelimit_reset=str(int(NOW + 30)),
    )
    now = [NOW]

    async def sleep(seconds: float) -> None:  # time passes while the client waits
        sleeps.seconds.append(seconds)
        now[0] += seconds

    sleeps = Sleeps()
    client, _, _ = make_client(script(exhausted, answer(200, {})), sleep=sleep, clock=lambda: now[0])
    await client.getitem("/x")
    assert sleeps.seconds == [31.0]


async def test_rate_limit_reset_beyond_max_wait_gives_up_with_rate_limited():
    exhausted = answer(
        403,
        {"message": "API rate limit exceeded"},
        x_ratelimit_limit="5000",
        x_ratelimit_remaining="0",
        x_ratelimit_reset=str(int(NOW + 3000)),
    )
    client, _, sleeps = make_client(lambda *a: exhausted, max_wait=600)
    with pytest.raises(RateLimited):
        await client.getitem("/x")
    assert sleeps.seconds == [] and len(client.sent) == 1


async def test_connection_errors_on_get_are_retried_then_reported():
    client, _, sleeps = make_client(lambda *a: aiohttp.ClientConnectionError("refused"))
    with pytest.raises(Unreachable) as info:
        await client.getitem("/repos/o/r")
    assert len(client.sent) == 4 and sleeps.seconds == [1.0, 2.0, 4.0]
    assert "/repos/o/r" in str(info.value)


async def test_connection_error_on_post_is_not_repeated():
    client, _, _ = make_client(lambda *a: aiohttp.ClientConnectionError("reset"))
    with pytest.raises(Unreachable):
        await client.post("/repos/o/r/issues/1/comments", data={"body": "x"})
    assert len(client.sent) == 1


# -- Retry-After, against the simulator ----------------------------------------------
#
# ``bot.retry_after`` reads the header for both clients; the registry client's side is
# in tests/registry/test_faults.py.

SIM_REPO = "octo-org/app"


@dataclass
class SimClient:
    sim: Any
    gh: GitHubClient
    sleeps: Sleeps


@pytest.fixture
async def sim_client(github_sim, app_key):
    """A GitHubClient for an installation on the simulator; its clock stands still at NOW."""
    sim = github_sim.sim
    app_id, private_pem, public_pem = app_key
    sim.register_app(app_id=app_id, public_key_pem=public_pem)
    installation = sim.create_installation(app_id, account="octo-org", repositories=[SIM_REPO])
    sim.create_repository(SIM_REPO, files={"a.yaml": b"a"})
    creds = AppCredentials(app_id=str(app_id), private_key=private_pem, base_url=github_sim.url)
    async with aiohttp.ClientSession() as session:
        sleeps = Sleeps()
        gh = GitHubClient(
            session,
            creds=creds,
            tokens=AppClient(session, creds=creds).token_cache(),  # real time: the JWT
            installation_id=installation,
            write_interval=0.0,
            sleep=sleeps,
            clock=lambda: NOW,
        )
        yield SimClient(sim, gh, sleeps)


def http_date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


@pytest.mark.parametrize(
    "retry_after",
    [pytest.param("7", id="delta-seconds"), pytest.param(http_date(NOW + 7), id="http-date")],
)
async def test_retry_after_in_either_form_is_honoured(sim_client, retry_after):
    sim_client.sim.inject(
        method="GET",
        route="/repos/{owner}/{repo}",
        status=403,
        headers={"retry-after": retry_after},
    )
    repository = await sim_client.gh.getitem(f"/repos/{SIM_REPO}")
    assert repository["full_name"] == SIM_REPO
    assert sim_client.sleeps.seconds == [7.0]


async def test_retry_after_date_in_the_past_retries_at_once(sim_client):
    sim_client.sim.inject(
        method="GET",
        route="/repos/{owner}/{repo}",
        status=429,
        headers={"retry-after": http_date(NOW - 3600)},
    )
    assert (await sim_client.gh.getitem(f"/repos/{SIM_REPO}"))["full_name"] == SIM_REPO
    assert sim_client.sleeps.seconds == [0.0]


@pytest.mark.parametrize(
    "retry_after",
    [pytest.param("3600", id="delta-seconds"), pytest.param(http_date(NOW + 3600), id="http-date")],
)
async def test_retry_after_beyond_max_wait_gives_up_with_rate_limited(sim_client, retry_after):
    sim_client.gh.max_wait = 600
    sim_client.sim.inject(
        method="GET",
        route="/repos/{owner}/{repo}",
        status=403,
        headers={"retry-after": retry_after},
        times=None,
    )
    with pytest.raises(RateLimited):
        await sim_client.gh.getitem(f"/repos/{SIM_REPO}")
    assert sim_client.sleeps.seconds == []


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("0", 0.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-5", None),
        ("soon", None),
        ("Wed, 99 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_seconds_reads_delta_seconds(value, seconds):
    assert retry_after_seconds(value, now=NOW) == seconds


RFC_DATE_UNIX = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", 120.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", 120.0),  # UTC without saying so
        ("Wed, 21 Oct 2015 09:28:00 +0200", 120.0),
        ("Wed, 21 Oct 2015 07:26:00 GMT", 0.0),  # already past: no wait
    ],
)
def test_retry_after_seconds_reads_http_dates(value, seconds):
    assert retry_after_seconds(value, now=RFC_DATE_UNIX - 120) == seconds


# -- pacing ----------------------------------------------------------------------------


async def test_writes_are_spaced_by_write_interval_and_reads_are_not():
    client, _, sleeps = make_client(lambda *a: answer(200, {}), write_interval=1.0)
    await client.getitem("/a")
    await client.getitem("/b")
    assert sleeps.seconds == []
    await client.post("/x", data={})
    await client.post("/y", data={})
    assert len(sleeps.seconds) == 1 and 0.5 < sleeps.seconds[0] <= 1.0


async def test_concurrent_writes_go_one_at_a_time():
    client, _, _ = make_client(lambda *a: answer(201, {}), write_interval=0.0)
    await asyncio.gather(*(client.post(f"/w{i}", data={}) for i in range(5)))
    assert client.max_in_flight_writes == 1
    assert len(client.sent) == 5


async def test_concurrent_reads_may_overlap():
    client, _, _ = make_client(lambda *a: answer(200, {}))
    await asyncio.gather(*(client.getitem(f"/r{i}") for i in range(5)))
    assert len(client.sent) == 5


# -- conditional requests --------------------------------------------------------------


async def test_etag_cache_answers_304_with_the_cached_body():
    def handler(method, url, headers, body):
        if headers.get("if-none-match") == '"v1"':
            return answer(304, etag='"v1"')
        return answer(200, {"items": [1, 2]}, etag='"v1"')

    client, _, _ = make_client(handler)
    first = await client.getitem("/repos/o/r/pulls")
    first["items"].append("mutated by caller")
    second = await client.getitem("/repos/o/r/pulls")
    assert second == {"items": [1, 2]}
    assert client.sent[1].headers["if-none-match"] == '"v1"'


async def test_self_made_conditional_request_maps_304_to_none_without_a_cache_entry():
    client, _, _ = make_client(script(answer(304)))
    result = await client.get_if_none_match(
        "/repos/o/r/commits/main", etag='"abc"', accept="application/vnd.github.sha"
    )
    assert result is None
    assert client.sent[0].headers["if-none-match"] == '"abc"'
    assert client.sent[0].headers["accept"] == "application/vnd.github.sha"


async def test_the_conditional_request_retries_refreshes_and_fails_like_any_other():
    """The head check is sent without gidgethub's request loop: its retries (5xx,
    secondary limit), token refresh (401) and errors must still be everyone's."""
    sha = "application/vnd.github.sha"
    client, minter, sleeps = make_client(
        script(
            answer(502, {"message": "Bad gateway"}),
            answer(401, {"message": "Bad credentials"}),
            answer(403, {"message": "You have exceeded a secondary rate limit."}, retry_after="3"),
            answer(200, "c0ffee", content_type=sha),
        )
    )
    assert await client.get_if_none_match("/repos/o/r/commits/main", etag='"a"', accept=sha) == (
        "c0ffee"
    )
    assert [s.headers["authorization"] for s in client.sent] == [
        "token ghs_secret1",
        "token ghs_secret1",
        "token ghs_secret2",
        "token ghs_secret2",
    ]
    assert sleeps.seconds[1:] == [3.0] and len(minter.calls) == 2
    assert all(s.url == BASE + "/repos/o/r/commits/main" for s in client.sent)

    client, _, _ = make_client(script(answer(404, {"message": "Not Found"})))
    with pytest.raises(NotFound) as info:
        await client.get_if_none_match("/repos/o/gone/commits/main", etag='"a"')
    assert "GET /repos/o/gone/commits/main" in str(info.value)
    client, _, _ = make_client(script(*[answer(502, {"message": "Bad gateway"})] * 4))
    with pytest.raises(ServerError):
        await client.get_if_none_match("/repos/o/r/commits/main", etag='"a"')
    assert len(client.sent) == 4


async def test_self_made_conditional_request_is_not_overridden_by_a_cached_etag():
    def handler(method, url, headers, body):
        if headers.get("accept") == "application/vnd.github.sha":
            if headers.get("if-none-match") == '"sha1"':
                return answer(304)
            return answer(200, "sha2", content_type="application/vnd.github.sha")
        return answer(200, {"sha": "json"}, etag='"json-etag"')

    client, _, _ = make_client(handler)
    await client.getitem("/repos/o/r/commits/main")  # cached JSON representation
    assert (
        await client.get_if_none_match(
            "/repos/o/r/commits/main", etag='"sha1"', accept="application/vnd.github.sha"
        )
        is None
    )
    assert client.sent[1].headers["if-none-match"] == '"sha1"'
    changed = await client.get_if_none_match(
        "/repos/o/r/commits/main", etag='"old"', accept="application/vnd.github.sha"
    )
    assert changed == "sha2"
    # The JSON entry is still intact for the plain request.
    await client.getitem("/repos/o/r/commits/main")
    assert client.sent[-1].headers["if-none-match"] == '"json-etag"'


async def test_caches_are_per_installation():
    def handler(method, url, headers, body):
        return answer(200, {"n": 1}, etag='"e"')

    minter = Minter()
    tokens = TokenCache(minter, clock=lambda: NOW)
    a, _, _ = make_client(handler, tokens=tokens)
    b, _, _ = make_client(handler, tokens=tokens)
    await a.getitem("/installation/repositories")
    await b.getitem("/installation/repositories")
    assert "if-none-match" not in b.sent[0].headers


# -- raw downloads ---------------------------------------------------------------------


async def test_get_bytes_drops_authorization_on_redirect_to_another_host():
    def handler(method, url, headers, body):
        if url.startswith(BASE):
            return answer(302, location="https://codeload.example.test/o/r/tar.gz/abc")
        return 200, CIMultiDict({"content-type": "application/x-gzip"}), b"\x1f\x8b binary"

    client, _, _ = make_client(handler)
    assert await client.get_bytes("/repos/o/r/tarball/abc") == b"\x1f\x8b binary"
    assert "authorization" in client.sent[0].headers
    assert client.sent[1].url == "https://codeload.example.test/o/r/tar.gz/abc"
    assert "authorization" not in client.sent[1].headers


async def test_get_bytes_keeps_authorization_on_same_origin_redirect():
    def handler(method, url, headers, body):
        if url.endswith("/first"):
            return answer(301, location="/second")
        return 200, CIMultiDict(), b"payload"

    client, _, _ = make_client(handler)
    assert await client.get_bytes("/first") == b"payload"
    assert client.sent[1].url == f"{BASE}/second"
    assert client.sent[1].headers["authorization"].startswith("token ")


async def test_get_bytes_maps_errors():
    client, _, _ = make_client(script(answer(404, {"message": "Not Found"})))
    with pytest.raises(NotFound):
        await client.get_bytes("/repos/o/r/tarball/abc")


# -- error mapping ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"message": "Not Found"}, NotFound),
        (409, {"message": "Git Repository is empty."}, EmptyRepository),
        (403, {"message": "Resource not accessible by integration"}, PermissionDenied),
        (422, {"message": "Reference already exists"}, ValidationFailed),
        (410, {"message": "Gone"}, GitHubError),
    ],
)
async def test_errors_are_mapped_to_our_types(status, body, error):
    client, _, _ = make_client(lambda *a: answer(status, body))
    with pytest.raises(error) as info:
        await client.getitem("/repos/o/r/git/refs/heads/x")
    assert info.value.status == status
    assert body["message"] in str(info.value)
    assert "GET /repos/o/r/git/refs/heads/x" in str(info.value)


async def test_validation_errors_keep_githubs_error_list():
    details = [{"resource": "PullRequest", "code": "custom", "message": "No commits between"}]
    client, _, _ = make_client(
        lambda *a: answer(422, {"message": "Validation Failed", "errors": details})
    )
    with pytest.raises(ValidationFailed) as info:
        await client.post("/repos/o/r/pulls", data={})
    assert info.value.errors == details


async def test_getstatus_still_returns_the_status():
    client, _, _ = make_client(script(answer(404, {"message": "Not Found"})))
    assert await client.getstatus("/repos/o/r") == 404


# -- the app client --------------------------------------------------------------------


class FakeTransportAppClient(AppClient):
    def __init__(self, handler: Handler, **kwargs: Any) -> None:
        self.handler = handler
        self.sent: list[Sent] = []
        super().__init__(None, **kwargs)  # type: ignore[arg-type]

    async def _send(self, method, url, headers, body, *, allow_redirects=True):
        self.sent.append(Sent(method, url, dict(headers), body))
        return self.handler(method, url, headers, body)


async def test_app_client_mints_tokens_with_a_valid_app_jwt():
    pem = private_key_pem()
    creds = AppCredentials(app_id="42", private_key=pem, base_url=BASE)

    def handler(method, url, headers, body):
        return answer(201, {"token": "ghs_minted", "expires_at": "2030-01-01T00:00:00Z"})

    app = FakeTransportAppClient(handler, creds=creds, clock=lambda: NOW)
    tokens = app.token_cache()
    assert await tokens.token(99) == "ghs_minted"
    (sent,) = app.sent
    assert sent.method == "POST"
    assert sent.url == f"{BASE}/app/installations/99/access_tokens"
    assert sent.body == b""
    scheme, _, token = sent.headers["authorization"].partition(" ")
    assert scheme == "bearer"
    public = serialization.load_pem_private_key(pem.encode(), None).public_key()
    claims = jwt.decode(
        token, public, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert claims == {"iat": int(NOW) - 60, "exp": int(NOW) + 540, "iss": "42"}


# -- secrets ---------------------------------------------------------------------------


async def test_tokens_never_reach_logs_errors_or_reprs(caplog):
    caplog.set_level(logging.DEBUG)
    client, minter, _ = make_client(
        script(
            answer(401, {"message": "Bad credentials"}),
            answer(502),
            answer(401, {"message": "Bad credentials"}),
        )
    )
    with pytest.raises(GitHubError) as info:
        await client.getitem("/repos/o/r")
    texts = [caplog.text, str(info.value), repr(info.value), repr(client), repr(client._tokens)]
    for n in range(1, len(minter.calls) + 1):
        for text in texts:
            assert f"ghs_secret{n}" not in text
    assert len(minter.calls) >= 2
