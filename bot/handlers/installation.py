"""`installation` and `installation_repositories`: which repositories the bot visits.

Each handler reads the delivery through `bot.handlers.payloads` first: a
malformed one raises before anything is stored.
"""

from __future__ import annotations

import logging

from gidgethub import sansio
from gidgethub.routing import Router

from bot.handlers import payloads
from bot.handlers.context import Services

log = logging.getLogger(__name__)
router = Router()


def _record(services: Services, installation: payloads.Installation) -> int:
    """Store the installation as the payload describes it; returns its id."""
    services.store.upsert_installation(
        installation.id, account=installation.account, permissions=installation.permissions
    )
    return installation.id


def _add(services: Services, installation: int, repositories: list[str]) -> None:
    """Know the repositories and run them now (someone just gave the App access)."""
    services.store.add_repositories(installation, dict.fromkeys(repositories))
    services.scheduler.enqueue_all(repositories)


@router.register("installation", action="created")
async def installation_created(event: sansio.Event, services: Services) -> None:
    delivery = payloads.installation_event(event.data)
    installation = _record(services, delivery.installation)
    services.store.set_suspended(installation, delivery.installation.suspended)
    _add(services, installation, delivery.repositories)
    if delivery.unlisted:
        services.list_repositories(installation)
    log.info("installed on %s (installation %s)", delivery.installation.account, installation)


@router.register("installation", action="deleted")
async def installation_deleted(event: sansio.Event, services: Services) -> None:
    installation = payloads.installation_of(event.data)
    for full_name in services.store.delete_installation(installation.id):
        services.scheduler.forget(full_name)
    services.forget_installation(installation.id)
    log.info("uninstalled from %s (installation %s)", installation.account, installation.id)


@router.register("installation", action="suspend")
async def installation_suspended(event: sansio.Event, services: Services) -> None:
    installation = _record(services, payloads.installation_of(event.data))
    services.store.set_suspended(installation, True)
    log.info("installation %s suspended: its repositories are paused", installation)


@router.register("installation", action="unsuspend")
async def installation_unsuspended(event: sansio.Event, services: Services) -> None:
    installation = _record(services, payloads.installation_of(event.data))
    services.store.set_suspended(installation, False)
    services.scheduler.enqueue_all(services.store.installation_repositories(installation))


@router.register("installation", action="new_permissions_accepted")
async def permissions_accepted(event: sansio.Event, services: Services) -> None:
    # Runs that failed for lack of a permission may succeed now: run them fully.
    delivery = payloads.installation_event(event.data)
    installation = _record(services, delivery.installation)
    known = services.store.installation_repositories(installation)
    _add(services, installation, [name for name in delivery.repositories if name not in known])
    if delivery.unlisted:
        services.list_repositories(installation)
    repositories = services.store.installation_repositories(installation)
    for full_name in repositories:
        services.store.mark_dirty(full_name)
    services.scheduler.enqueue_all(repositories)


@router.register("installation_repositories", action="added")
async def repositories_added(event: sansio.Event, services: Services) -> None:
    delivery = payloads.installation_repositories_event(event.data)
    installation = delivery.installation.id
    if not services.store.installation_known(installation):
        services.store.upsert_installation(installation, account=delivery.installation.account)
    _add(services, installation, delivery.added)


@router.register("installation_repositories", action="removed")
async def repositories_removed(event: sansio.Event, services: Services) -> None:
    for full_name in payloads.installation_repositories_event(event.data).removed:
        services.store.remove_repository(full_name)
        services.scheduler.forget(full_name)
