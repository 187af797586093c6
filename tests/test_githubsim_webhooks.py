"""The simulator's own webhook deliveries: headers and signatures, payload shapes (validated
against octokit's payload schemas), who receives what, ordering, waiting, dropping,
redelivery, and the admin routes for all of it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid

import aiohttp
import pytest
from gidgethub import sansio
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.datapaths import GITHUB_DATA
from tests.githubsim.testkit import PERMISSIONS, Api, Receiver

SCHEMAS = GITHUB_DATA / "webhooks" / "payload-schemas" / "api.github.com"
REPO = "octo-org/app"
OTHER = "octo-org/other"
SECRET = "s3cret"
ZERO = "0" * 40


@pytest.fixture(scope="module")
def payload_schemas() -> Registry:
    """Every payload schema, keyed by `$id` (`push$event`, `common/user.schema.json`, ...)."""
    resources = []
    for path in sorted(SCHEMAS.rglob("*.schema.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema, DRAFT7)))
    return Registry().with_resources(resources)


def schema_errors(registry: Registry, event: str, action: str | None, payload: dict) -> list[str]:
    key = f"{event}${action or 'event'}"
    validator = Draft7Validator(registry.contents(key), registry=registry,
                                format_checker=Draft7Validator.FORMAT_CHECKER)  # fmt: skip
    return [f"{key} at {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in validator.iter_errors(payload)]  # fmt: skip


@pytest.fixture
async def hooked(github_sim, app_key):
    """App 1 (webhook → receiver) installed on REPO; OTHER exists too; a REST client."""
    app_id, _, public_pem = app_key
    sim = github_sim.sim
    async with Receiver(SECRET) as receiver, aiohttp.ClientSession() as session:
        sim.register_app(app_id, public_pem, permissions=dict(PERMISSIONS),
                         webhook_url=receiver.url, webhook_secret=SECRET)  # fmt: skip
        sim.create_repository(REPO, {"deploy/app.yaml": b"image: a:1\n", "README.md": b"hi\n"})
        sim.create_repository(OTHER, {"x": b"x"})
        inst = sim.create_installation(app_id, "octo-org", [REPO])
        api = Api(session, github_sim.url, sim.issue_token(inst))
        yield sim, receiver, api, inst


# -- transport ---------------------------------------------------------------------------------
async def test_deliveries_are_signed_and_carry_githubs_headers(hooked):
    sim, receiver, _, inst = hooked
    sim.push(REPO, "main", {"README.md": b"changed\n"})
    await sim.wait_deliveries()
    assert receiver.events() == [("installation", "created"), ("push", None)]
    for got, record in zip(receiver.received, sim.deliveries, strict=True):
        h = got.headers
        assert got.signature_ok
        sha1 = "sha1=" + hmac.new(SECRET.encode(), got.body, hashlib.sha1).hexdigest()
        assert h["X-Hub-Signature"] == sha1
        assert h["Content-Type"] == "application/json"
        assert h["User-Agent"].startswith("GitHub-Hookshot/")
        assert uuid.UUID(h["X-GitHub-Delivery"]) and h["X-GitHub-Delivery"] == record.id
        assert h["X-GitHub-Hook-ID"] == str(sim.apps[1].hook_id)
        assert h["X-GitHub-Hook-Installation-Target-Type"] == "integration"
        assert h["X-GitHub-Hook-Installation-Target-ID"] == "1"
        assert got.payload["installation"]["id"] == inst
        assert record.state == "delivered" and record.status == 200 and record.body == got.body
        # The bot's webhook library accepts it as is.
        event = sansio.Event.from_http({k.lower(): v for k, v in h.items()}, got.body,
                                       secret=SECRET)  # fmt: skip
        assert event.event == got.event and event.delivery_id == record.id
        with pytest.raises(Exception, match="signature"):
            sansio.Event.from_http({k.lower(): v for k, v in h.items()}, got.body, secret="wrong")


async def test_every_payload_kind_validates_against_the_octokit_schemas(
    hooked, payload_schemas, github_sim
):
    sim, receiver, api, inst = hooked
    sim.add_repositories(inst, [OTHER])
    sim.remove_repositories(inst, [OTHER])
    base = sim.branch_sha(REPO, "main")
    sim.push(REPO, "feature", {"a.txt": b"a\n"}, as_user="alice")  # created
    sim.push(REPO, "feature", {"b.txt": b"b\n"}, as_user="alice")  # fast-forward
    sim.push(REPO, "feature", {"c.txt": b"c\n"}, parent=base, force=True)  # forced
    pr = await api.post(f"/repos/{REPO}/pulls", {"title": "T", "head": "octo-org:feature",
                                                 "base": "main", "body": None})  # fmt: skip
    number = pr.body["number"]
    sim.push(REPO, "feature", {"d.txt": b"d\n"}, as_user="bob")  # synchronize
    await api.patch(f"/repos/{REPO}/pulls/{number}", {"title": "T2", "body": "b"})  # edited
    sim.close_pull(REPO, number, as_user="bob")
    sim.reopen_pull(REPO, number, as_user="bob")
    await api.put(f"/repos/{REPO}/pulls/{number}/merge", {"merge_method": "squash"})
    sim.push(REPO, "gone", {"e.txt": b"e\n"})
    sim.delete_branch(REPO, "gone", as_user="carol")  # deleted
    sim.suspend_installation(inst)
    sim.suspend_installation(inst, False)
    sim.delete_installation(inst)
    await sim.wait_deliveries()

    seen = [(d.event, d.action) for d in sim.deliveries]
    assert set(seen) == {
        ("installation", "created"), ("installation_repositories", "added"),
        ("installation_repositories", "removed"), ("push", None), ("pull_request", "opened"),
        ("pull_request", "synchronize"), ("pull_request", "edited"), ("pull_request", "closed"),
        ("pull_request", "reopened"), ("installation", "suspend"), ("installation", "unsuspend"),
        ("installation", "deleted"),
    }  # fmt: skip
    errors = []
    for d in sim.deliveries:
        assert d.state == "delivered", d
        if (d.event, d.action) != ("pull_request", "edited"):  # octokit has no edited schema here
            errors += schema_errors(payload_schemas, d.event, d.action, d.payload)
    assert not errors, "\n".join(errors[:20])
    assert [r.body for r in receiver.received] == [d.body for d in sim.deliveries]


# -- payload contents ------------------------------------------------------------------------
async def test_push_payloads_describe_create_fast_forward_force_and_delete(hooked):
    sim, _, _, _ = hooked
    base = sim.branch_sha(REPO, "main")
    created = sim.push(REPO, "topic", {"a.txt": b"a\n"}, as_user="alice")
    moved = sim.push(REPO, "topic", {"a.txt": None, "README.md": b"x\n", "n/b": b"b"},
                     message="second", as_user="alice")  # fmt: skip
    forced = sim.push(REPO, "topic", {"c.txt": b"c\n"}, parent=base, force=True)
    sim.delete_branch(REPO, "topic", as_user="bob")
    await sim.wait_deliveries()
    pushes = [d.payload for d in sim.deliveries if d.event == "push"]
    new, ff, force, gone = pushes
    assert (new["ref"], new["before"], new["after"]) == ("refs/heads/topic", ZERO, created)
    assert new["created"] and not new["deleted"] and not new["forced"]
    assert [c["id"] for c in new["commits"]] == [created]  # not the commits already on main
    assert new["commits"][0]["added"] == ["a.txt"]
    assert (ff["before"], ff["after"]) == (created, moved)
    assert not ff["forced"] and not ff["created"]
    assert ff["head_commit"]["id"] == moved and ff["head_commit"]["message"] == "second"
    assert (ff["commits"][0]["added"], ff["commits"][0]["removed"],
            ff["commits"][0]["modified"]) == (["n/b"], ["a.txt"], ["README.md"])  # fmt: skip
    assert (force["before"], force["after"], force["forced"]) == (moved, forced, True)
    assert [c["id"] for c in force["commits"]] == [forced]
    assert (gone["after"], gone["deleted"], gone["head_commit"], gone["commits"]) == (
        ZERO, True, None, [])  # fmt: skip
    assert new["sender"]["login"] == "alice" and new["pusher"]["name"] == "alice"
    assert gone["sender"]["login"] == "bob" and gone["sender"]["type"] == "User"
    assert new["repository"]["full_name"] == REPO
    assert new["repository"]["default_branch"] == "main"
    assert new["repository"]["owner"]["login"] == "octo-org"
    assert new["organization"]["login"] == "octo-org"


async def test_the_bots_own_writes_are_sent_with_the_bot_as_sender(hooked):
    sim, _, api, _ = hooked
    head = sim.branch_sha(REPO, "main")
    commit = await api.get(f"/repos/{REPO}/git/commits/{head}")
    tree = await api.post(f"/repos/{REPO}/git/trees", {"base_tree": commit.body["tree"]["sha"],
                          "tree": [{"path": "f", "mode": "100644", "content": "f"}]})  # fmt: skip
    new = await api.post(f"/repos/{REPO}/git/commits", {"message": "m", "tree": tree.body["sha"],
                                                        "parents": [head]})  # fmt: skip
    await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/bot", "sha": new.body["sha"]})
    await api.delete(f"/repos/{REPO}/git/refs/heads/bot")
    await sim.wait_deliveries()
    pushes = [d.payload for d in sim.deliveries if d.event == "push"]
    assert [(p["created"], p["deleted"]) for p in pushes] == [(True, False), (False, True)]
    for p in pushes:
        assert p["sender"]["login"] == "image-automation[bot]" and p["sender"]["type"] == "Bot"
        assert p["pusher"]["email"] == "1+image-automation[bot]@users.noreply.github.com"
    assert pushes[0]["head_commit"]["author"]["name"] == "image-automation[bot]"


async def test_a_person_pushing_to_a_pr_branch_yields_push_then_synchronize(hooked):
    sim, receiver, api, _ = hooked
    sim.push(REPO, "bot-branch", {"deploy/app.yaml": b"image: a:2\n"})
    pr = await api.post(f"/repos/{REPO}/pulls", {"title": "Bump", "head": "octo-org:bot-branch",
                                                 "base": "main"})  # fmt: skip
    before = pr.body["head"]["sha"]
    await sim.wait_deliveries()
    receiver.received.clear()
    after = sim.push(REPO, "bot-branch", {"mine.txt": b"mine\n"}, as_user="alice")
    await sim.wait_deliveries()
    assert receiver.events() == [("push", None), ("pull_request", "synchronize")]
    push, sync = (r.payload for r in receiver.received)
    assert push["sender"]["login"] == sync["sender"]["login"] == "alice"
    assert (sync["before"], sync["after"]) == (before, after)
    assert sync["pull_request"]["head"]["sha"] == after
    assert sync["pull_request"]["user"]["login"] == "image-automation[bot]"
    opened = next(d.payload for d in sim.deliveries if d.action == "opened")
    assert opened["sender"]["type"] == "Bot" and opened["pull_request"]["state"] == "open"


async def test_pushing_the_pr_head_to_its_base_marks_the_pr_merged(hooked):
    sim, _, api, _ = hooked
    head = sim.push(REPO, "topic", {"t": b"t"})
    number = sim.open_pull(REPO, "topic", title="Topic", as_user="alice")
    sim.repo(REPO).git.set_ref("refs/heads/tmp", head)
    await api.patch(f"/repos/{REPO}/git/refs/heads/main", {"sha": head})  # fast-forward by hand
    await sim.wait_deliveries()
    closed = [d.payload for d in sim.deliveries if d.action == "closed"]
    assert len(closed) == 1 and closed[0]["pull_request"]["merged"] is True
    assert closed[0]["pull_request"]["merge_commit_sha"] == head
    assert closed[0]["sender"]["login"] == "image-automation[bot]"
    got = await api.get(f"/repos/{REPO}/pulls/{number}")
    assert got.body["merged"] and got.body["merged_by"]["login"] == "image-automation[bot]"


async def test_installation_events_carry_the_installation_and_its_repositories(hooked):
    sim, _, _, inst = hooked
    sim.add_repositories(inst, [OTHER, REPO], as_user="admin")  # REPO is already there
    sim.remove_repositories(inst, [OTHER])
    sim.suspend_installation(inst, as_user="admin")
    sim.suspend_installation(inst)  # already suspended: nothing
    sim.suspend_installation(inst, False)
    await sim.wait_deliveries()
    payloads = {(d.event, d.action): d.payload for d in sim.deliveries}
    created = payloads["installation", "created"]
    assert created["installation"]["id"] == inst and created["sender"]["login"] == "octocat"
    assert [r["full_name"] for r in created["repositories"]] == [REPO]
    added = payloads["installation_repositories", "added"]
    assert [r["full_name"] for r in added["repositories_added"]] == [OTHER]
    assert added["repository_selection"] == "selected" and added["sender"]["login"] == "admin"
    removed = payloads["installation_repositories", "removed"]
    assert [r["full_name"] for r in removed["repositories_removed"]] == [OTHER]
    suspend = payloads["installation", "suspend"]["installation"]
    assert suspend["suspended_by"]["login"] == "admin" and suspend["suspended_at"]
    assert payloads["installation", "unsuspend"]["installation"]["suspended_at"] is None
    assert len(sim.deliveries) == 5


# -- who receives what -------------------------------------------------------------------------
async def test_only_apps_installed_on_the_repository_and_subscribed_receive(hooked, github_sim):
    sim, first, _, inst = hooked
    async with Receiver(None) as second, Receiver(None) as third:
        sim.register_app(2, sim.apps[1].public_key_pem, slug="other-app", webhook_url=second.url)
        sim.create_installation(2, "octo-org", [OTHER])  # not on REPO
        sim.register_app(3, sim.apps[1].public_key_pem, slug="prs-only", events=["pull_request"])
        sim.set_webhook(3, third.url)
        sim.create_installation(3, "octo-org", None)  # all repositories, but no push events
        sim.register_app(4, sim.apps[1].public_key_pem, slug="no-hook")  # no URL: nothing
        sim.create_installation(4, "octo-org", None)
        await sim.wait_deliveries()
        first.received.clear()
        sim.push(REPO, "main", {"README.md": b"1\n"})
        sim.push(OTHER, "main", {"x": b"2"})
        sim.push(REPO, "topic", {"t": b"t"})
        sim.open_pull(REPO, "topic")
        sim.suspend_installation(inst)
        sim.push(REPO, "main", {"README.md": b"3\n"})  # suspended: not delivered
        await sim.wait_deliveries()
        assert first.events() == [("push", None), ("push", None), ("pull_request", "opened"),
                                  ("installation", "suspend")]  # fmt: skip
        assert second.events() == [("installation", "created"), ("push", None)]
        assert second.received[1].payload["repository"]["full_name"] == OTHER
        assert "X-Hub-Signature-256" not in second.received[0].headers  # no secret, no signature
        assert third.events() == [("installation", "created"), ("pull_request", "opened")]
        assert {d.app_id for d in sim.deliveries} == {1, 2, 3}


# -- ordering, waiting, failures, drops, redelivery ---------------------------------------------
async def test_delivery_is_asynchronous_and_in_order(hooked):
    sim, receiver, api, _ = hooked
    await sim.wait_deliveries()
    receiver.received.clear()
    receiver.delay = 0.2
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(4):
        await api.put(f"/repos/{REPO}/contents/f{i}.txt",
                      {"message": f"m{i}", "content": "eA=="})  # fmt: skip
    assert loop.time() - start < 0.4  # the API did not wait for the receiver
    assert sim.hooks.pending() >= 3
    await sim.wait_deliveries()
    messages = [r.payload["head_commit"]["message"] for r in receiver.received]
    assert messages == ["m0", "m1", "m2", "m3"]
    with pytest.raises(TimeoutError):
        sim.push(REPO, "main", {"slow": b"s"})
        receiver.delay = 1.0
        await sim.wait_deliveries(timeout=0.3)
    await sim.wait_deliveries()


async def test_changes_made_outside_any_event_loop_are_delivered_later(hooked):
    sim, receiver, _, _ = hooked
    await sim.wait_deliveries()
    await asyncio.to_thread(sim.push, REPO, "main", {"t": b"t"})  # no running loop there
    assert sim.hooks.pending() == 1 and sim.deliveries[-1].state == "pending"
    await sim.wait_deliveries()
    assert sim.deliveries[-1].state == "delivered" and receiver.events()[-1] == ("push", None)


async def test_failed_deliveries_are_recorded_and_can_be_redelivered(hooked):
    sim, receiver, _, _ = hooked
    await sim.wait_deliveries()
    receiver.status = 500
    sim.push(REPO, "main", {"a": b"a"})
    sim.set_webhook(1, "http://127.0.0.1:9/unreachable", SECRET)
    sim.push(REPO, "main", {"b": b"b"})
    await sim.wait_deliveries()
    failed, unreachable = sim.deliveries[-2:]
    assert (failed.state, failed.status) == ("failed", 500)
    assert unreachable.state == "failed" and unreachable.status is None and unreachable.error
    receiver.status = 200
    sim.set_webhook(1, receiver.url, SECRET)
    again = sim.redeliver(unreachable.id)
    await sim.wait_deliveries()
    assert again.redelivery and again.state == "delivered" and again.id == unreachable.id
    got = receiver.received[-1]
    assert got.headers["X-GitHub-Delivery"] == unreachable.id and got.signature_ok
    assert got.body == unreachable.body


async def test_dropped_deliveries_are_recorded_but_never_sent(hooked):
    sim, receiver, _, _ = hooked
    sim.push(REPO, "topic", {"t": b"t"})
    number = sim.open_pull(REPO, "topic")
    sim.drop_deliveries(event="pull_request", action="closed", times=1)
    sim.close_pull(REPO, number)  # dropped
    sim.reopen_pull(REPO, number)
    sim.close_pull(REPO, number)  # delivered: the rule was used up
    sim.drop_deliveries(event="push", times=None)
    sim.push(REPO, "main", {"a": b"1"})
    sim.push(REPO, "main", {"a": b"2"})
    await sim.wait_deliveries()
    assert [(d.event, d.action, d.state) for d in sim.deliveries[-5:]] == [
        ("pull_request", "closed", "dropped"), ("pull_request", "reopened", "delivered"),
        ("pull_request", "closed", "delivered"), ("push", None, "dropped"),
        ("push", None, "dropped"),
    ]  # fmt: skip
    received_ids = {r.headers["X-GitHub-Delivery"] for r in receiver.received}
    assert not received_ids & {d.id for d in sim.deliveries if d.state == "dropped"}
    sim.clear_drops()
    sim.push(REPO, "main", {"a": b"3"})
    await sim.wait_deliveries()
    assert receiver.events()[-1] == ("push", None)


async def test_deliveries_do_not_touch_the_request_counters(hooked):
    sim, _, api, _ = hooked
    sim.reset_counters()
    await api.put(f"/repos/{REPO}/contents/n.txt", {"message": "m", "content": "eA=="})
    await sim.wait_deliveries()
    assert sum(sim.counters.values()) == 1


# -- admin API ---------------------------------------------------------------------------------
async def test_admin_routes_for_webhooks(github_sim, app_key):
    _, _, public_pem = app_key
    url = github_sim.url
    async with Receiver(SECRET) as receiver, aiohttp.ClientSession() as session:

        async def call(method: str, path: str, body: object = None):
            async with session.request(method, url + path, json=body) as resp:
                data = await resp.read()
                return resp.status, (json.loads(data) if data else None)

        status, _ = await call("POST", "/_sim/apps", {"app_id": 7, "public_key_pem": public_pem})
        assert status == 201
        status, hook = await call("POST", "/_sim/apps/7/webhook", {"url": receiver.url,
                                                                   "secret": SECRET})  # fmt: skip
        assert status == 200 and hook["hook_id"] == github_sim.sim.apps[7].hook_id
        await call("POST", "/_sim/repos", {"full_name": REPO, "files": {"a": "a"}})
        status, inst = await call("POST", "/_sim/installations",
                                  {"app_id": 7, "account": "octo-org", "repositories": [REPO]})  # fmt: skip
        assert status == 201
        assert (await call("POST", "/_sim/deliveries/drop", {"event": "push"}))[0] == 201
        await call("POST", f"/_sim/repos/{REPO}/push", {"branch": "main", "files": {"a": "b"},
                                                        "as_user": "alice"})  # fmt: skip
        await call("POST", f"/_sim/repos/{REPO}/push", {"branch": "main", "files": {"a": "c"}})
        status, waited = await call("POST", "/_sim/deliveries/wait", {"timeout": 5})
        assert status == 200 and waited == {"pending": 0}
        _, listed = await call("GET", "/_sim/deliveries?event=push")
        assert [d["state"] for d in listed] == ["dropped", "delivered"]
        assert listed[0]["payload"]["sender"]["login"] == "alice"
        status, again = await call("POST", f"/_sim/deliveries/{listed[0]['id']}/redeliver")
        assert status == 201 and again["redelivery"] is True
        await call("POST", "/_sim/deliveries/wait")
        assert receiver.events() == [("installation", "created"), ("push", None), ("push", None)]
        assert receiver.received[-1].headers["X-GitHub-Delivery"] == listed[0]["id"]
        assert (await call("DELETE", "/_sim/deliveries/drop"))[0] == 204
        await call("POST", f"/_sim/installations/{inst['installation_id']}/suspend", {})
        await call("DELETE", f"/_sim/installations/{inst['installation_id']}")
        await call("POST", "/_sim/deliveries/wait")
        _, listed = await call("GET", "/_sim/deliveries?event=installation")
        assert [d["action"] for d in listed] == ["created", "suspend", "deleted"]
        assert (await call("DELETE", "/_sim/deliveries"))[0] == 204
        assert (await call("GET", "/_sim/deliveries"))[1] == []
        assert (await call("POST", "/_sim/apps/99/webhook", {"url": None}))[0] == 404


async def test_the_readme_example(github_sim, app_key):
    sim = github_sim.sim
    async with Receiver("s3cret") as receiver:
        sim.register_app(app_key[0], app_key[2], webhook_url=receiver.url, webhook_secret="s3cret")
        sim.create_repository("octo-org/app", {"a": b"a"})
        sim.create_installation(app_key[0], "octo-org", ["octo-org/app"])
        sim.push("octo-org/app", "topic", {"b": b"b"}, as_user="alice")
        number = sim.open_pull("octo-org/app", "topic", as_user="alice")
        sim.merge_pull("octo-org/app", number, method="squash", as_user="bob")
        await sim.wait_deliveries()
        assert receiver.events()[-2:] == [("push", None), ("pull_request", "closed")]
