"""One automation's branch and pull request: the one owner of both, as a state machine.

The reconcile calls `propose` (PR mode) or `commit_directly` (direct mode);
the webhook handlers call `pushed`, `closed` and `reopened`. Nothing else
moves the bot's branch or touches its PR, and the state lives in one
`AutomationState` row.

States::

    none        no PR open; the branch is absent, or holds a commit the bot wrote
                (or the head of a PR that was closed, whose commits that PR keeps)
    open        the bot's PR is open and its branch head is the commit the bot wrote
    taken over  someone else's commit is on the branch: the bot never moves it, says
                why once (PR comment and check run), and each run looks whether it
                was given back (PR closed, branch deleted or reset to the bot's commit)
    direct      push branch == checkout branch (Flux's mode): fast-forward commits, no PR

Transitions (→ what a person sees)::

    none       --propose: changes-->       open        branch created, PR opened
    none       --propose: branch has someone else's head--> taken over   check-run warning
    open       --propose: new changes-->   open        branch rebuilt, then PR text updated
    open       --propose: nothing left-->  none        PR closed with a comment
    open       --propose: declined before-->none       PR closed with a comment
    open       --propose: head not the bot's--> taken over   PR comment, check-run warning
    open       --pushed (not the bot's)--> taken over  PR comment, check-run warning
    open       --closed, merged-->         none        merge recorded
    open       --closed, unmerged-->       none        its change set is never proposed again
    taken over --closed / branch deleted--> none       then proposes afresh in the same run
    taken over --head is the bot's after all--> open   a late or repeated webhook was wrong
    open       --retire (left the config)--> (gone)    PR closed with a comment, state forgotten
    none       --reopened-->               open        the decline is forgotten
    direct     --commit_directly-->        direct      fast-forward, re-planned if it lost a race

`closed` and `reopened` are reached by the webhook, or by a run that finds
the PR so (a webhook missed while the bot was down): both go through the
same function. A webhook never decides alone: `pushed` may mark the branch
taken over, but the next run reads the head and undoes what a late delivery
marked.
Before the branch is moved or the PR's text rewritten, the PR is read, so a
closed PR is never edited and the read head is the compare-and-swap check.
Every 4xx GitHub answers for good is reported on the automation by the
reconcile, so one refused request never wedges the repository.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.config import AutomationConfig, Config
from bot.github.errors import (
    BranchMoved,
    GitHubError,
    NotFastForward,
    NotFound,
    ValidationFailed,
)
from bot.github.pulls import Pulls
from bot.github.repo import Repo
from bot.github.trees import Tree
from bot.planner import AutomationPlan
from bot.problems import Problem, Severity
from bot.store import AutomationState, Store
from bot.update.prbody import PullRequestState

log = logging.getLogger(__name__)

#: Direct-commit mode: how often to re-read and retry when the branch moves under us.
FAST_FORWARD_ATTEMPTS = 3
ZERO_SHA = "0" * 40

NOTHING_LEFT = "Nothing is left to update: the files already use the latest images."
DECLINED = "These exact changes were declined before, so they are not proposed again."
REMOVED = "The automation `{name}` is no longer in the bot's config, so its pull request is closed."
TAKEN_OVER_COMMENT = (
    "Someone other than the bot pushed to `{branch}`, so the bot leaves this branch alone "
    "from now on: it will not update or close this pull request. Merge or close it "
    "yourself; once it is closed the bot proposes new updates again."
)


@dataclass
class Outcome:
    """What one run did to one automation: a status line and what the check run must say."""

    status: str
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Proposal:
    """Everything one automation's run needs to own its branch and PR."""

    store: Store
    repo: Repo
    automation: AutomationConfig
    state: AutomationState
    config: Config

    @property
    def pulls(self) -> Pulls:
        return Pulls(self.repo.gh, self.repo.full_name)

    def _author(self) -> tuple[str, str] | None:
        a = self.automation
        return (a.author_name, a.author_email) if a.author_name and a.author_email else None

    def _save(self) -> None:
        self.store.save_automation_state(self.state)

    def _warning(self, message: str) -> Problem:
        return self.config.problem(self.automation, message, severity=Severity.WARNING)

    # -- PR mode ------------------------------------------------------------------------

    async def propose(self, plan: AutomationPlan, tree: Tree) -> Outcome:
        """Bring the branch and PR in line with `plan`, computed on the base commit `tree`."""
        state = self.state
        if not state.stored and plan.result:
            await self._recover_history()
        if state.pr_number is None and (state.written_sha or plan.result):
            await self._find_lost_pull_request()
        if state.taken_over and not await self.given_back():
            return await self._leave_alone()

        if plan.result and not (plan.title and plan.commit_message):
            return Outcome("not proposed: the templates failed (see errors)")
        declined = bool(plan.change_set) and self.store.is_declined(
            state.repository, state.automation, plan.change_set
        )
        if not plan.result or declined or not plan.edited:
            return await self._withdraw(DECLINED if declined else NOTHING_LEFT, declined=declined)

        if (
            state.pr_number is not None
            and state.written_sha is not None
            and state.change_set == plan.change_set
            and state.base_sha == tree.commit_sha
            and (state.pr_title, state.pr_body) == (plan.title, plan.body(head=state.written_sha))
        ):
            await self._sync_labels()
            return Outcome(f"up to date #{state.pr_number}")

        sha = await self.repo.commit(
            base=tree, files=plan.edited, message=plan.commit_message, author=self._author()
        )
        if state.pr_number is not None:
            outcome = await self._update(plan, sha)
            if outcome is not None:
                return outcome
            if self.store.is_declined(state.repository, state.automation, plan.change_set):
                return Outcome("declined before; not proposed again")
        return await self._open(plan, sha)

    async def _recover_history(self) -> None:
        """No row for this automation (new, or the database was lost): read back its closed PRs.

        Their hidden blocks say which change sets were declined and which merged,
        so a lost database does not re-propose what a person said no to; and the
        newest one's head may be rebuilt from (the closed PR keeps its commits).
        """
        state = self.state
        newest = True
        for pull in await self.pulls.closed_from(state.push_branch):
            block = PullRequestState.parse(pull.get("body"))
            if block is None or block.automation != state.automation:
                continue
            if pull.get("merged_at"):
                self.store.record_merged(
                    state.repository, state.automation, pull["number"], block.change_set
                )
            else:
                self.store.decline_change_set(
                    state.repository, state.automation, block.change_set, pr_number=pull["number"]
                )
            if newest:
                state.released_head = pull["head"]["sha"]
                newest = False

    async def _find_lost_pull_request(self) -> None:
        """Not known to the store (first run, lost state, crash before the PR): ask once."""
        state = self.state
        pull = await self.pulls.find_open(head_branch=state.push_branch, base=state.base_branch)
        if pull is None:
            return
        head = pull["head"]["sha"]
        block = PullRequestState.parse(pull.get("body"))
        if self.store.declined_by_pull_request(state.repository, state.automation, pull["number"]):
            reopened(self.store, state, pull)  # reopened while no webhook came: a person wants it
        self._remember_pull(pull)
        if block is None or block.automation != state.automation:
            state.taken_over = True  # a PR from our branch that the bot did not open
        elif not state.bot_wrote(head):
            if block.head == head or (block.head is None and state.written_sha is None):
                state.written_sha = head  # the store lost track of the bot's own commit
            else:
                state.taken_over = True
        if state.bot_wrote(head) and state.base_sha is None:
            # Which base its one commit is on: unchanged, the PR is up to date, not rebuilt
            # (`python -m bot run` starts here every time).
            parents = await self.repo.commit_parents(head)
            if len(parents) == 1:
                state.base_sha = parents[0]

    def _remember_pull(self, pull: dict) -> None:
        state = self.state
        state.pr_number = pull["number"]
        state.pr_title, state.pr_body = pull.get("title"), pull.get("body")
        state.pr_labels = sorted(label["name"] for label in pull.get("labels") or [])
        block = PullRequestState.parse(pull.get("body"))
        if block is not None:
            state.change_set = block.change_set

    async def given_back(self) -> bool:
        """Is a taken-over branch the bot's again? One conditional request.

        Its PR was closed (a missed webhook: recorded now, as the webhook would),
        or the head is the bot's own commit after all (a late webhook marked it), or,
        with no PR, the branch was deleted or reset to the bot's own commit.
        """
        state = self.state
        if state.pr_number is not None:
            pull = await self._read_open_pull(state.pr_number)
            if pull is None:
                return True
            if not state.bot_wrote(pull["head"]["sha"]):
                return False
            # The head is the bot's own commit: a late or repeated webhook marked it.
            state.taken_over = state.taken_over_noted = False
            return True
        head = await self.repo.branch_sha(state.push_branch)
        if head is not None and not state.may_move(head):
            return False
        state.taken_over = state.taken_over_noted = False
        return True

    async def _read_open_pull(self, number: int) -> dict | None:
        """The PR as it is now, or None when it was closed (recorded as the webhook would)."""
        pull = await self.pulls.get(number)
        if pull.get("state") == "closed":
            closed(self.store, self.state, pull)
            return None
        return pull

    async def _leave_alone(self) -> Outcome:
        """Someone else's commit is on the branch: mark it taken over, never move it, say why.

        In the check run each time it runs fully, and on the PR, if there is one, once.
        """
        state = self.state
        state.taken_over = True
        where = f"#{state.pr_number}" if state.pr_number is not None else state.push_branch
        why = self._warning(
            f"branch {state.push_branch!r} holds a commit the bot did not write, so the bot "
            "leaves it alone; "
            + (
                "close the pull request to let the bot propose again"
                if state.pr_number is not None
                else "delete the branch, or choose another git.push.branch"
            )
        )
        if state.pr_number is not None and not state.taken_over_noted:
            await self.pulls.comment(
                state.pr_number, TAKEN_OVER_COMMENT.format(branch=state.push_branch)
            )
            state.taken_over_noted = True
        return Outcome(f"left alone: {where} has commits by someone else", [why])

    async def retire(self) -> Outcome:
        """The automation left the config: close its open PR (unless someone took it over)."""
        if self.state.taken_over:
            return Outcome("removed from the config; its PR has commits by someone else")
        outcome = await self._withdraw(REMOVED.format(name=self.state.automation), declined=False)
        return Outcome(f"removed from the config: {outcome.status}", outcome.problems)

    async def _withdraw(self, reason: str, *, declined: bool) -> Outcome:
        """Nothing to propose: close the open PR, if there is one, saying why."""
        state = self.state
        if state.pr_number is None:
            return Outcome("declined before; not proposed again" if declined else "up to date")
        number = state.pr_number
        pull = await self._read_open_pull(number)
        if pull is None:
            return Outcome(f"#{number} was closed meanwhile")
        if not state.bot_wrote(pull["head"]["sha"]):
            return await self._leave_alone()  # it promised not to close a PR someone pushed to
        await self.pulls.close(number, comment=reason)
        state.forget_pull_request(head=pull["head"]["sha"])
        return Outcome(f"closed #{number}")

    async def _update(self, plan: AutomationPlan, sha: str) -> Outcome | None:
        """The open PR: read it, move the branch, then update its text; None if it was closed.

        The PR's ``head.sha``, read just before, is the compare-and-swap check
        for the forced move (GitHub's REST API has no lease on refs: the window
        is one round trip). The text is written after the move, so a push that
        lands meanwhile is seen by the next run, never overwritten by a text update.
        """
        state = self.state
        number = state.pr_number
        assert number is not None
        pull = await self._read_open_pull(number)  # closed: the webhook was missed
        if pull is None:
            return None
        head = pull["head"]["sha"]
        if not state.bot_wrote(head) or self._taken_over_meanwhile():
            return await self._leave_alone()
        # Saved before the branch moves: a crash in between must not look like someone
        # else's push. `prior_sha` is the head just verified, so failed moves never drift.
        state.prior_sha, state.written_sha = head, sha
        self._save()
        try:
            await self.repo.set_branch(
                state.push_branch, sha, expected=head, force=True, verified_head=head
            )
        except NotFound:
            # The branch was deleted under the open PR: make it again.
            await self.repo.set_branch(state.push_branch, sha, expected=None, force=False)
        body = plan.body(head=sha)
        if (state.pr_title, state.pr_body) != (plan.title, body):
            await self.pulls.update(number, title=plan.title, body=body)
            state.pr_title, state.pr_body = plan.title, body
        await self._sync_labels()
        state.change_set = plan.change_set
        return Outcome(f"updated #{number}")

    def _taken_over_meanwhile(self) -> bool:
        """Did a webhook mark the branch taken over while this run worked? (a local read)"""
        return self.store.automation_state(self.state.repository, self.state.automation).taken_over

    async def _open(self, plan: AutomationPlan, sha: str) -> Outcome:
        """No open PR: put `sha` on the branch (never over someone else's commit), open the PR."""
        state = self.state
        if not await self._write_branch(sha):
            return await self._leave_alone()
        body = plan.body(head=sha)
        created = await self.pulls.create(
            head_branch=state.push_branch,
            base=state.base_branch,
            title=plan.title,
            body=body,
            draft=self.automation.pr_draft,
        )
        self._remember_pull(created)
        if (state.pr_title, state.pr_body) != (plan.title, body):  # an adopted PR
            await self.pulls.update(state.pr_number, title=plan.title, body=body)
        state.pr_title, state.pr_body = plan.title, body
        state.change_set = plan.change_set
        state.released_head = None
        await self._sync_labels()
        problems = await self._request_review(state.pr_number)
        return Outcome(f"opened #{state.pr_number}", problems)

    async def _write_branch(self, sha: str) -> bool:
        """Create the branch at `sha`, or force it there from a head the bot may move.

        False, and nothing written, when the branch holds someone else's commit.
        """
        state = self.state
        before = state.written_sha, state.prior_sha
        owned = {h for h in (*before, state.released_head) if h}
        expected = state.written_sha or state.released_head
        # Saved before the branch moves: a crash in between must not look like someone else's push.
        state.prior_sha, state.written_sha = expected, sha
        self._save()
        try:
            await self.repo.set_branch(
                state.push_branch, sha, expected=expected, force=expected is not None
            )
            return True
        except BranchMoved as moved:
            actual = moved.actual
            if actual is None:  # deleted: create it
                await self.repo.set_branch(state.push_branch, sha, expected=None, force=False)
            elif actual in owned:  # an earlier move of ours failed, or a closed PR's head
                state.prior_sha = actual
                self._save()
                await self.repo.set_branch(state.push_branch, sha, expected=actual, force=True)
            elif actual != sha:
                state.written_sha, state.prior_sha = before
                return False
            return True

    async def _request_review(self, number: int) -> list[Problem]:
        """``pullRequest.assignees``, ``reviewers`` and ``teamReviewers``, asked for once, as
        the PR opens. Whatever GitHub refuses is a warning: the PR stands without them."""
        automation, problems = self.automation, []
        if automation.pr_assignees:
            try:
                assigned = {login.lower() for login in await self.pulls.add_assignees(
                    number, automation.pr_assignees)}  # fmt: skip
            except GitHubError as exc:
                assigned = set()
                log.info("%s: assigning #%s failed: %s", self.repo.full_name, number, exc)
            left_out = [p for p in automation.pr_assignees if p.lower() not in assigned]
            if left_out:
                problems.append(self._warning(
                    f"pullRequest.assignees: GitHub did not assign {', '.join(left_out)} to "
                    f"#{number}: each must be a person with access to this repository"))  # fmt: skip
        requests = [("reviewers", p) for p in automation.pr_reviewers]
        requests += [("team_reviewers", t) for t in automation.pr_team_reviewers]
        if not requests:
            return problems
        try:
            await self.pulls.request_reviewers(
                number, reviewers=automation.pr_reviewers, teams=automation.pr_team_reviewers
            )
            return problems
        except GitHubError as refused:
            why = refused.message if isinstance(refused, ValidationFailed) else str(refused)
            if not isinstance(refused, ValidationFailed) or len(requests) == 1:
                names = [name for _kind, name in requests]
            else:
                # All or nothing on GitHub's side: ask for each alone, to know whom it refuses.
                names = [
                    name for kind, name in requests if not await self._ask_one(number, kind, name)
                ]
        if names:
            problems.append(self._warning(
                f"pullRequest.reviewers: GitHub did not ask {', '.join(names)} to review "
                f"#{number} ({why}); name people and teams with access to this repository"))  # fmt: skip
        return problems

    async def _ask_one(self, number: int, kind: str, name: str) -> bool:
        try:
            await self.pulls.request_reviewers(
                number,
                reviewers=[name] if kind == "reviewers" else [],
                teams=[name] if kind == "team_reviewers" else [],
            )
        except GitHubError:
            return False
        return True

    async def _sync_labels(self) -> None:
        state = self.state
        labels = sorted(self.automation.pr_labels)
        if labels and state.pr_number is not None and not set(labels) <= set(state.pr_labels):
            await self.pulls.set_labels(state.pr_number, labels)
        state.pr_labels = sorted({*state.pr_labels, *labels})

    # -- direct mode ------------------------------------------------------------------

    async def commit_directly(
        self,
        plan: AutomationPlan,
        tree: Tree,
        replan: Callable[[str], Awaitable[tuple[Tree, AutomationPlan]]],
    ) -> tuple[Outcome, str, AutomationPlan]:
        """Flux's mode: fast-forward only, never forced; re-plan on the new head after a race.

        Returns the outcome, the branch head it leaves, and the plan it carried out.
        """
        branch = self.automation.push_branch
        for _attempt in range(FAST_FORWARD_ATTEMPTS):
            if not plan.edited:
                return Outcome("up to date"), tree.commit_sha, plan
            sha = await self.repo.commit(
                base=tree, files=plan.edited, message=plan.commit_message, author=self._author()
            )
            try:
                await self.repo.fast_forward(branch, sha)
            except NotFastForward:
                head = await self.repo.head(branch)
                assert head is not None
                tree, plan = await replan(head)
                continue
            self.state.prior_sha, self.state.written_sha = self.state.written_sha, sha
            return Outcome(f"committed {sha[:12]} to {branch}"), sha, plan
        return Outcome(f"gave up: {branch} kept moving"), tree.commit_sha, plan


# -- transitions the webhooks drive (store only, no network) ----------------------------


def closed(store: Store, state: AutomationState, pull: dict) -> None:
    """The PR was closed: merged is recorded; unmerged, its change set is never proposed again.

    Called by the webhook handler and by a run that finds the PR closed.
    """
    number = pull["number"]
    block = PullRequestState.parse(pull.get("body"))
    change_set = block.change_set if block else state.change_set
    if pull.get("merged"):
        store.record_merged(state.repository, state.automation, number, change_set)
        log.info("%s#%s merged", state.repository, number)
    elif change_set:
        store.decline_change_set(state.repository, state.automation, change_set, pr_number=number)
        log.info(
            "%s#%s closed unmerged; its changes will not be proposed again",
            state.repository,
            number,
        )
    state.forget_pull_request(head=(pull.get("head") or {}).get("sha"))
    store.save_automation_state(state)


def reopened(store: Store, state: AutomationState, pull: dict) -> None:
    """A person wants the PR after all: the bot keeps it up to date again."""
    number = pull["number"]
    block = PullRequestState.parse(pull.get("body"))
    declined = store.declined_by_pull_request(state.repository, state.automation, number)
    for change_set in {*declined, *([block.change_set] if block else [])}:
        store.forget_declined(state.repository, state.automation, change_set)
    state.pr_number = number
    state.change_set = block.change_set if block else (declined[0] if declined else None)
    head = (pull.get("head") or {}).get("sha")
    if head is not None and head == state.released_head and not state.bot_wrote(head):
        state.taken_over = True  # reopened with someone else's commits on it
    state.released_head = None
    store.save_automation_state(state)


def pushed(store: Store, state: AutomationState, after: str) -> bool:
    """Something was pushed to the bot's branch, or it was deleted; True when the run must look.

    The pushed head is compared with the commits the bot wrote, whether or
    not its PR number is known yet: an early push is someone else's too. A
    late or repeated delivery may lock the branch wrongly; the next run sees
    the head is the bot's own and lifts the lock (`Proposal.given_back`). A
    deletion changes no state: the next write finds the branch missing.
    """
    if after == ZERO_SHA:
        return True
    if state.bot_wrote(after):
        return False
    state.taken_over = True
    store.save_automation_state(state)
    return True
