"""Pushed images: GitHub's ``registry_package`` / ``package`` events, and (through
`record_pushes`) the registries' own notifications at ``POST /registry/events``.

A push makes every repository whose config names the image due now, and its run
scans that image again whatever its interval (`RunSnapshot.pushed`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from gidgethub import sansio
from gidgethub.routing import Router

from bot.handlers.context import Services
from bot.imageref import ImageRefError, parse_repository

log = logging.getLogger(__name__)
router = Router()

GHCR = "ghcr.io"


def record_pushes(services: Services, images: Collection[str]) -> int:
    """Note that `images` (canonical names) were pushed; run the repositories using them.

    Returns how many repositories were asked to run."""
    repositories = services.store.images_pushed(images, time.time())
    services.scheduler.enqueue_all(repositories)
    log.info("pushed: %s; %d repositories due now", ", ".join(sorted(images)), len(repositories))
    return len(repositories)


@router.register("registry_package", action="published")
@router.register("registry_package", action="updated")
@router.register("package", action="published")
@router.register("package", action="updated")
async def package_published(event: sansio.Event, services: Services) -> None:
    image = container_image(event.data)
    if image is not None:
        record_pushes(services, [image])


def container_image(data: dict) -> str | None:
    """The ghcr.io image a package event is about; None for other package types."""
    package = data.get("registry_package") or data.get("package")
    if not isinstance(package, dict):
        return None
    if str(package.get("package_type") or package.get("ecosystem") or "").lower() not in (
        "container",
        "docker",
    ):
        return None
    owner = package.get("namespace") or (package.get("owner") or {}).get("login")
    name = package.get("name")
    if not isinstance(owner, str) or not isinstance(name, str):
        return None
    try:
        return parse_repository(f"{GHCR}/{owner}/{name}".lower()).canonical_name
    except ImageRefError:
        return None
