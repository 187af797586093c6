"""Cross-cutting simulator behaviour: rate limits, conditional requests, pagination, faults,
path encoding, and compatibility with gidgethub (the client library the bot uses)."""

from __future__ import annotations

import time

import aiohttp
import gidgethub
import pytest
from gidgethub import apps
from gidgethub.aiohttp import GitHubAPI

from tests.githubsim.testkit import PERMISSIONS, Api, app_jwt

REPO = "octo-org/app"
TREES = "GET /repos/{owner}/{repo}/git/trees/{tree_sha}"


@pytest.fixture
async def env(github_sim, app_key):
    app_id, private_pem, public_pem = app_key
    sim = github_sim.sim
    sim.register_app(app_id, public_pem, permissions=dict(PERMISSIONS))
    inst = sim.create_installation(app_id, "octo-org", None)  # all repositories of octo-org
    sim.create_repository(REPO, {"a.yaml": b"a: 1\n"})
    async with aiohttp.ClientSession() as session:
        yield sim, Api(session, github_sim.url, sim.issue_token(inst)), session, inst


async def test_rate_limit_headers_count_and_exhaust(env):
    sim, api, _, inst = env
    sim.rate_limit = 3
    first = await api.get(f"/repos/{REPO}")
    assert first.headers["x-ratelimit-limit"] == "3"
    assert first.headers["x-ratelimit-remaining"] == "2"
    assert first.headers["x-ratelimit-used"] == "1"
    assert first.headers["x-ratelimit-resource"] == "core"
    reset = int(first.headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 3601  # epoch seconds, not milliseconds
    await api.get("/rate_limit")  # not counted
    await api.get(f"/repos/{REPO}")
    await api.get(f"/repos/{REPO}")
    over = await api.get(f"/repos/{REPO}")
    assert over.status == 403 and over.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit exceeded" in over.body["message"]
    new_token = sim.issue_token(inst)  # same installation: same budget
    assert (await api.get(f"/repos/{REPO}", token=new_token)).status == 403
    limits = await api.get("/rate_limit")
    assert limits.body["resources"]["core"]["remaining"] == 0
    start = sim.clock()
    sim.clock = lambda: start + 3700
    assert (await api.get(f"/repos/{REPO}", token=sim.issue_token(inst))).status == 200


async def test_etags_are_per_credential_and_representation(env):
    sim, api, _, inst = env
    other = sim.create_installation(1, "octo-org", [REPO])
    mine = await api.get(f"/repos/{REPO}/git/trees/main")
    theirs = await api.get(f"/repos/{REPO}/git/trees/main", token=sim.issue_token(other))
    assert mine.body == theirs.body and mine.headers["ETag"] != theirs.headers["ETag"]
    assert mine.headers["ETag"].startswith('"')  # strong
    hit = await api.get(f"/repos/{REPO}/git/trees/main",
                        headers={"If-None-Match": mine.headers["ETag"]})  # fmt: skip
    assert hit.status == 304 and hit.body == b""
    assert sim.counters[TREES + " 304"] == 1
    sim.push(REPO, "main", {"b.yaml": b"b\n"})
    miss = await api.get(f"/repos/{REPO}/git/trees/main",
                         headers={"If-None-Match": mine.headers["ETag"]})  # fmt: skip
    assert miss.status == 200


async def test_pagination_with_link_headers(env):
    sim, api, _, _ = env
    for i in range(5):
        sim.create_repository(f"octo-org/r{i}", {"f": b"x"})
    first = await api.get("/installation/repositories?per_page=2")
    assert first.body["total_count"] == 6 and len(first.body["repositories"]) == 2
    assert 'rel="next"' in first.headers["Link"] and 'rel="last"' in first.headers["Link"]
    names, url = [], "/installation/repositories?per_page=2"
    while url:
        page = await api.get(url)
        names += [r["full_name"] for r in page.body["repositories"]]
        links = {p.split("; ")[1]: p.split("; ")[0].strip("<> ") for p in
                 page.headers.get("Link", "").split(", ") if p}  # fmt: skip
        url = links.get('rel="next"')
    assert sorted(names) == sorted([REPO] + [f"octo-org/r{i}" for i in range(5)])
    capped = await api.get("/installation/repositories?per_page=500")
    assert len(capped.body["repositories"]) == 6 and "Link" not in capped.headers


async def test_injected_faults(env):
    sim, api, _, _ = env
    sim.inject(method="GET", route="/repos/{owner}/{repo}/git/trees/{tree_sha}", status=429,
               headers={"retry-after": "1"}, times=1)  # fmt: skip
    limited = await api.get(f"/repos/{REPO}/git/trees/main")
    assert limited.status == 429 and limited.headers["retry-after"] == "1"
    assert "secondary rate limit" in limited.body["message"]
    assert (await api.get(f"/repos/{REPO}/git/trees/main")).status == 200
    sim.inject(status=502, times=2)
    assert (await api.get(f"/repos/{REPO}")).status == 502
    assert (await api.get("/rate_limit")).status == 502
    assert (await api.get(f"/repos/{REPO}")).status == 200
    sim.inject(route="/repos/{owner}/{repo}", status=None, delay=0.2)
    started = time.monotonic()
    assert (await api.get(f"/repos/{REPO}")).status == 200
    assert time.monotonic() - started >= 0.2
    assert sim.counters[TREES] == 2


async def test_multi_segment_parameters_accept_slashes_and_percent_encoding(env):
    sim, api, _, _ = env
    sim.push(REPO, "feature/x", {"dir/sub/f.yaml": b"f\n"})
    for ref in ("feature/x", "feature%2Fx"):
        assert (await api.get(f"/repos/{REPO}/git/trees/{ref}?recursive=1")).status == 200
        assert (await api.get(f"/repos/{REPO}/branches/{ref}")).body["name"] == "feature/x"
        assert (await api.get(f"/repos/{REPO}/git/ref/heads/{ref}")).status == 200
    file = await api.get(f"/repos/{REPO}/contents/dir%2Fsub%2Ff.yaml?ref=feature/x")
    assert file.body["path"] == "dir/sub/f.yaml"


async def test_unknown_route_and_bad_json_are_github_errors(env):
    _, api, _, _ = env
    missing = await api.get("/repos/octo-org/app/nothing-here")
    assert missing.status == 404 and missing.body["message"] == "Not Found"
    assert "documentation_url" in missing.body
    bad = await api.post(f"/repos/{REPO}/git/blobs", raw=b"{not json",
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert bad.status == 400 and bad.body["message"] == "Problems parsing JSON"


async def test_gidgethub_end_to_end(github_sim, app_key):
    """The bot's library against the simulator: token exchange, getiter, sha media type."""
    app_id, private_pem, public_pem = app_key
    sim = github_sim.sim
    sim.register_app(app_id, public_pem)
    inst = sim.create_installation(app_id, "octo-org", None)
    for i in range(3):
        sim.create_repository(f"octo-org/r{i}", {"f": b"x"})
    async with aiohttp.ClientSession() as session:
        gh = GitHubAPI(session, "sim-test", base_url=github_sim.url)
        token = await apps.get_installation_access_token(
            gh, installation_id=inst, app_id=str(app_id), private_key=private_pem
        )
        gh = GitHubAPI(session, "sim-test", oauth_token=token["token"], base_url=github_sim.url,
                       cache={})  # fmt: skip
        names = [r["full_name"] async for r in gh.getiter(
            "/installation/repositories?per_page=2", iterable_key="repositories")]  # fmt: skip
        assert sorted(names) == ["octo-org/r0", "octo-org/r1", "octo-org/r2"]
        sha = await gh.getitem("/repos/octo-org/r0/commits/{+ref}", {"ref": "main"},
                               accept="application/vnd.github.sha")  # fmt: skip
        assert sha == sim.branch_sha("octo-org/r0", "main")
        await gh.getitem("/repos/octo-org/r0/git/trees/main")
        await gh.getitem("/repos/octo-org/r0/git/trees/main")  # served from cache via 304
        assert sim.counters[TREES + " 304"] == 1
        assert gh.rate_limit.remaining < gh.rate_limit.limit
        with pytest.raises(gidgethub.InvalidField) as exc:
            await gh.post("/repos/octo-org/r0/git/refs",
                          data={"ref": "refs/heads/main", "sha": sha})  # fmt: skip
        assert "Reference already exists" in str(exc.value)
        with pytest.raises(gidgethub.BadRequest) as exc:
            await gh.getitem("/repos/octo-org/elsewhere")
        assert exc.value.status_code == 404
        jwt_token = app_jwt(app_id, private_pem)
        installs = [i async for i in gh.getiter("/app/installations", jwt=jwt_token)]
        assert [i["id"] for i in installs] == [inst]


async def test_api_version_header(env):
    _, api, _, _ = env
    ok = await api.get(f"/repos/{REPO}", headers={"X-GitHub-Api-Version": "2022-11-28"})
    assert ok.status == 200
    bad = await api.get(f"/repos/{REPO}", headers={"X-GitHub-Api-Version": "1999-01-01"})
    assert bad.status == 400 and "not supported" in bad.body["message"]


async def test_down_scoped_token_sees_only_named_repositories(env, app_key):
    sim, api, _, inst = env
    app_id, private_pem, _ = app_key
    sim.create_repository("octo-org/other", {"f": b"x"})
    reply = await api.post(f"/app/installations/{inst}/access_tokens",
                           {"repositories": ["app"], "permissions": {"contents": "read"}},
                           token=app_jwt(app_id, private_pem))  # fmt: skip
    assert reply.status == 201 and reply.body["permissions"] == {"contents": "read"}
    token = reply.body["token"]
    assert (await api.get(f"/repos/{REPO}/git/trees/main", token=token)).status == 200
    assert (await api.get("/repos/octo-org/other", token=token)).status == 404
    write = await api.post(f"/repos/{REPO}/git/blobs", {"content": "x"}, token=token)
    assert write.status == 403
    too_much = await api.post(f"/app/installations/{inst}/access_tokens",
                              {"permissions": {"administration": "write"}},
                              token=app_jwt(app_id, private_pem))  # fmt: skip
    assert too_much.status == 422


async def test_person_push_rules_and_pr_follows_its_branch(env):
    sim, api, _, _ = env
    first = sim.push(REPO, "bot", {"x.yaml": b"1\n"})
    pr = await api.post(f"/repos/{REPO}/pulls", {"title": "t", "head": "octo-org:bot",
                                                 "base": "main"})  # fmt: skip
    second = sim.push(REPO, "bot", {"x.yaml": b"2\n"}, author=("Bob", "bob@example.com"))
    fetched = await api.get(f"/repos/{REPO}/pulls/{pr.body['number']}")
    assert fetched.body["head"]["sha"] == second != first
    with pytest.raises(ValueError, match="fast forward"):
        sim.push(REPO, "bot", {"x.yaml": b"3\n"}, parent=first)
    sim.push(REPO, "bot", {"x.yaml": b"3\n"}, parent=first, force=True)
    sim.delete_branch(REPO, "bot")
    assert [p["state"] for p in sim.pulls(REPO)] == ["closed"]


async def test_a_lost_answer_carries_the_write_out_and_drops_the_connection(env):
    sim, api, _, _ = env
    sim.inject(method="POST", route="/repos/{owner}/{repo}/git/refs", status=None, lose_answer=True)
    head = sim.branch_sha(REPO, "main")
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/made", "sha": head})
    assert sim.branch_sha(REPO, "made") == head  # it happened all the same
    again = await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/made", "sha": head})
    assert again.status == 422  # "Reference already exists": answered normally again
