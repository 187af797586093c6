"""Installations and repositories rediscovered from GitHub (the simulator), paginated."""

from __future__ import annotations

import aiohttp
import pytest

from bot.discovery import rediscover
from bot.github.auth import AppCredentials
from bot.github.client import AppClient
from bot.server import InstallationClients
from bot.store import Store


class Queue:
    def __init__(self) -> None:
        self.enqueued: list[str] = []
        self.forgotten: list[str] = []

    def enqueue(self, repository: str) -> None:
        self.enqueued.append(repository)

    def enqueue_all(self, repositories) -> None:
        self.enqueued.extend(repositories)

    def forget(self, repository: str) -> None:
        self.forgotten.append(repository)


@pytest.fixture
async def github(github_sim, app_key):
    app_id, private_pem, public_pem = app_key
    github_sim.sim.register_app(app_id=app_id, public_key_pem=public_pem)
    creds = AppCredentials(app_id=str(app_id), private_key=private_pem, base_url=github_sim.url)
    async with aiohttp.ClientSession() as session:
        app = AppClient(session, creds=creds)
        clients = InstallationClients(session, creds, app.token_cache(), write_interval=0.0)
        store = Store.open("sqlite:///:memory:")
        yield github_sim.sim, app_id, app, clients, store
        store.close()


async def test_a_new_database_learns_every_installation_and_all_their_repositories(github):
    sim, app_id, app, clients, store = github
    many = [f"octo-org/repo-{n:03}" for n in range(105)]  # more than one page of 100
    for name in many:
        sim.create_repository(name, files={"README.md": b"x\n"})
    sim.create_repository("alice/solo", files={"README.md": b"x\n"})
    org = sim.create_installation(app_id, account="octo-org", repositories=None)  # "all"
    user = sim.create_installation(app_id, account="alice", repositories=["alice/solo"])
    paused = sim.create_installation(app_id, account="paused-org", repositories=[])
    sim.suspend_installation(paused)
    queue = Queue()

    found = await rediscover(app, clients.client, store, queue, first_run_spread=600.0)

    assert found.installations == 3
    assert store.installation_repositories(org) == many
    assert store.installation_repositories(user) == ["alice/solo"]
    assert store.is_suspended(paused) and not store.is_suspended(org)
    # Nothing is run at once: each first run is due at its own time within the spread.
    assert queue.enqueued == []
    due = [store.schedule.due_in(name) for name in [*many, "alice/solo"]]
    assert all(due_in is not None and -5 <= due_in <= 600 for due_in in due)
    assert max(due) - min(due) > 60  # spread, not all at one moment
    assert sim.counters["GET /installation/repositories"] == 3  # two pages, then one


async def test_what_github_no_longer_lists_is_forgotten_and_what_it_lists_stays(github):
    sim, app_id, app, clients, store = github
    sim.create_repository("octo-org/kept", files={"README.md": b"x\n"})
    org = sim.create_installation(app_id, account="octo-org", repositories=["octo-org/kept"])
    store.upsert_installation(org, account="octo-org")
    store.add_repository("octo-org/kept", org)
    store.add_repository("octo-org/removed-while-down", org)
    store.upsert_installation(999, account="uninstalled-while-down")
    store.add_repository("gone/repo", 999)
    queue = Queue()

    found = await rediscover(app, clients.client, store, queue)

    assert store.installation_repositories(org) == ["octo-org/kept"]
    assert found.removed == ["octo-org/removed-while-down"]
    assert found.forgotten_installations == [999] and not store.installation_known(999)
    assert sorted(queue.forgotten) == ["gone/repo", "octo-org/removed-while-down"]
    assert queue.enqueued == []  # nothing new
