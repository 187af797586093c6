"""`push`: a base branch moved (reconcile), or someone else pushed to a bot branch."""

from __future__ import annotations

import logging

from gidgethub import sansio
from gidgethub.routing import Router

from bot import pullrequest
from bot.handlers import payloads
from bot.handlers.context import Services

log = logging.getLogger(__name__)
router = Router()


@router.register("push")
async def branch_pushed(event: sansio.Event, services: Services) -> None:
    push = payloads.push_event(event.data)
    branch = push.branch
    if branch is None or push.installation_id is None:
        return  # tags, or a repository hook rather than the app's
    full_name = push.repository
    store = services.store
    # A push from an installation proves access even if we missed its added event.
    store.add_repository(full_name, push.installation_id, default_branch=push.default_branch)
    if store.is_suspended(push.installation_id):
        return

    state = store.automation_for_branch(full_name, branch)
    if state is not None and state.push_branch != state.base_branch:
        if pullrequest.pushed(store, state, push.after):
            log.info("%s: %s was pushed to or deleted by someone else", full_name, branch)
            store.mark_dirty(full_name)
            services.scheduler.enqueue(full_name)
        return

    base_branches = {s.base_branch for s in store.automation_states(full_name)}
    if branch == push.default_branch or branch in base_branches:
        services.scheduler.enqueue(full_name)
