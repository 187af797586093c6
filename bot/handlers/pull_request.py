"""`pull_request` on the bot's own PRs: merged, closed unmerged, reopened, pushed to.

Each handler finds the automation and calls its transition in `bot.pullrequest`.
"""

from __future__ import annotations

from gidgethub import sansio
from gidgethub.routing import Router

from bot import pullrequest
from bot.handlers.context import Services
from bot.store import AutomationState
from bot.update.prbody import PullRequestState

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
        block = PullRequestState.parse(pull.get("body"))
        if block is None or block.automation != state.automation:
            return None
    return state


def _run_again(services: Services, state: AutomationState) -> None:
    services.store.mark_dirty(state.repository)
    services.scheduler.enqueue(state.repository)


@router.register("pull_request", action="closed")
async def pull_request_closed(event: sansio.Event, services: Services) -> None:
    state = _bot_pull_request(event.data, services, known_open=True)
    if state is None:
        return
    pullrequest.closed(services.store, state, event.data["pull_request"])
    _run_again(services, state)


@router.register("pull_request", action="reopened")
async def pull_request_reopened(event: sansio.Event, services: Services) -> None:
    state = _bot_pull_request(event.data, services)
    if state is None:
        return
    pullrequest.reopened(services.store, state, event.data["pull_request"])
    _run_again(services, state)


@router.register("pull_request", action="synchronize")
async def pull_request_synchronized(event: sansio.Event, services: Services) -> None:
    state = _bot_pull_request(event.data, services, known_open=True)
    if state is None:
        return
    if pullrequest.pushed(services.store, state, event.data["pull_request"]["head"]["sha"]):
        _run_again(services, state)
