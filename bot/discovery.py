"""Installations rediscovered from GitHub, so a new or restored database converges by itself.

Webhooks tell the bot what changes, but a database that is new, restored from
a backup, or was down while deliveries failed, knows nothing of what happened.
At start-up and once a day, `GET /app/installations` (as the App) and
`GET /installation/repositories` (as each installation), both paginated, bring
the store up to date: installations and repositories added, suspensions
recorded, and those that are gone forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.github.client import AppClient, GitHubClient, uncached
from bot.github.errors import GitHubError
from bot.handlers.context import RunQueue
from bot.store import Store

log = logging.getLogger(__name__)

#: How often the store is compared with GitHub again.
REDISCOVERY_INTERVAL = 24 * 3600.0


@dataclass
class Discovered:
    """What one rediscovery changed."""

    installations: int = 0
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    forgotten_installations: list[int] = field(default_factory=list)


async def rediscover(
    app: AppClient,
    client: Callable[[int], GitHubClient],
    store: Store,
    scheduler: RunQueue,
    *,
    first_run_spread: float = 0.0,
) -> Discovered:
    """Make the store's installations and repositories what GitHub says they are.

    New repositories become due at a random time within `first_run_spread`
    seconds (a fresh database learns of all of them at once); ones GitHub no
    longer lists are forgotten.
    What a webhook records while this runs is kept: only what was known before
    the listing began can be found stale.
    """
    found = Discovered()
    # Known before asking: one a webhook stores meanwhile is not taken for a stale one.
    known_before = store.installation_ids()
    listed: set[int] = set()
    with uncached():
        installations = [i async for i in app.getiter("/app/installations?per_page=100")]
    for installation in installations:
        installation_id = _positive_int(installation.get("id"))
        if installation_id is None:
            continue
        listed.add(installation_id)
        found.installations += 1
        account = (installation.get("account") or {}).get("login") or ""
        store.upsert_installation(
            installation_id, account=account, permissions=installation.get("permissions") or {}
        )
        suspended = installation.get("suspended_at") is not None
        store.set_suspended(installation_id, suspended)
        if suspended:
            continue  # a suspended installation's token is refused: its list waits
        await sync_repositories(
            client(installation_id),
            installation_id,
            store,
            scheduler,
            found,
            first_run_spread=first_run_spread,
        )
    for installation_id in known_before:
        if installation_id not in listed:
            for full_name in store.delete_installation(installation_id):
                scheduler.forget(full_name)
            found.forgotten_installations.append(installation_id)
    return found


async def sync_repositories(
    gh: GitHubClient,
    installation_id: int,
    store: Store,
    scheduler: RunQueue,
    found: Discovered,
    *,
    first_run_spread: float = 0.0,
) -> None:
    """The installation's repositories as `GET /installation/repositories` lists them."""
    known = set(store.installation_repositories(installation_id))
    seen: set[str] = set()
    # 100 a page (GitHub's most), and no ETags kept: the list is read once a day.
    with uncached():
        listed = [
            repository
            async for repository in gh.getiter(
                "/installation/repositories?per_page=100", iterable_key="repositories"
            )
        ]
    for repository in listed:
        full_name = repository.get("full_name")
        if not isinstance(full_name, str) or full_name.count("/") != 1:
            continue
        seen.add(full_name)
        if full_name not in known:
            store.add_repository(
                full_name,
                installation_id,
                default_branch=repository.get("default_branch"),
                due_in=random.uniform(0.0, first_run_spread),
            )
            found.added.append(full_name)
    for full_name in sorted(known - seen):
        store.remove_repository(full_name)
        scheduler.forget(full_name)
        found.removed.append(full_name)


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


async def keep_rediscovering(
    app: AppClient,
    client: Callable[[int], GitHubClient],
    store: Store,
    scheduler: RunQueue,
    *,
    first_run_spread: float = 0.0,
    interval: float = REDISCOVERY_INTERVAL,
) -> None:
    """`rediscover` now and every `interval` seconds; a failure waits for the next time."""
    while True:
        try:
            found = await rediscover(
                app, client, store, scheduler, first_run_spread=first_run_spread
            )
            log.info(
                "rediscovered %d installation(s): %d repository(ies) added, %d removed, "
                "%d installation(s) forgotten",
                found.installations,
                len(found.added),
                len(found.removed),
                len(found.forgotten_installations),
            )
        except GitHubError as exc:
            log.warning("rediscovering installations failed: %s; trying again later", exc)
        await asyncio.sleep(interval)


class InstallationListing:
    """Lists an installation's repositories in the background, for webhook handlers.

    An "all repositories" installation's delivery names none; the handler, which
    does no network work, asks for the list here. What it finds is due at once
    (someone just installed the App and waits for its first PR).
    """

    def __init__(
        self, client: Callable[[int], GitHubClient], store: Store, scheduler: RunQueue
    ) -> None:
        self._client = client
        self._store = store
        self._scheduler = scheduler
        self._tasks: set[asyncio.Task] = set()

    def start(self, installation_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._list(installation_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _list(self, installation_id: int) -> None:
        found = Discovered()
        try:
            await sync_repositories(
                self._client(installation_id), installation_id, self._store, self._scheduler, found
            )
        except GitHubError as exc:
            log.warning(
                "listing the repositories of installation %s failed: %s; the daily "
                "rediscovery lists them again",
                installation_id,
                exc,
            )
            return
        log.info(
            "installation %s: %d repository(ies) listed and due", installation_id, len(found.added)
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
