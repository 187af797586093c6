"""Replay real recorded GitHub exchanges (octokit/fixtures) through our client.

The transport seam serves each recorded answer for the recorded method and
path, in order, and checks what our client sent against what was recorded.
The recordings' ``x-ratelimit-reset`` is in milliseconds (a normalisation
artefact); GitHub sends seconds, so the seam converts it.
"""

from __future__ import annotations

import datetime
import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from bot.github.auth import AppCredentials, TokenCache
from bot.github.client import GitHubClient
from bot.github.errors import ValidationFailed
from bot.github.pulls import Pulls
from bot.github.repo import Repo
from bot.github.trees import BlobCache
from tests.datapaths import GITHUB_DATA

SCENARIOS = GITHUB_DATA / "fixtures" / "scenarios" / "api.github.com"
FIXTURE_FILES = sorted(SCENARIOS.glob("*/normalized-fixture.json"))
RECORDED_TOKEN = "0000000000000000000000000000000000000001"


def load(scenario: str) -> list[dict[str, Any]]:
    return json.loads((SCENARIOS / scenario / "normalized-fixture.json").read_text())


def _response_headers(recorded: dict[str, Any]) -> CIMultiDict:
    headers = CIMultiDict((k, str(v)) for k, v in recorded.items())
    reset = headers.get("x-ratelimit-reset")
    if reset is not None and int(reset) > 10**11:  # milliseconds → seconds
        headers["x-ratelimit-reset"] = str(int(reset) // 1000)
    return headers


def _response_body(exchange: dict[str, Any]) -> bytes:
    response = exchange.get("response")
    if response in (None, ""):
        return b""
    if isinstance(response, str):
        return response.encode()
    return json.dumps(response).encode()


class ReplayClient(GitHubClient):
    """GitHubClient whose transport serves a recording, strictly in recorded order per path."""

    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self.queues: dict[tuple[str, str], deque] = defaultdict(deque)
        for exchange in exchanges:
            url = exchange["scope"].replace(":443", "") + exchange["path"]
            self.queues[(exchange["method"].upper(), url)].append(exchange)
        self.served: list[dict[str, Any]] = []

        async def mint(installation_id: int) -> dict[str, Any]:  # the token endpoint
            return {"token": RECORDED_TOKEN, "expires_at": "2099-01-01T00:00:00Z"}

        super().__init__(
            None,  # type: ignore[arg-type]
            creds=AppCredentials(app_id="1", private_key="unused"),
            tokens=TokenCache(mint),
            installation_id=1,
            write_interval=0.0,
            sleep=_no_sleep,
        )

    async def _send(self, method, url, headers, body, *, allow_redirects=True):
        queue = self.queues.get((method, url))
        assert queue, f"our client sent {method} {url}, which the recording does not have"
        exchange = queue.popleft()
        recorded = exchange["reqheaders"]
        assert headers["authorization"] == recorded["authorization"]
        assert headers["accept"] == recorded["accept"]
        if exchange.get("body") not in (None, ""):
            sent = json.loads(body)
            # What was recorded must be what we sent; we may add explicit defaults.
            assert {k: sent.get(k) for k in exchange["body"]} == exchange["body"]
        self.served.append(exchange)
        return (
            exchange["status"],
            _response_headers(exchange["headers"]),
            _response_body(exchange),
        )

    def unserved(self) -> list[str]:
        return [f"{m} {u}" for (m, u), q in self.queues.items() for _ in q]


async def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"the replay should not need to wait ({seconds} s)")


async def _replay_generically(client: ReplayClient, exchange: dict[str, Any]) -> Any:
    method = exchange["method"].upper()
    accept = exchange["reqheaders"]["accept"]
    path = exchange["path"]
    body = exchange.get("body")
    if method == "GET":
        return await client.getitem(path, accept=accept)
    if method == "DELETE":
        return await client.delete(path, accept=accept)
    call = {"POST": client.post, "PATCH": client.patch, "PUT": client.put}[method]
    return await call(path, data=body if body not in (None, "") else b"", accept=accept)


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.parent.name)
async def test_every_recorded_exchange_decodes_through_our_client(fixture: Path):
    exchanges = json.loads(fixture.read_text())
    client = ReplayClient(exchanges)
    for exchange in exchanges:
        if exchange["status"] >= 400:
            with pytest.raises(ValidationFailed if exchange["status"] == 422 else Exception):
                await _replay_generically(client, exchange)
            continue
        data = await _replay_generically(client, exchange)
        expected = exchange.get("response")
        assert data == (None if expected == "" else expected)
        rate = client.rate_limit
        assert rate is not None
        assert rate.limit == int(exchange["headers"]["x-ratelimit-limit"])
        assert rate.remaining == int(exchange["headers"]["x-ratelimit-remaining"])
        assert rate.reset_datetime == datetime.datetime(2017, 10, 10, 16, tzinfo=datetime.UTC)
    assert client.unserved() == []
    assert client.request_count == len(exchanges)


async def test_pagination_follows_recorded_link_headers_across_five_pages():
    exchanges = load("paginate-issues")
    client = ReplayClient(exchanges)
    numbers = [
        issue["number"]
        async for issue in client.getiter(
            "/repos/octokit-fixture-org/paginate-issues/issues?per_page=3"
        )
    ]
    expected = [issue["number"] for page in exchanges for issue in page["response"]]
    assert numbers == expected
    assert len(client.served) == 5
    # Link URLs switch to /repositories/{id}/...: followed verbatim.
    assert client.served[-1]["path"] == "/repositories/1000/issues?per_page=3&page=5"


async def test_validation_error_keeps_field_details():
    client = ReplayClient(load("errors"))
    with pytest.raises(ValidationFailed) as info:
        await client.post(
            "/repos/{owner}/{repo}/labels",
            {"owner": "octokit-fixture-org", "repo": "errors"},
            data={"name": "foo", "color": "invalid"},
        )
    assert info.value.status == 422
    assert info.value.errors == [{"resource": "Label", "code": "invalid", "field": "color"}]
    assert "POST /repos/octokit-fixture-org/errors/labels" in str(info.value)
    assert "color" in str(info.value)


async def test_repository_default_branch_from_the_recording():
    exchanges = load("get-repository")
    client = ReplayClient(exchanges)
    repo = Repo(client, "octokit-fixture-org/hello-world", blobs=BlobCache())
    assert await repo.default_branch() == exchanges[0]["response"]["default_branch"]


async def test_raw_media_type_decodes_to_text():
    client = ReplayClient(load("get-content"))
    listing = await client.getitem("/repos/octokit-fixture-org/hello-world/contents/")
    assert {entry["name"] for entry in listing} >= {"README.md"}
    raw = await client.getitem(
        "/repos/octokit-fixture-org/hello-world/contents/README.md",
        accept="application/vnd.github.v3.raw",
    )
    assert raw == "# hello-world"


async def test_branch_create_and_fast_forward_through_repo():
    exchanges = load("git-refs")
    client = ReplayClient(exchanges)
    repo = Repo(client, "octokit-fixture-org/git-refs", blobs=BlobCache())
    await client.getitem("/repos/octokit-fixture-org/git-refs/git/refs/")
    await repo.set_branch(
        "test", "0000000000000000000000000000000000000002", expected=None, force=False
    )
    await repo.fast_forward("test", "0000000000000000000000000000000000000001")
    refs = await client.getitem("/repos/octokit-fixture-org/git-refs/git/refs/")
    assert "refs/heads/test" in {ref["ref"] for ref in refs}
    await client.delete("/repos/octokit-fixture-org/git-refs/git/refs/heads/test")
    assert client.unserved() == []


async def test_labels_are_added_in_one_request_through_pulls():
    exchanges = load("add-labels-to-issue")
    client = ReplayClient(exchanges)
    issue = await client.post(
        "/repos/octokit-fixture-org/add-labels-to-issue/issues",
        data={"title": "Issue without a label"},
    )
    pulls = Pulls(client, "octokit-fixture-org/add-labels-to-issue")
    await pulls.set_labels(issue["number"], ["Foo", "bAr", "baZ"])
    assert client.unserved() == []
    assert client.request_count == 2
