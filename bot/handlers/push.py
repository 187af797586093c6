"""`push`: a base branch moved (reconcile), or someone else pushed to a bot branch."""

from __future__ import annotations

import logging

from gidgethub import sansio
from gidgethub.routing import Router

from bot import pullrequest
from bot.handlers.context import Services, installation_id

log = logging.getLogger(__name__)
router = Router()

BRANCH_PREFIX = "refs/heads/"


@router.register("push")
async def branch_pushed(event: sansio.Event, services: Services) -> None:
    payload = event.data
    ref = payload.get("ref") or ""
    installation = installation_id(payload)
    if not ref.startswith(BRANCH_PREFIX) or installation is None:
        return  # tags, or a repository hook rather than the app's
    repository = payload["repository"]
    full_name = repository["full_name"]
    branch = ref[len(BRANCH_PREFIX) :]
    store = services.store
    # A push from an installation proves access even if we missed its added event.
    store.add_repository(full_name, installation, default_branch=repository.get("default_branch"))
    if store.is_suspended(installation):
        return

    state = store.automation_for_branch(full_name, branch)
    if state is not None and state.push_branch != state.base_branch:
        if pullrequest.pushed(store, state, payload.get("after") or ""):
            log.info("%s: %s was pushed to or deleted by someone else", full_name, branch)
            store.mark_dirty(full_name)
            services.scheduler.enqueue(full_name)
        return

    base_branches = {s.base_branch for s in store.automation_states(full_name)}
    if branch == repository.get("default_branch") or branch in base_branches:
        services.scheduler.enqueue(full_name)
