"""The webhook endpoint: every example delivery, signed, has the right effect; bad ones are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path

import pytest

from bot.github.errors import AuthenticationFailed, Unreachable
from bot.handlers import Services
from bot.scheduler import Scheduler
from bot.store import AutomationState, Claim, Store
from bot.web import MAX_BODY_BYTES, GitHubReadiness, Readiness, make_app
from tests.datapaths import GITHUB_DATA
from tests.test_store import unwritable
from tests.test_webhook_payloads import HOSTILE

SECRET = "It's a Secret to Everybody"
EXAMPLES = GITHUB_DATA / "webhooks" / "payload-examples" / "api.github.com"
ALL_EXAMPLES = sorted(EXAMPLES.glob("*/*.json"))


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(event: str, body: bytes, *, delivery: str | None = None, **extra: str) -> dict:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        **extra,
    }


class Runs:
    """The scheduler's run function: records which repositories were reconciled."""

    def __init__(self):
        self.repositories: list[str] = []

    async def __call__(self, claim: Claim) -> None:
        self.repositories.append(claim.repository)


class Harness:
    def __init__(self, client, store, scheduler, runs, forgotten):
        self.client, self.store, self.scheduler = client, store, scheduler
        self.runs, self.forgotten = runs, forgotten

    async def deliver(self, event: str, payload: bytes | dict, **kwargs):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response = await self.client.post(
            "/api/github/webhooks", data=body, headers=headers(event, body, **kwargs)
        )
        await self.scheduler.wait_idle(timeout=5)
        return response


@pytest.fixture
async def web(aiohttp_client):
    store = Store.open("sqlite:///:memory:")
    runs = Runs()
    scheduler = Scheduler(runs, store.schedule, concurrency=2, tick=0.05)
    forgotten: list[int] = []
    services = Services(store=store, scheduler=scheduler, forget_installation=forgotten.append)
    client = await aiohttp_client(make_app(services, secret=SECRET))
    scheduler.start()
    yield Harness(client, store, scheduler, runs, forgotten)
    await scheduler.stop()
    store.close()


def example(event: str, name: str) -> bytes:
    return (EXAMPLES / event / name).read_bytes()


# -- every example payload -------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_every_example_is_accepted_when_signed_and_refused_otherwise(web, path: Path):
    event = path.parent.name
    body = path.read_bytes()
    unsigned = {k: v for k, v in headers(event, body).items() if k != "X-Hub-Signature-256"}
    response = await web.client.post("/", data=body, headers=unsigned)
    assert response.status == 401
    bad = headers(event, body, **{"X-Hub-Signature-256": sign(body, "wrong secret")})
    response = await web.client.post("/", data=body, headers=bad)
    assert response.status == 401
    tampered = headers(event, body)
    response = await web.client.post("/", data=body + b" ", headers=tampered)
    assert response.status == 401
    assert web.runs.repositories == [] and web.store.repositories() == []

    response = await web.deliver(event, body)
    assert response.status in (200, 202), await response.text()


@pytest.mark.parametrize("name", ["payload.json", "with-app_id.payload.json"])
async def test_ping_answers_pong(web, name):
    response = await web.deliver("ping", example("ping", name))
    assert response.status == 200
    assert (await response.json())["msg"] == "pong"
    assert web.runs.repositories == []


@pytest.mark.parametrize("name", ["created.payload.json", "created.with-requester.payload.json"])
async def test_installation_created_registers_and_reconciles_its_repositories(web, name):
    body = example("installation", name)
    response = await web.deliver("installation", body)
    assert response.status == 202
    assert web.store.installation_repositories(957387) == ["Codertocat/Hello-World"]
    permissions = json.loads(body)["installation"]["permissions"]
    assert web.store.installation_permissions(957387) == permissions
    assert web.runs.repositories == ["Codertocat/Hello-World"]


async def test_installation_deleted_forgets_everything_about_it(web):
    web.store.add_repository("octocat/Hello-World", 2)
    response = await web.deliver("installation", example("installation", "deleted.payload.json"))
    assert response.status == 202
    assert web.store.repository("octocat/Hello-World") is None
    assert not web.store.installation_known(2)
    assert web.forgotten == [2]
    assert web.runs.repositories == []


async def test_suspend_pauses_and_unsuspend_resumes(web):
    web.store.add_repository("Codertocat/Hello-World", 16598467)
    await web.deliver("installation", example("installation", "suspend.payload.json"))
    assert web.store.is_suspended(16598467)
    assert web.runs.repositories == []
    await web.deliver("installation", example("installation", "unsuspend.payload.json"))
    assert not web.store.is_suspended(16598467)
    assert web.runs.repositories == ["Codertocat/Hello-World"]


async def test_new_permissions_accepted_reruns_fully(web):
    web.store.add_repository("Codertocat/Hello-World", 957387)
    record = web.store.repository("Codertocat/Hello-World")
    web.store.clear_dirty("Codertocat/Hello-World", seen=record.dirty)
    assert not web.store.repository("Codertocat/Hello-World").dirty
    payload = example("installation", "new_permissions_accepted.payload.json")
    await web.deliver("installation", payload)
    assert web.store.repository("Codertocat/Hello-World").dirty
    assert web.runs.repositories == ["Codertocat/Hello-World"]
    assert (
        web.store.installation_permissions(957387)
        == json.loads(payload)["installation"]["permissions"]
    )


async def test_installation_repositories_added_and_removed(web):
    await web.deliver(
        "installation_repositories", example("installation_repositories", "added.payload.json")
    )
    assert web.store.installation_repositories(957387) == ["Codertocat/Space"]
    assert web.runs.repositories == ["Codertocat/Space"]

    web.store.add_repository("octocat/Hello-World", 2)
    await web.deliver(
        "installation_repositories", example("installation_repositories", "removed.payload.json")
    )
    assert web.store.repository("octocat/Hello-World") is None
    assert web.runs.repositories == ["Codertocat/Space"]


@pytest.mark.parametrize(
    "name",
    [
        "payload.json",
        "1.payload.json",
        "with-installation.payload.json",
        "with-organization.payload.json",
    ],
)
async def test_tag_pushes_and_hooks_without_installation_do_nothing(web, name):
    response = await web.deliver("push", example("push", name))
    assert response.status == 202
    assert web.runs.repositories == []
    assert web.store.repositories() == []


@pytest.mark.parametrize(
    "name", ["with-new-branch.payload.json", "with-no-username-committer.payload.json"]
)
async def test_push_to_the_default_branch_reconciles_the_repository(web, name):
    response = await web.deliver("push", example("push", name))
    assert response.status == 202
    assert web.runs.repositories == ["Codertocat/Hello-World"]
    assert web.store.repository("Codertocat/Hello-World").default_branch == "master"


@pytest.mark.parametrize(
    "name",
    [
        "opened.payload.json",
        "opened.with-null-body.json",
        "opened.with-organization.payload.json",
        "reopened.payload.json",
        "reopened.with-organization.payload.json",
        "synchronize.payload.json",
        "closed.payload.json",
        "closed.with-organization.payload.json",
    ],
)
async def test_pull_requests_that_are_not_the_bots_are_ignored(web, name):
    web.store.add_repository("Codertocat/Hello-World", 1)
    response = await web.deliver("pull_request", example("pull_request", name))
    assert response.status == 202
    assert web.runs.repositories == []
    assert web.store.automation_states("Codertocat/Hello-World") == []


@pytest.mark.parametrize("name", ["closed.payload.json", "closed.with-organization.payload.json"])
async def test_bot_pull_request_closed_unmerged_remembers_its_change_set(web, name):
    web.store.add_repository("Codertocat/Hello-World", 1)
    payload = json.loads(example("pull_request", name))
    state = AutomationState(
        "Codertocat/Hello-World",
        "auto",
        push_branch=payload["pull_request"]["head"]["ref"],
        base_branch="master",
        pr_number=payload["number"],
        change_set="cs-42",
    )
    web.store.save_automation_state(state)
    await web.deliver("pull_request", payload)
    assert web.store.is_declined("Codertocat/Hello-World", "auto", "cs-42")
    assert web.store.automation_state("Codertocat/Hello-World", "auto").pr_number is None
    assert web.runs.repositories == ["Codertocat/Hello-World"]


async def test_bot_pull_request_synchronize_by_someone_else_marks_it_taken_over(web):
    web.store.add_repository("Codertocat/Hello-World", 1)
    payload = json.loads(example("pull_request", "synchronize.payload.json"))
    web.store.save_automation_state(
        AutomationState(
            "Codertocat/Hello-World",
            "auto",
            push_branch=payload["pull_request"]["head"]["ref"],
            base_branch="master",
            pr_number=payload["number"],
            written_sha="f" * 40,
        )
    )
    await web.deliver("pull_request", payload)
    assert web.store.automation_state("Codertocat/Hello-World", "auto").taken_over


# -- refusals --------------------------------------------------------------------------


async def test_a_redelivery_is_handled_once(web):
    body = example("push", "with-new-branch.payload.json")
    first = await web.deliver("push", body, delivery="same-guid")
    second = await web.deliver("push", body, delivery="same-guid")
    assert (first.status, second.status) == (202, 200)
    assert web.runs.repositories == ["Codertocat/Hello-World"]


async def test_sha1_signature_alone_is_not_enough(web):
    body = example("push", "with-new-branch.payload.json")
    legacy = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    sent = {k: v for k, v in headers("push", body).items() if k != "X-Hub-Signature-256"}
    response = await web.client.post("/", data=body, headers={**sent, "X-Hub-Signature": legacy})
    assert response.status == 401
    assert web.runs.repositories == []


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
async def test_missing_headers_are_400(web, missing):
    body = example("push", "with-new-branch.payload.json")
    sent = {k: v for k, v in headers("push", body).items() if k != missing}
    response = await web.client.post("/", data=body, headers=sent)
    assert response.status == 400
    assert missing in await response.text()


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-GitHub-Delivery", "x" * 101),
        ("X-GitHub-Delivery", "two words"),
        ("X-GitHub-Event", "Push"),
        ("X-GitHub-Event", "push\tpull_request"),
        ("X-GitHub-Event", "e" * 65),
    ],
)
async def test_headers_the_signature_does_not_cover_are_checked_for_shape(web, header, value):
    body = example("push", "with-new-branch.payload.json")
    response = await web.client.post(
        "/", data=body, headers=headers("push", body, **{header: value})
    )
    assert response.status == 400
    assert header in await response.text()
    assert web.store.repositories() == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_bad_json_is_400_not_a_traceback(web, body):
    response = await web.client.post("/", data=body, headers=headers("push", body))
    assert response.status == 400
    assert "Traceback" not in await response.text()


async def test_a_payload_missing_fields_is_400(web):
    body = json.dumps({"ref": "refs/heads/main", "installation": {"id": 1}}).encode()
    response = await web.client.post("/", data=body, headers=headers("push", body))
    assert response.status == 400
    assert "repository" in await response.text()


async def test_health_and_wrong_methods(web):
    response = await web.client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"
    assert (await web.client.get("/api/github/webhooks")).status == 405


def test_no_secret_no_app():
    store = Store.open("sqlite:///:memory:")
    services = Services(store=store, scheduler=Scheduler(Runs(), store.schedule))
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        make_app(services, secret="")


# -- §5: only what GitHub sends ------------------------------------------------------------


def installation_payload(repositories: int, *, padding: int = 0) -> dict:
    """`installation created` as GitHub sends it for an installation on many repositories."""
    payload = json.loads(example("installation", "created.payload.json"))
    payload["installation"]["repository_selection"] = "all"
    payload["repositories"] = [
        {
            "id": 500_000_000 + i,
            "node_id": f"R_kgDO{i:08d}",
            "name": f"service-{i:05d}",
            "full_name": f"big-org/service-{i:05d}",
            "private": True,
        }
        for i in range(repositories)
    ]
    if padding:
        payload["sender"]["bio"] = "x" * padding
    return payload


async def test_a_12000_repository_installation_is_accepted_and_stored(web):
    body = json.dumps(installation_payload(12_000)).encode()
    assert len(body) > 1024 * 1024  # over aiohttp's default limit
    response = await web.client.post("/", data=body, headers=headers("installation", body))
    assert response.status == 202, await response.text()
    await web.scheduler.wait_idle(timeout=120)
    stored = web.store.installation_repositories(957387)
    assert len(stored) == 12_000 and stored[0] == "big-org/service-00000"
    assert sorted(web.runs.repositories) == stored


async def test_a_body_of_exactly_25_mb_is_read_and_one_byte_more_is_413(web):
    payload = installation_payload(1)
    size = len(json.dumps(payload).encode())
    payload["sender"]["bio"] = "x" * (MAX_BODY_BYTES - size - len(', "bio": ""'))
    body = json.dumps(payload).encode()
    assert len(body) == MAX_BODY_BYTES
    response = await web.client.post("/", data=body, headers=headers("installation", body))
    assert response.status == 202, await response.text()
    assert web.store.installation_repositories(957387) == ["big-org/service-00000"]

    larger = body[:-1] + b" }"
    response = await web.client.post("/", data=larger, headers=headers("installation", larger))
    assert response.status == 413
    assert "25 MB" in await response.text()

    async def chunks():  # no Content-Length: refused while reading
        for i in range(0, len(larger), 1 << 20):
            yield larger[i : i + (1 << 20)]

    response = await web.client.post("/", data=chunks(), headers=headers("installation", larger))
    assert response.status == 413


async def test_a_sha1_signature_in_the_sha256_header_is_refused(web):
    body = example("push", "with-new-branch.payload.json")
    legacy = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    response = await web.client.post(
        "/", data=body, headers=headers("push", body, **{"X-Hub-Signature-256": legacy})
    )
    assert response.status == 401
    assert "sha256=" in await response.text()
    assert web.runs.repositories == [] and web.store.repositories() == []


@pytest.mark.parametrize(
    "signature", ["sha256=" + "é" * 64, "sha256=", "SHA256=" + "0" * 64, "sha256 " + "0" * 64]
)
async def test_odd_signatures_are_401_not_500(web, signature):
    body = example("push", "with-new-branch.payload.json")
    response = await web.client.post(
        "/", data=body, headers=headers("push", body, **{"X-Hub-Signature-256": signature})
    )
    assert response.status == 401


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.name)
async def test_a_malformed_signed_delivery_is_400_and_stores_nothing(web, hostile):
    response = await web.client.post(
        "/",
        data=hostile.body,
        headers=headers(hostile.event, hostile.body, delivery=f"hostile-{hostile.name}"),
    )
    text = await response.text()
    assert response.status == 400, text
    assert hostile.field in text and "Traceback" not in text
    await web.scheduler.wait_idle(timeout=5)
    assert web.store.repositories() == [] and web.runs.repositories == []
    assert not web.store.installation_known(957387) and not web.store.installation_known(1)
    assert not web.store.delivery_seen(f"hostile-{hostile.name}")


# -- §6: readiness follows whether the database can be written -----------------------------


async def test_readyz_is_503_while_the_database_cannot_be_written(aiohttp_client, tmp_path):
    directory = tmp_path / "db"
    store = Store.open(f"sqlite:///{directory}/bot.db")
    runs = Runs()
    scheduler = Scheduler(runs, store.schedule, concurrency=1, tick=0.05)
    app = make_app(Services(store, scheduler), secret=SECRET, ready_probe_interval=0)
    client = await aiohttp_client(app)
    body = example("push", "with-new-branch.payload.json")

    async def deliver(delivery: str):
        return await client.post("/", data=body, headers=headers("push", body, delivery=delivery))

    response = await client.get("/readyz")
    assert (response.status, (await response.json())["status"]) == (200, "ok")
    with unwritable(directory):
        response = await client.get("/readyz")
        assert response.status == 503
        assert "not writable" in (await response.json())["reason"]
        assert (await client.get("/healthz")).status == 200  # alive, only not ready
        response = await deliver("during")
        assert response.status == 503
        assert "not writable" in await response.text()
    response = await client.get("/readyz")
    assert response.status == 200
    # The same connection serves again, and the refused delivery was not remembered.
    assert (await deliver("during")).status == 202
    assert (await deliver("during")).status == 200
    assert store.repository("Codertocat/Hello-World") is not None
    store.close()


def test_readiness_probes_at_most_once_per_interval(tmp_path):
    """Between probes the last answer stands: a flood of /readyz is not a flood of writes."""
    directory = tmp_path / "db"
    store = Store.open(f"sqlite:///{directory}/bot.db")
    now = [0.0]
    readiness = Readiness(store, interval=1.0, clock=lambda: now[0])
    assert readiness.problem() is None
    with unwritable(directory):
        assert readiness.problem() is None  # the answer of the probe 0 s ago
        now[0] += 1.0
        assert "not writable" in (readiness.problem() or "")
    assert readiness.problem() is not None
    now[0] += 1.0
    assert readiness.problem() is None
    store.close()


async def test_readyz_is_503_while_github_refuses_the_apps_jwt(aiohttp_client):
    """Ready needs GitHub to answer ``GET /app`` with the App's JWT, asked at most every
    30 s (`GitHubReadiness`); the answer says why not."""
    answers: list[Exception | None] = [
        AuthenticationFailed(
            "GitHub answered 401 to GET /app: A JSON web token could not be decoded", status=401
        ),
        None,
    ]
    asked = []

    async def probe():
        asked.append(1)
        outcome = answers[0]
        if outcome is not None:
            raise outcome

    store = Store.open("sqlite:///:memory:")
    app = make_app(
        Services(store, Scheduler(Runs(), store.schedule)), secret=SECRET, github_probe=probe
    )
    client = await aiohttp_client(app)
    response = await client.get("/readyz")
    assert response.status == 503
    assert "JWT" in (await response.json())["reason"]
    answers.pop(0)  # GitHub takes the key now; the last answer stands until the next probe
    assert (await client.get("/readyz")).status == 503 and len(asked) == 1
    assert (await client.get("/healthz")).status == 200  # alive all along


async def test_github_readiness_asks_again_after_its_interval():
    now = [0.0]
    outcomes: list[Exception | None] = [Unreachable("no answer"), None]

    async def probe():
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    readiness = GitHubReadiness(probe, interval=30.0, clock=lambda: now[0])
    assert "no answer" in (await readiness.problem() or "")
    now[0] += 30.0
    assert await readiness.problem() is None
    assert outcomes == []
