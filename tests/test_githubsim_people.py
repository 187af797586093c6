"""People distinct from Apps: user accounts act through the Python API, the admin API and
personal tokens; what they do is recorded under their name and sent with them as
`sender`, while an installation token acts as the App's `<slug>[bot]` user."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.githubsim.testkit import PERMISSIONS, Api, Receiver

REPO = "octo-org/app"
SECRET = "s3cret"


@pytest.fixture
async def env(github_sim, app_key):
    app_id, _, public_pem = app_key
    sim = github_sim.sim
    async with Receiver(SECRET) as receiver, aiohttp.ClientSession() as session:
        sim.register_app(app_id, public_pem, permissions=dict(PERMISSIONS),
                         webhook_url=receiver.url, webhook_secret=SECRET)  # fmt: skip
        sim.create_repository(REPO, {"a.txt": b"a\n"})
        inst = sim.create_installation(app_id, "octo-org", [REPO])
        await sim.wait_deliveries()
        receiver.received.clear()
        yield sim, receiver, Api(session, github_sim.url, sim.issue_token(inst)), session


async def test_users_and_the_apps_bot_user(env):
    sim, receiver, api, _ = env
    alice = sim.create_user("alice", name="Alice Liddell", email="alice@wonder.land")
    assert alice["login"] == "alice" and alice["type"] == "User" and isinstance(alice["id"], int)
    assert sim.create_user("alice")["id"] == alice["id"]  # stable, and an upsert
    with pytest.raises(ValueError):
        sim.create_user("bad login")
    sha = sim.push(REPO, "alice-branch", {"b.txt": b"b\n"}, as_user="alice")
    assert sim.repo(REPO).git.commit_info(sha).author == b"Alice Liddell <alice@wonder.land>"
    number = sim.open_pull(REPO, "alice-branch", title="From Alice", as_user="alice")
    sim.push(REPO, "bot-branch", {"c.txt": b"c\n"})
    bot_pr = await api.post(f"/repos/{REPO}/pulls", {"title": "Bot", "head": "octo-org:bot-branch",
                                                     "base": "main"})  # fmt: skip
    people_pr = (await api.get(f"/repos/{REPO}/pulls/{number}")).body
    assert (people_pr["user"]["login"], people_pr["user"]["type"]) == ("alice", "User")
    assert people_pr["user"]["id"] == alice["id"]
    bot = bot_pr.body["user"]
    assert (bot["login"], bot["type"]) == ("image-automation[bot]", "Bot")
    await sim.wait_deliveries()
    senders = [(r.event, r.action, r.payload["sender"]["login"]) for r in receiver.received]
    assert senders == [("push", None, "alice"), ("pull_request", "opened", "alice"),
                       ("push", None, "alice"), ("pull_request", "opened", "image-automation[bot]")]  # fmt: skip


async def test_push_without_as_user_acts_as_the_author(env):
    sim, receiver, _, _ = env
    sim.create_user("bob", name="Bob", email="bob@example.com")
    sim.push(REPO, "main", {"x": b"1"})  # default author Alice → user alice
    sim.push(REPO, "main", {"x": b"2"}, author=("Robert", "bob@example.com"))
    sim.push(REPO, "main", {"x": b"3"}, author=("Carol C.", "carol@corp.example"))
    await sim.wait_deliveries()
    assert [r.payload["sender"]["login"] for r in receiver.received] == ["alice", "bob", "carol"]
    assert receiver.received[2].payload["head_commit"]["author"]["name"] == "Carol C."


async def test_a_person_closes_reopens_comments_and_merges(env):
    sim, receiver, api, _ = env
    sim.push(REPO, "bot-branch", {"c.txt": b"c\n"})
    pr = await api.post(f"/repos/{REPO}/pulls", {"title": "Bot", "head": "octo-org:bot-branch",
                                                 "base": "main"})  # fmt: skip
    number = pr.body["number"]
    sim.close_pull(REPO, number, as_user="carol")
    with pytest.raises(ValueError, match="405"):
        sim.merge_pull(REPO, number, as_user="carol")
    sim.reopen_pull(REPO, number, as_user="dave")
    comment_id = sim.comment(REPO, number, "LGTM", as_user="erin")
    await api.post(f"/repos/{REPO}/issues/{number}/comments", {"body": "thanks"})
    sha = sim.merge_pull(REPO, number, method="squash", as_user="frank")
    assert isinstance(comment_id, int)
    listed = sim.pulls(REPO)[0]
    assert listed["comments"] == [{"body": "LGTM", "user": "erin"},
                                  {"body": "thanks", "user": "image-automation[bot]"}]  # fmt: skip
    assert listed["merged"] and listed["merged_by"] == "frank"
    assert listed["merge_commit_sha"] == sha
    got = (await api.get(f"/repos/{REPO}/pulls/{number}")).body
    assert got["merged_by"]["login"] == "frank" and got["comments"] == 2
    assert sim.repo(REPO).git.commit_info(sha).author == b"frank <frank@example.com>"
    await sim.wait_deliveries()
    actions = [(r.event, r.action, r.payload["sender"]["login"]) for r in receiver.received]
    assert actions == [
        ("push", None, "alice"), ("pull_request", "opened", "image-automation[bot]"),
        ("pull_request", "closed", "carol"), ("pull_request", "reopened", "dave"),
        ("push", None, "frank"), ("pull_request", "closed", "frank"),
    ]  # fmt: skip
    closed = [r.payload for r in receiver.received if r.action == "closed"]
    assert [c["pull_request"]["merged"] for c in closed] == [False, True]
    assert closed[1]["pull_request"]["merged_by"]["login"] == "frank"
    assert closed[1]["pull_request"]["merge_commit_sha"] == sha
    assert closed[0]["pull_request"]["merged_at"] is None
    base_push = next(r.payload for r in receiver.received if r.event == "push"
                     and r.payload["ref"] == "refs/heads/main")  # fmt: skip
    assert base_push["after"] == sha and base_push["sender"]["login"] == "frank"
    with pytest.raises(ValueError, match="merged"):
        sim.reopen_pull(REPO, number)


async def test_a_person_deleting_the_head_branch_closes_the_pr(env):
    sim, receiver, _, _ = env
    sim.push(REPO, "topic", {"t": b"t"}, as_user="alice")
    number = sim.open_pull(REPO, "topic", as_user="alice")
    sim.edit_pull(REPO, number, title="Renamed", body="why", as_user="bob")
    assert sim.delete_branch(REPO, "topic", as_user="bob") is True
    assert sim.delete_branch(REPO, "topic", as_user="bob") is False
    await sim.wait_deliveries()
    assert [(r.event, r.action) for r in receiver.received] == [
        ("push", None), ("pull_request", "opened"), ("pull_request", "edited"), ("push", None),
        ("pull_request", "closed"),
    ]  # fmt: skip
    edited = receiver.received[2].payload
    assert edited["changes"] == {"title": {"from": "Update"}, "body": {"from": ""}}
    deleted, closed = receiver.received[3].payload, receiver.received[4].payload
    assert deleted["deleted"] and deleted["sender"]["login"] == "bob"
    assert closed["sender"]["login"] == "bob" and closed["pull_request"]["merged"] is False
    assert sim.pulls(REPO)[0]["state"] == "closed"


async def test_user_tokens_act_as_the_person_on_the_rest_api(env):
    sim, receiver, api, session = env
    token = sim.user_token("alice")
    assert token.startswith("ghp_")
    sim.create_repository("someone/else", {"s": b"s"})  # users see more than the installation
    alice = Api(session, api.base, token)
    assert (await alice.get("/repos/someone/else")).status == 200
    sim.push(REPO, "topic", {"t": b"t"})
    pr = await alice.post(f"/repos/{REPO}/pulls", {"title": "Mine", "head": "octo-org:topic",
                                                   "base": "main"})  # fmt: skip
    assert pr.status == 201 and pr.body["user"]["login"] == "alice"
    merged = await alice.put(f"/repos/{REPO}/pulls/{pr.body['number']}/merge", {})
    assert merged.status == 200
    check = await alice.post(f"/repos/{REPO}/check-runs", {"name": "c", "head_sha": "a" * 40})
    assert check.status == 403  # check runs are for Apps
    assert (await alice.get("/app")).status == 401
    await sim.wait_deliveries()
    assert {r.payload["sender"]["login"] for r in receiver.received[1:]} == {"alice"}
    assert sim.counters["PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge"] == 1


async def test_an_app_without_workflows_permission_cannot_merge_workflow_changes(env):
    sim, _, api, _ = env
    sim.push(REPO, "ci", {".github/workflows/ci.yml": b"on: push\n"}, as_user="alice")
    number = sim.open_pull(REPO, "ci", as_user="alice")
    refused = await api.put(f"/repos/{REPO}/pulls/{number}/merge", {})
    assert refused.status == 403
    sim.merge_pull(REPO, number, as_user="alice")  # a person may
    assert sim.pulls(REPO)[0]["merged"] is True


async def test_admin_routes_for_people(github_sim, env):
    sim, receiver, _, session = env
    url = github_sim.url

    async def call(method: str, path: str, body: object = None):
        async with session.request(method, url + path, json=body) as resp:
            data = await resp.read()
            return resp.status, (json.loads(data) if data else None)

    status, user = await call("POST", "/_sim/users", {"login": "zoe", "email": "zoe@example.com"})
    assert status == 201 and user["type"] == "User"
    status, token = await call("POST", "/_sim/users/zoe/tokens")
    assert status == 201 and token["token"].startswith("ghp_")
    await call("POST", f"/_sim/repos/{REPO}/push", {"branch": "t", "files": {"t": "t"},
                                                    "as_user": "zoe"})  # fmt: skip
    status, pr = await call("POST", f"/_sim/repos/{REPO}/pulls",
                            {"head": "t", "title": "Zoe's", "as_user": "zoe"})  # fmt: skip
    assert status == 201 and pr["user"] == "zoe" and pr["state"] == "open"
    n = pr["number"]
    assert (await call("PATCH", f"/_sim/repos/{REPO}/pulls/{n}", {"body": "b"}))[1]["body"] == "b"
    assert (await call("POST", f"/_sim/repos/{REPO}/pulls/{n}/close", {}))[1]["state"] == "closed"
    assert (await call("POST", f"/_sim/repos/{REPO}/pulls/{n}/reopen", {}))[1]["state"] == "open"
    status, c = await call("POST", f"/_sim/repos/{REPO}/pulls/{n}/comments",
                           {"body": "hi", "as_user": "yan"})  # fmt: skip
    assert status == 201 and isinstance(c["id"], int)
    status, bad = await call("POST", f"/_sim/repos/{REPO}/pulls/{n}/merge", {"sha": "0" * 40})
    assert status == 400 and "409" in bad["message"]
    status, merged = await call("POST", f"/_sim/repos/{REPO}/pulls/{n}/merge",
                                {"merge_method": "rebase", "as_user": "yan"})  # fmt: skip
    assert status == 200 and merged["sha"] == sim.branch_sha(REPO, "main")
    status, gone = await call("DELETE", f"/_sim/repos/{REPO}/branches/t?as_user=zoe")
    assert status == 200 and gone == {"deleted": True}
    await call("POST", "/_sim/deliveries/wait")
    assert [(r.action, r.payload["sender"]["login"]) for r in receiver.received] == [
        (None, "zoe"), ("opened", "zoe"), ("edited", "alice"), ("closed", "alice"),
        ("reopened", "alice"), (None, "yan"), ("closed", "yan"), (None, "zoe"),
    ]  # fmt: skip
    assert sim.pulls(REPO)[0]["comments"] == [{"body": "hi", "user": "yan"}]
