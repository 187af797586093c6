"""`push`: a base branch moved (reconcile), or someone else pushed to a bot branch."""

from __future__ import annotations

import logging

from gidgethub import sansio
from gidgethub.routing import Router

from bot.handlers.context import Services, installation_id

log = logging.getLogger(__name__)
router = Router()

BRANCH_PREFIX = "refs/heads/"
ZERO_SHA = "0" * 40


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
        after = payload.get("after") or ""
        if after == ZERO_SHA:
            # Branch deleted (after a merge, say): the next proposal starts it afresh.
            state.written_sha = state.prior_sha = None
            store.save_automation_state(state)
        elif not state.bot_wrote(after) and state.pr_number is not None:
            state.human_edited = True
            store.save_automation_state(state)
            log.info("%s: someone else pushed to %s; leaving it alone", full_name, branch)
        else:
            return  # the bot's own push
        store.mark_dirty(full_name)
        services.scheduler.enqueue(full_name)
        return

    base_branches = {s.base_branch for s in store.automation_states(full_name)}
    if branch == repository.get("default_branch") or branch in base_branches:
        services.scheduler.enqueue(full_name)
