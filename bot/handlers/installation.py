"""`installation` and `installation_repositories`: which repositories the bot visits."""

from __future__ import annotations

import logging

from gidgethub import sansio
from gidgethub.routing import Router

from bot.handlers.context import Services

log = logging.getLogger(__name__)
router = Router()


def _account(payload: dict) -> str:
    return str((payload["installation"].get("account") or {}).get("login", ""))


def _record(services: Services, payload: dict) -> int:
    """Store the installation as the payload describes it; returns its id."""
    installation = payload["installation"]["id"]
    services.store.upsert_installation(
        installation,
        account=_account(payload),
        permissions=payload["installation"].get("permissions"),
    )
    return installation


def _add(services: Services, installation: int, repositories: list[dict]) -> None:
    for repo in repositories:
        services.store.add_repository(repo["full_name"], installation)
        services.scheduler.enqueue(repo["full_name"])


@router.register("installation", action="created")
async def installation_created(event: sansio.Event, services: Services) -> None:
    payload = event.data
    installation = _record(services, payload)
    services.store.set_suspended(installation, bool(payload["installation"].get("suspended_at")))
    _add(services, installation, payload.get("repositories") or [])
    log.info("installed on %s (installation %s)", _account(payload), installation)


@router.register("installation", action="deleted")
async def installation_deleted(event: sansio.Event, services: Services) -> None:
    installation = event.data["installation"]["id"]
    for full_name in services.store.delete_installation(installation):
        services.scheduler.forget(full_name)
    services.forget_installation(installation)
    log.info("uninstalled from %s (installation %s)", _account(event.data), installation)


@router.register("installation", action="suspend")
async def installation_suspended(event: sansio.Event, services: Services) -> None:
    installation = _record(services, event.data)
    services.store.set_suspended(installation, True)
    log.info("installation %s suspended: its repositories are paused", installation)


@router.register("installation", action="unsuspend")
async def installation_unsuspended(event: sansio.Event, services: Services) -> None:
    installation = _record(services, event.data)
    services.store.set_suspended(installation, False)
    for full_name in services.store.installation_repositories(installation):
        services.scheduler.enqueue(full_name)


@router.register("installation", action="new_permissions_accepted")
async def permissions_accepted(event: sansio.Event, services: Services) -> None:
    # Runs that failed for lack of a permission may succeed now: run them fully.
    installation = _record(services, event.data)
    known = services.store.installation_repositories(installation)
    _add(
        services,
        installation,
        [r for r in event.data.get("repositories") or [] if r["full_name"] not in known],
    )
    for full_name in services.store.installation_repositories(installation):
        services.store.mark_dirty(full_name)
        services.scheduler.enqueue(full_name)


@router.register("installation_repositories", action="added")
async def repositories_added(event: sansio.Event, services: Services) -> None:
    installation = event.data["installation"]["id"]
    if not services.store.installation_known(installation):
        services.store.upsert_installation(installation, account=_account(event.data))
    _add(services, installation, event.data.get("repositories_added") or [])


@router.register("installation_repositories", action="removed")
async def repositories_removed(event: sansio.Event, services: Services) -> None:
    for repo in event.data.get("repositories_removed") or []:
        services.store.remove_repository(repo["full_name"])
        services.scheduler.forget(repo["full_name"])
