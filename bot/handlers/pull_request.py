"""`pull_request` on the bot's own PRs: merged, closed unmerged, reopened, pushed to.

Each handler finds the automation and calls its transition in `bot.pullrequest`.
"""

from __future__ import annotations

from collections.abc import Callable

from gidgethub import sansio
from gidgethub.routing import Router

from bot import pullrequest
from bot.handlers import payloads
from bot.handlers.context import Services
from bot.store import AutomationState, Store
from bot.update.prbody import PullRequestState

router = Router()

#: A transition in `bot.pullrequest`; returning False means the event needs no run.
Transition = Callable[[Store, AutomationState, dict], bool | None]


def _bot_pull_request(
    pull: payloads.PullRequestEvent, services: Services, *, known_open: bool = False
) -> AutomationState | None:
    """The automation whose PR this is, or None when it is not one of the bot's.

    `known_open`: only a PR the store holds as the automation's open PR counts
    (a PR the bot closed itself is already forgotten, so its close is not a "no").
    """
    if pull.head_repository != pull.repository:
        return None  # from a fork: never the bot's
    state = services.store.automation_for_branch(pull.repository, pull.head_ref)
    if state is None:
        return None
    if known_open and state.pr_number != pull.number:
        return None
    if state.pr_number not in (None, pull.number):
        # Another PR from the same branch: only the hidden block can tell it is ours.
        block = PullRequestState.parse(pull.body)
        if block is None or block.automation != state.automation:
            return None
    return state


def _apply(
    event: sansio.Event, services: Services, transition: Transition, *, known_open: bool
) -> None:
    """Apply `transition` to the automation whose PR this is, then run its repository again."""
    pull = payloads.pull_request_event(event.data)
    state = _bot_pull_request(pull, services, known_open=known_open)
    if state is None:
        return
    if transition(services.store, state, pull.transition_view()) is not False:
        services.store.mark_dirty(state.repository)
        services.scheduler.enqueue(state.repository)


@router.register("pull_request", action="closed")
async def pull_request_closed(event: sansio.Event, services: Services) -> None:
    _apply(event, services, pullrequest.closed, known_open=True)


@router.register("pull_request", action="reopened")
async def pull_request_reopened(event: sansio.Event, services: Services) -> None:
    _apply(event, services, pullrequest.reopened, known_open=False)


@router.register("pull_request", action="synchronize")
async def pull_request_synchronized(event: sansio.Event, services: Services) -> None:
    _apply(event, services, _pushed, known_open=True)


def _pushed(store: Store, state: AutomationState, pull: dict) -> bool:
    """`pullrequest.pushed` takes the new head rather than the PR."""
    return pullrequest.pushed(store, state, pull["head"]["sha"])
