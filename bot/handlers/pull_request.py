"""`pull_request` on the bot's own PRs: merged, closed unmerged, reopened, pushed to."""

from __future__ import annotations

import logging

from gidgethub import sansio
from gidgethub.routing import Router

from bot.handlers.context import Services
from bot.store import AutomationState
from bot.update.prbody import parse_state_block

log = logging.getLogger(__name__)
router = Router()


def _bot_pull_request(
    payload: dict, services: Services, *, known_open: bool = False
) -> AutomationState | None:
    """The automation whose PR this is, or None when it is not one of the bot's.

    `known_open`: only a PR the store holds as the automation's open PR counts
    (a PR the bot closed itself is already forgotten, so its close is not a "no").
    """
    pull = payload["pull_request"]
    full_name = payload["repository"]["full_name"]
    head_repo = (pull["head"].get("repo") or {}).get("full_name")
    if head_repo != full_name:
        return None  # from a fork: never the bot's
    state = services.store.automation_for_branch(full_name, pull["head"]["ref"])
    if state is None:
        return None
    if known_open and state.pr_number != payload["number"]:
        return None
    if state.pr_number not in (None, payload["number"]):
        # Another PR from the same branch: only the hidden block can tell it is ours.
        block = parse_state_block(pull.get("body") or "")
        if not block or block.get("automation") != state.automation:
            return None
    return state


def _proposed_change_set(payload: dict, state: AutomationState) -> str | None:
    block = parse_state_block(payload["pull_request"].get("body") or "") or {}
    return block.get("changeSet") or state.change_set


@router.register("pull_request", action="closed")
async def pull_request_closed(event: sansio.Event, services: Services) -> None:
    state = _bot_pull_request(event.data, services, known_open=True)
    if state is None:
        return
    full_name = state.repository
    number = event.data["number"]
    change_set = _proposed_change_set(event.data, state)
    if event.data["pull_request"].get("merged"):
        services.store.record_merged(full_name, state.automation, number, change_set)
        log.info("%s#%s merged", full_name, number)
    elif change_set:
        # Closed unmerged: never propose this exact set again (newer images are fine).
        services.store.reject_change_set(full_name, state.automation, change_set, pr_number=number)
        log.info("%s#%s closed unmerged; its changes will not be proposed again", full_name, number)
    state.forget_pull_request()
    services.store.save_automation_state(state)
    services.store.mark_dirty(full_name)
    services.scheduler.enqueue(full_name)


@router.register("pull_request", action="reopened")
async def pull_request_reopened(event: sansio.Event, services: Services) -> None:
    # A person wants it after all: the bot keeps it up to date again.
    state = _bot_pull_request(event.data, services)
    if state is None:
        return
    number = event.data["number"]
    block = parse_state_block(event.data["pull_request"].get("body") or "") or {}
    store = services.store
    rejected = store.rejected_by_pull_request(state.repository, state.automation, number)
    for change_set in {*rejected, *([block["changeSet"]] if block.get("changeSet") else [])}:
        store.forget_rejection(state.repository, state.automation, change_set)
    change_set = block.get("changeSet") or (rejected[0] if rejected else state.change_set)
    state.pr_number = number
    state.change_set = change_set
    services.store.save_automation_state(state)
    services.store.mark_dirty(state.repository)
    services.scheduler.enqueue(state.repository)


@router.register("pull_request", action="synchronize")
async def pull_request_synchronized(event: sansio.Event, services: Services) -> None:
    state = _bot_pull_request(event.data, services, known_open=True)
    if state is None or state.bot_wrote(event.data["pull_request"]["head"]["sha"]):
        return
    state.human_edited = True
    services.store.save_automation_state(state)
    services.store.mark_dirty(state.repository)
    services.scheduler.enqueue(state.repository)
