"""Webhook handlers on the bot's own branches and PRs, dispatched through the composed router."""

from __future__ import annotations

import pytest
from gidgethub import sansio

from bot.handlers import Services, router
from bot.scheduler import Scheduler
from bot.store import AutomationState, Claim, Store
from bot.update.prbody import PullRequestState

REPO = "octo-org/app"
BRANCH = "image-automation/auto"
BOT_SHA = "b" * 40
HUMAN_SHA = "c" * 40


class Env:
    def __init__(self):
        self.store = Store.open("sqlite:///:memory:")
        self.ran: list[str] = []
        self.forgotten: list[int] = []

        async def run(claim: Claim) -> None:
            self.ran.append(claim.repository)

        self.scheduler = Scheduler(run, self.store.schedule, concurrency=1, tick=0.05)
        self.services = Services(self.store, self.scheduler, self.forgotten.append)

    async def dispatch(self, event: str, payload: dict) -> None:
        await router.dispatch(sansio.Event(payload, event=event, delivery_id="d"), self.services)
        await self.scheduler.wait_idle(timeout=5)

    def state(self) -> AutomationState:
        return self.store.automation_state(REPO, "auto")


@pytest.fixture
async def env():
    e = Env()
    e.store.add_repository(REPO, 5, default_branch="main")
    e.store.save_automation_state(
        AutomationState(
            REPO,
            "auto",
            push_branch=BRANCH,
            base_branch="main",
            written_sha=BOT_SHA,
            pr_number=9,
            change_set="cs-store",
        )
    )
    e.scheduler.start()
    yield e
    await e.scheduler.stop()
    e.store.close()


def push(branch: str, after: str, installation: int = 5) -> dict:
    return {
        "ref": f"refs/heads/{branch}",
        "after": after,
        "repository": {"full_name": REPO, "default_branch": "main"},
        "installation": {"id": installation},
        "sender": {"login": "someone", "type": "User"},
    }


def pull(action: str, *, merged=False, body="", head_repo=REPO, number=9) -> dict:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "merged": merged,
            "body": body,
            "head": {"ref": BRANCH, "sha": HUMAN_SHA, "repo": {"full_name": head_repo}},
            "base": {"ref": "main"},
        },
        "repository": {"full_name": REPO},
        "installation": {"id": 5},
    }


async def test_the_bots_own_push_changes_nothing(env):
    await env.dispatch("push", push(BRANCH, BOT_SHA))
    assert not env.state().taken_over
    assert env.ran == []


async def test_someone_elses_push_to_the_bot_branch_locks_it(env):
    await env.dispatch("push", push(BRANCH, HUMAN_SHA))
    assert env.state().taken_over
    assert env.store.repository(REPO).dirty
    assert env.ran == [REPO]


async def test_an_early_push_before_the_pr_number_is_recorded_is_someone_elses(env):
    # The bot wrote BOT_SHA, but has not recorded its PR yet: any other head is foreign.
    state = env.state()
    state.pr_number = None
    env.store.save_automation_state(state)
    await env.dispatch("push", push(BRANCH, HUMAN_SHA))
    assert env.state().taken_over
    assert env.ran == [REPO]


async def test_deleting_the_bot_branch_asks_for_a_run_and_changes_no_state(env):
    before = env.state()
    await env.dispatch("push", push(BRANCH, "0" * 40))
    # A late delete must not make the bot forget commits it wrote since: the next
    # write finds the branch missing by itself.
    assert env.state() == before
    assert env.ran == [REPO]


async def test_pushes_to_base_branches_reconcile_and_others_do_not(env):
    await env.dispatch("push", push("feature/x", HUMAN_SHA))
    assert env.ran == []
    await env.dispatch("push", push("main", HUMAN_SHA))
    assert env.ran == [REPO]
    state = env.state()
    state.base_branch = "release"
    env.store.save_automation_state(state)
    await env.dispatch("push", push("release", HUMAN_SHA))
    assert env.ran == [REPO, REPO]


async def test_suspended_installations_ignore_pushes(env):
    env.store.set_suspended(5, True)
    await env.dispatch("push", push("main", HUMAN_SHA))
    assert env.ran == []


async def test_merged_is_recorded_with_the_change_set_from_the_hidden_block(env):
    body = "Automation: ns/auto\n\n" + PullRequestState("auto", "cs-body").block()
    await env.dispatch("pull_request", pull("closed", merged=True, body=body))
    assert env.store.merged_prs(REPO) == [("auto", 9, "cs-body")]
    assert not env.store.is_declined(REPO, "auto", "cs-body")
    assert env.state().pr_number is None
    assert env.ran == [REPO]


async def test_closed_unmerged_rejects_that_exact_change_set(env):
    await env.dispatch("pull_request", pull("closed"))
    assert env.store.is_declined(REPO, "auto", "cs-store")
    assert env.state().pr_number is None and env.state().change_set is None


async def test_reopened_takes_the_rejection_back(env):
    await env.dispatch("pull_request", pull("closed"))
    await env.dispatch("pull_request", pull("reopened"))
    assert not env.store.is_declined(REPO, "auto", "cs-store")
    assert env.state().pr_number == 9


async def test_a_fork_with_the_same_branch_name_is_not_the_bot(env):
    await env.dispatch("pull_request", pull("closed", head_repo="mallory/app"))
    assert not env.store.is_declined(REPO, "auto", "cs-store")
    assert env.state().pr_number == 9
    assert env.ran == []


async def test_another_pr_from_the_bot_branch_without_the_block_is_ignored(env):
    await env.dispatch("pull_request", pull("closed", number=10))
    assert env.state().pr_number == 9
    assert not env.store.is_declined(REPO, "auto", "cs-store")


async def test_synchronize_by_the_bot_itself_is_not_a_human_edit(env):
    payload = pull("synchronize")
    payload["pull_request"]["head"]["sha"] = BOT_SHA
    await env.dispatch("pull_request", payload)
    assert not env.state().taken_over


async def test_uninstalling_drops_tokens_and_state(env):
    await env.dispatch(
        "installation",
        {"action": "deleted", "installation": {"id": 5, "account": {"login": "octo-org"}}},
    )
    assert env.forgotten == [5]
    assert env.store.repository(REPO) is None
    assert env.store.automation_states(REPO) == []


async def test_a_close_the_bot_made_itself_is_not_a_rejection(env):
    state = env.state()
    state.forget_pull_request()  # what the reconcile does when it closes its PR
    env.store.save_automation_state(state)
    body = PullRequestState("auto", "cs-body").block()
    await env.dispatch("pull_request", pull("closed", body=body))
    assert not env.store.is_declined(REPO, "auto", "cs-body")


@pytest.mark.parametrize(
    ("selection", "listed", "asks_for_the_list"),
    [
        ("all", [], True),  # "all repositories", delivered without them: list them
        ("all", ["octo-org/one"], False),  # delivered with them
        ("selected", [], False),  # really none
    ],
)
async def test_an_installation_delivered_without_its_repositories_is_listed(
    env, selection, listed, asks_for_the_list
):
    asked: list[int] = []
    env.services.list_repositories = asked.append
    payload = {
        "action": "created",
        "installation": {
            "id": 77,
            "account": {"login": "octo-org"},
            "repository_selection": selection,
        },
        "repositories": [{"full_name": name} for name in listed],
    }
    await env.dispatch("installation", payload)
    assert asked == ([77] if asks_for_the_list else [])
    assert env.store.installation_repositories(77) == listed
    assert sorted(env.ran) == sorted(listed)  # those it was told of run at once
