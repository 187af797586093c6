"""Registry push notifications (issue 12 §3): each kind's payload, the endpoint's
authentication, GitHub's package events, and what a push makes due."""

from __future__ import annotations

import json

import pytest

from bot import registryevents
from bot.handlers import Services
from bot.handlers.packages import container_image
from bot.registryevents import EventError
from bot.scheduler import Scheduler
from bot.store import Store
from bot.web import MAX_REGISTRY_EVENT_BYTES, make_app
from tests.test_web import SECRET, Runs, headers

DIGEST = "sha256:" + "a" * 64
TOKENS = {"distribution": "t-dist", "dockerhub": "t-hub", "harbor": "t-harbor", "quay": "t-quay"}

# Each kind's notification, in the shape its documentation gives (written for these tests).
DISTRIBUTION = {
    "events": [
        {"id": "1", "action": "push",
         "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST,
                    "repository": "team/app", "tag": "1.2.3",
                    "url": f"http://127.0.0.1:5000/v2/team/app/manifests/{DIGEST}"},
         "request": {"host": "127.0.0.1:5000", "method": "PUT"}},
        {"id": "2", "action": "push",  # a layer: not an image push
         "target": {"mediaType": "application/octet-stream", "repository": "team/other"},
         "request": {"host": "127.0.0.1:5000"}},
        {"id": "3", "action": "pull",
         "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "repository": "team/pulled"}, "request": {"host": "127.0.0.1:5000"}},
    ]
}  # fmt: skip
DOCKER_HUB = {
    "callback_url": "https://registry.hub.docker.com/u/acme/web/hook/x/",
    "push_data": {"pushed_at": 1_800_000_000, "pusher": "acme", "tag": "2.0"},
    "repository": {"repo_name": "acme/web", "name": "web", "namespace": "acme"},
}
HARBOR = {
    "type": "PUSH_ARTIFACT",
    "occur_at": 1_800_000_000,
    "operator": "admin",
    "event_data": {
        "resources": [{"digest": DIGEST, "tag": "v1",
                       "resource_url": "harbor.example.com/library/api:v1"}],
        "repository": {"name": "api", "namespace": "library", "repo_full_name": "library/api"},
    },
}  # fmt: skip
QUAY = {
    "repository": "acme/worker",
    "namespace": "acme",
    "name": "worker",
    "docker_url": "quay.io/acme/worker",
    "updated_tags": ["latest"],
}


@pytest.mark.parametrize(
    ("parse", "payload", "images"),
    [
        (registryevents.distribution, DISTRIBUTION, {"127.0.0.1:5000/team/app"}),
        (registryevents.docker_hub, DOCKER_HUB, {"index.docker.io/acme/web"}),
        (registryevents.docker_hub, {"repository": {"repo_name": "nginx"}},
         {"index.docker.io/library/nginx"}),
        (registryevents.harbor, HARBOR, {"harbor.example.com/library/api"}),
        (registryevents.harbor, {**HARBOR, "type": "DELETE_ARTIFACT"}, set()),
        (registryevents.quay, QUAY, {"quay.io/acme/worker"}),
    ],
)  # fmt: skip
def test_each_kind_names_the_pushed_images(parse, payload, images):
    assert parse(payload) == images


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        (registryevents.distribution, {"events": "x"}),
        (registryevents.distribution, [1]),
        (registryevents.docker_hub, {"repository": {}}),
        (registryevents.harbor, {"type": "PUSH_ARTIFACT", "event_data": {"resources": [{}]}}),
        (registryevents.quay, {"docker_url": "https://quay.io/NOT valid"}),
    ],
)
def test_a_payload_of_another_shape_is_an_event_error(parse, payload):
    with pytest.raises(EventError):
        parse(payload)


def test_the_token_says_which_kind_and_nothing_else_does():
    assert registryevents.kind_for("t-hub", TOKENS).name == "dockerhub"
    assert registryevents.kind_for("t-hu", TOKENS) is None
    assert registryevents.kind_for("", TOKENS) is None
    assert registryevents.kind_for(None, {"quay": ""}) is None  # an unset token is no token


def test_github_package_events_name_the_ghcr_image():
    package = {"name": "App", "namespace": "Octo-Org", "package_type": "CONTAINER"}
    assert container_image({"registry_package": package}) == "ghcr.io/octo-org/app"
    assert container_image({"package": {**package, "package_type": "npm"}}) is None


@pytest.fixture
async def events(aiohttp_client):
    store = Store.open("sqlite:///:memory:")
    runs = Runs()
    scheduler = Scheduler(runs, store.schedule, concurrency=2, tick=0.05)
    services = Services(store=store, scheduler=scheduler)
    client = await aiohttp_client(make_app(services, secret=SECRET, registry_tokens=TOKENS))
    scheduler.start()
    store.add_repository("o/uses-it", 1)
    store.add_repository("o/other", 1)
    await scheduler.wait_idle(timeout=5)
    store.save_images("o/uses-it", ["quay.io/acme/worker", "ghcr.io/o/x"])
    store.save_images("o/other", ["ghcr.io/o/x"])
    runs.repositories.clear()
    yield client, store, scheduler, runs
    await scheduler.stop()
    store.close()


async def test_a_push_makes_the_repositories_using_the_image_due_and_nothing_else(events):
    client, store, scheduler, runs = events
    answer = await client.post("/registry/events?token=t-quay", json=QUAY)
    assert answer.status == 202
    assert await answer.json() == {"images": 1, "repositories": 1}  # how many, never which
    await scheduler.wait_idle(timeout=5)
    assert runs.repositories == ["o/uses-it"]
    snapshot = store.snapshot_for_run("o/uses-it")
    assert set(snapshot.pushed) == {"quay.io/acme/worker"}
    assert store.snapshot_for_run("o/other").pushed == {}


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        ({}, 401),
        ({"headers": {"Authorization": "Bearer t-wrong"}}, 401),
        ({"headers": {"Authorization": "Basic dDp0"}}, 401),
        ({"params": {"token": "t-dist"}}, 202),
        ({"headers": {"Authorization": "Bearer t-dist"}}, 202),
    ],
)
async def test_unauthenticated_notifications_are_refused_before_the_body_is_read(
    events, auth, status
):
    client, *_ = events
    answer = await client.post("/registry/events", data=json.dumps(DISTRIBUTION), **auth)
    assert answer.status == status


async def test_a_body_sent_in_small_chunks_is_read_whole(events):
    client, *_ = events
    padded = {**QUAY, "homepage": "x" * 200_000}
    data = json.dumps(padded).encode()

    async def chunks():
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    answer = await client.post("/registry/events?token=t-quay", data=chunks())
    assert answer.status == 202


async def test_bad_bodies_get_400_or_413_naming_the_kind(events):
    client, *_ = events
    bearer = {"Authorization": "Bearer t-harbor"}
    answer = await client.post("/registry/events", data=b"{", headers=bearer)
    assert answer.status == 400 and "not a harbor notification" in await answer.text()
    answer = await client.post("/registry/events", json={"type": "PUSH_ARTIFACT"}, headers=bearer)
    assert answer.status == 400 and "event_data must be a JSON object" in await answer.text()
    # Harbor's other events (a deletion, a scan) are accepted and change nothing.
    answer = await client.post("/registry/events", json=QUAY, headers=bearer)
    assert answer.status == 202 and await answer.json() == {"images": 0, "repositories": 0}
    big = b"[" + b"1," * MAX_REGISTRY_EVENT_BYTES + b"1]"
    answer = await client.post("/registry/events", data=big, headers=bearer)
    assert answer.status == 413


async def test_a_github_package_event_on_the_app_webhook_makes_due_too(events):
    client, store, scheduler, runs = events
    body = json.dumps({
        "action": "published",
        "registry_package": {"name": "x", "namespace": "o", "package_type": "CONTAINER"},
        "installation": {"id": 1}, "sender": {"login": "octocat", "type": "User"},
    }).encode()  # fmt: skip
    answer = await client.post(
        "/api/github/webhooks", data=body, headers=headers("registry_package", body)
    )
    assert answer.status in (200, 202)
    await scheduler.wait_idle(timeout=5)
    assert sorted(runs.repositories) == ["o/other", "o/uses-it"]
