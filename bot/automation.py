"""One reconcile of one repository, top to bottom (design §1 and §5).

    head check ─► config ─► observe policies ─► short-circuit?
        ─► per automation: read files ─► plan ─► commit ─► branch ─► PR
        ─► check run on the base head ─► remember what was seen

Everything on GitHub goes through `bot.github`; everything about images
through a `TagSource`; what happened last time comes from the `Store`.
A reconcile raises on transport failures (the scheduler logs and retries);
config, policy and update errors are reported in GitHub instead.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config import AutomationConfig, Config, load_config
from bot.github.checks import report_check
from bot.github.client import GitHubClient
from bot.github.errors import (
    BranchMoved,
    EmptyRepository,
    GitHubError,
    NotFastForward,
    NotFound,
)
from bot.github.pulls import Pulls
from bot.github.repo import BlobCache, Repo, Tree
from bot.planner import (
    CONFIG_PATH,
    AutomationPlan,
    Observation,
    TagSource,
    automation_paths,
    observe_policies,
    plan_automation,
)
from bot.store import AutomationState, RepositoryRecord, Store

log = logging.getLogger(__name__)

WORKFLOWS_DIR = ".github/workflows/"
#: Without a config the bot waits for a push; this is only a safety net.
UNCONFIGURED_INTERVAL = 3600.0
DEFAULT_INTERVAL = 300.0
#: After a GitHub failure: sooner than the config's interval, not hot.
RETRY_DELAY = 60.0
#: Direct-commit mode: how often to re-read and retry when the branch moves under us.
FAST_FORWARD_ATTEMPTS = 3


class Connections(Protocol):
    """Per-installation GitHub access (built by `bot.server`)."""

    def client(self, installation_id: int) -> GitHubClient: ...
    def blobs(self, installation_id: int) -> BlobCache: ...


@dataclass
class Deps:
    store: Store
    github: Connections
    #: The tag source for one repository (credentials are allowed per repository).
    tag_source: Callable[[str], TagSource]


@dataclass
class Outcome:
    repository: str
    short_circuited: bool = False
    next_run: float | None = None  # seconds
    automations: dict[str, str] = field(default_factory=dict)  # name -> what happened
    errors: list[str] = field(default_factory=list)


@dataclass
class _Report:
    """What one automation run says in the check run."""

    automation: str
    base_sha: str
    status: str
    plan: AutomationPlan | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def run_repository(deps: Deps, repository: str) -> float | None:
    """The scheduler's entry: reconcile, answer seconds until the next run.

    GitHub failures that outlived the client's retries are expected now and then:
    one log line (no traceback; messages never hold tokens) and a retry soon.
    """
    try:
        outcome = await reconcile(deps, repository)
    except GitHubError as exc:
        log.warning("%s: reconcile stopped: %s; retrying in %ss", repository, exc, RETRY_DELAY)
        return RETRY_DELAY
    for name, status in outcome.automations.items():
        log.info("%s: %s: %s", repository, name, status)
    return outcome.next_run


async def reconcile(deps: Deps, repository: str) -> Outcome:
    store = deps.store
    record = store.repository(repository)
    outcome = Outcome(repository)
    if record is None or store.is_suspended(record.installation_id):
        return outcome  # uninstalled or paused: nothing to do, no timer
    gh = deps.github.client(record.installation_id)
    repo = Repo(gh, repository, blobs=deps.github.blobs(record.installation_id))

    # 1. Has the default branch moved? (one request, 304 when not)
    if record.default_branch is None:
        record.default_branch = await repo.default_branch()
    try:
        moved_to = await repo.head(record.default_branch, known_sha=record.head_sha)
    except EmptyRepository:
        outcome.automations["*"] = "empty repository"
        outcome.next_run = UNCONFIGURED_INTERVAL
        return outcome
    head_sha = moved_to or record.head_sha
    assert head_sha is not None  # no known sha means the head check could not answer 304
    trees = _TreeCache(repo)

    # 2. The config, from the default branch (the blob cache makes an unchanged one free).
    config_text, config_sha = await _read_config(record, moved_to, trees, head_sha, repo)
    if config_text is None:
        _remember(store, record, head_sha=head_sha, config_sha=None, config_text=None)
        outcome.automations["*"] = f"no {CONFIG_PATH}"
        outcome.next_run = UNCONFIGURED_INTERVAL
        return outcome
    config, config_errors = load_config(config_text.decode("utf-8", "replace"), path=CONFIG_PATH)
    outcome.errors.extend(str(e) for e in config_errors)
    outcome.next_run = _next_run(config)

    # 3. Scan registries and evaluate policies (a failed policy keeps its previous image).
    previous = store.latest_refs(repository)
    observation = await observe_policies(config, deps.tag_source(repository), previous=previous)

    # 4. Short-circuit: base heads, config and observed policies as last time.
    base_heads = {record.default_branch: head_sha}
    missing: set[str] = set()
    unchanged = (
        moved_to is None
        and not record.dirty
        and record.config_sha == config_sha
        and record.observed == observation.latest
    )
    for automation in _automations(config):
        branch = automation.checkout_branch or record.default_branch
        if branch in base_heads:
            continue
        state = store.automation_state(repository, automation.name)
        known = state.base_sha if state.base_branch == branch else None
        try:
            moved = await repo.head(branch, known_sha=known)
        except NotFound:
            moved = None
            missing.add(branch)
        base_heads[branch] = moved or known  # type: ignore[assignment]
        unchanged = unchanged and moved is None and branch not in missing
    if unchanged:
        outcome.short_circuited = True
        return outcome

    # 5. Each automation: read, plan, write; report per base head.
    reports: list[_Report] = []
    for automation in _automations(config):
        branch = automation.checkout_branch or record.default_branch
        if branch in missing:
            where = f"{CONFIG_PATH}:{automation.line}:1"
            error = f"{where}: automation {automation.name!r}: no branch {branch!r} to check out"
            outcome.automations[automation.name] = "checkout branch missing"
            outcome.errors.append(error)
            reports.append(_Report(automation.name, head_sha, "not run", errors=[error]))
            continue
        report = await _run_automation(
            deps, repo, trees, config, automation, observation, branch, base_heads[branch]
        )
        reports.append(report)
        outcome.automations[automation.name] = report.status
        outcome.errors.extend(report.errors)
        if branch == record.default_branch and report.base_sha != base_heads[branch]:
            base_heads[branch] = report.base_sha  # our own direct commit

    # 6. The check run(s), on each base head the automations read.
    await _report_checks(
        gh,
        repository,
        head_sha,
        base_heads,
        reports,
        config_errors,
        observation,
        record,
        config_changed=record.config_sha != config_sha,
    )

    # 7. Remember what this run saw, for the next short-circuit.
    store.save_latest_refs(repository, observation.latest)
    record.observed = observation.latest
    _remember(
        store,
        record,
        head_sha=base_heads[record.default_branch],
        config_sha=config_sha,
        config_text=config_text,
    )
    return outcome


def _automations(config: Config | None) -> list[AutomationConfig]:
    if config is None:
        return []
    return sorted(config.automations.values(), key=lambda a: a.name)


def _remember(
    store: Store,
    record: RepositoryRecord,
    *,
    head_sha: str,
    config_sha: str | None,
    config_text: bytes | None,
) -> None:
    record.head_sha = head_sha
    record.config_sha = config_sha
    record.config_text = config_text
    record.last_error = None
    store.save_repository(record)
    store.clear_dirty(record.full_name, seen=record.dirty)


class _TreeCache:
    """Trees read during one reconcile, by commit."""

    def __init__(self, repo: Repo) -> None:
        self._repo = repo
        self._trees: dict[str, Tree] = {}

    async def get(self, commit_sha: str) -> Tree:
        if commit_sha not in self._trees:
            self._trees[commit_sha] = await self._repo.tree(commit_sha)
        return self._trees[commit_sha]


async def _read_config(
    record: RepositoryRecord, moved_to: str | None, trees: _TreeCache, head_sha: str, repo: Repo
) -> tuple[bytes | None, str | None]:
    if moved_to is None and not record.dirty:
        return record.config_text, record.config_sha  # unchanged head: unchanged config
    tree = await trees.get(head_sha)
    entry = tree.entries.get(CONFIG_PATH)
    if entry is None:
        return None, None
    if entry.sha == record.config_sha and record.config_text is not None:
        return record.config_text, entry.sha
    blobs = await repo.read_blobs(tree, [CONFIG_PATH])
    return blobs.get(CONFIG_PATH), entry.sha


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


def _next_run(config: Config | None) -> float:
    if config is None:
        return DEFAULT_INTERVAL
    intervals = [_seconds(a.interval) for a in config.automations.values()]
    intervals += [_seconds(r.interval) for r in config.repositories.values()]
    return min((i for i in intervals if i), default=DEFAULT_INTERVAL)


# -- one automation ---------------------------------------------------------------


async def _plan(
    repo: Repo,
    trees: _TreeCache,
    config: Config,
    automation: AutomationConfig,
    observation: Observation,
    base_sha: str,
) -> tuple[Tree, AutomationPlan]:
    tree = await trees.get(base_sha)
    files = await repo.read_blobs(tree, automation_paths(config, automation, tree.entries))
    plan = plan_automation(config, automation, observation, files, repository=repo.full_name)
    refused = sorted(p for p in plan.edited if p.startswith(WORKFLOWS_DIR))
    for path in refused:
        # A GitHub App needs the `workflows` permission for these; a person should decide.
        del plan.edited[path]
        plan.warnings.append(
            f"{path}: has image updates, but files under {WORKFLOWS_DIR} are never written "
            "by the bot; update it by hand"
        )
    return tree, plan


async def _run_automation(
    deps: Deps,
    repo: Repo,
    trees: _TreeCache,
    config: Config,
    automation: AutomationConfig,
    observation: Observation,
    base_branch: str,
    base_sha: str,
) -> _Report:
    tree, plan = await _plan(repo, trees, config, automation, observation, base_sha)
    report = _Report(automation.name, base_sha, "", plan, list(plan.errors), list(plan.warnings))
    state = deps.store.automation_state(repo.full_name, automation.name)
    state.push_branch = automation.push_branch
    state.base_branch = base_branch
    if automation.push_branch == base_branch:
        report.status = await _commit_directly(
            deps, repo, trees, config, automation, observation, state, tree, plan, report
        )
    else:
        report.status = await _propose(deps, repo, automation, state, tree, plan)
    state.base_sha = report.base_sha
    deps.store.save_automation_state(state)
    return report


async def _commit_directly(
    deps: Deps,
    repo: Repo,
    trees: _TreeCache,
    config: Config,
    automation: AutomationConfig,
    observation: Observation,
    state: AutomationState,
    tree: Tree,
    plan: AutomationPlan,
    report: _Report,
) -> str:
    """Flux's mode (push branch == checkout branch): fast-forward only, never force."""
    for _attempt in range(FAST_FORWARD_ATTEMPTS):
        if not plan.edited:
            return "up to date"
        sha = await repo.commit(
            base=tree, files=plan.edited, message=plan.commit_message, author=_author(automation)
        )
        try:
            await repo.fast_forward(automation.push_branch, sha)
        except NotFastForward:
            # Someone pushed meanwhile: start again from their commit.
            base_sha = await repo.head(automation.push_branch)
            assert base_sha is not None
            tree, plan = await _plan(repo, trees, config, automation, observation, base_sha)
            report.base_sha, report.plan = base_sha, plan
            report.errors, report.warnings = list(plan.errors), list(plan.warnings)
            continue
        state.prior_sha, state.written_sha = state.written_sha, sha
        report.base_sha = sha
        return f"committed {sha[:12]} to {automation.push_branch}"
    return f"gave up: {automation.push_branch} kept moving"


def _author(automation: AutomationConfig) -> tuple[str, str] | None:
    if automation.author_name and automation.author_email:
        return (automation.author_name, automation.author_email)
    return None


async def _propose(
    deps: Deps,
    repo: Repo,
    automation: AutomationConfig,
    state: AutomationState,
    tree: Tree,
    plan: AutomationPlan,
) -> str:
    """PR mode: one branch rebuilt from the base head, one PR, kept in step with the plan."""
    store = deps.store
    pulls = Pulls(repo.gh, repo.full_name)
    pr: dict | None = None
    if state.pr_number is None and (state.written_sha or plan.result):
        # Not known to the store (first run, lost state, crash before the PR): ask once.
        pr = await pulls.find_open(head_branch=state.push_branch, base=state.base_branch)
        if pr is not None:
            state.pr_number = pr["number"]
            state.pr_title, state.pr_body = pr.get("title"), pr.get("body")
            state.pr_labels = sorted(label["name"] for label in pr.get("labels") or [])

    if state.human_edited:
        return await _leave_alone(pulls, state)

    if plan.result and not (plan.title and plan.commit_message):
        return "not proposed: the templates failed (see errors)"
    rejected = bool(plan.change_set) and store.is_rejected(
        repo.full_name, plan.name, plan.change_set
    )
    if not plan.result or rejected or not plan.edited:
        if state.pr_number is None:
            return "declined before; not proposed again" if rejected else "up to date"
        reason = (
            "These exact changes were declined before, so they are not proposed again."
            if rejected
            else "Nothing is left to update: the files already use the latest images."
        )
        await pulls.close(state.pr_number, comment=reason)
        number = state.pr_number
        state.forget_pull_request()
        return f"closed #{number}"

    expected = state.written_sha
    if pr is not None and not state.bot_wrote(pr["head"]["sha"]):
        if state.written_sha is not None:
            state.human_edited = True
            return await _leave_alone(pulls, state)
        expected = pr["head"]["sha"]  # the store lost track: adopt the bot's open PR

    same = (
        state.written_sha is not None
        and state.change_set == plan.change_set
        and state.base_sha == tree.commit_sha
    )
    text_changes = (state.pr_title, state.pr_body) != (plan.title, plan.body)
    if (
        not same
        and pr is None
        and state.pr_number is not None
        and state.written_sha
        and text_changes
    ):
        status = await _update_then_move(store, repo, pulls, automation, state, tree, plan)
        if status is not None:
            return status
        if store.is_rejected(repo.full_name, plan.name, plan.change_set):
            return "declined before; not proposed again"
        # The PR was closed while we were not listening: propose afresh below.
    if not same and not await _write_branch(store, repo, automation, state, tree, plan, expected):
        state.human_edited = True
        return await _leave_alone(pulls, state)

    return await _sync_pull_request(store, pulls, automation, state, plan)


async def _update_then_move(
    store: Store,
    repo: Repo,
    pulls: Pulls,
    automation: AutomationConfig,
    state: AutomationState,
    tree: Tree,
    plan: AutomationPlan,
) -> str | None:
    """An open PR whose text changes: update it first, then move the branch.

    The PR's answer carries the branch head, which is the compare-and-swap check
    for the forced move: no separate request. None when the PR turned out closed.
    """
    sha = await repo.commit(
        base=tree, files=plan.edited, message=plan.commit_message, author=_author(automation)
    )
    number = state.pr_number
    assert number is not None
    old_title, old_body = state.pr_title, state.pr_body
    updated = await pulls.update(number, title=plan.title, body=plan.body)
    if updated.get("state") == "closed":
        _record_missed_close(store, state, plan, updated)
        return None
    head = updated["head"]["sha"]
    if not state.bot_wrote(head):
        # Someone else pushed: the branch is theirs. Put the PR's text back, say so.
        await pulls.update(number, title=old_title or plan.title, body=old_body or "")
        state.human_edited = True
        return await _leave_alone(pulls, state)
    # Saved before the branch moves: a crash in between must not look like someone else's push.
    state.prior_sha, state.written_sha = state.written_sha, sha
    store.save_automation_state(state)
    await repo.set_branch(state.push_branch, sha, expected=head, force=True, verified_head=head)
    state.pr_title, state.pr_body = plan.title, plan.body
    await _sync_labels(pulls, automation, state)
    state.change_set = plan.change_set
    return f"updated #{number}"


def _record_missed_close(
    store: Store, state: AutomationState, plan: AutomationPlan, pull: dict
) -> None:
    """The PR was closed while we were not listening (no webhook): what a webhook records."""
    number, proposed = state.pr_number, state.change_set
    if pull.get("merged"):
        store.record_merged(state.repository, plan.name, number, proposed)
    elif proposed:
        store.reject_change_set(state.repository, plan.name, proposed, pr_number=number)
    state.forget_pull_request()


async def _sync_labels(pulls: Pulls, automation: AutomationConfig, state: AutomationState) -> None:
    labels = sorted(automation.pr_labels)
    if labels and not set(labels) <= set(state.pr_labels):
        await pulls.set_labels(state.pr_number, labels)
    state.pr_labels = labels


async def _sync_pull_request(
    store: Store,
    pulls: Pulls,
    automation: AutomationConfig,
    state: AutomationState,
    plan: AutomationPlan,
) -> str:
    """Open the PR, or bring its title, body and labels in line with the plan."""
    status = f"updated #{state.pr_number}"
    if state.pr_number is not None and (state.pr_title, state.pr_body) != (plan.title, plan.body):
        updated = await pulls.update(state.pr_number, title=plan.title, body=plan.body)
        if updated.get("state") == "closed":
            _record_missed_close(store, state, plan, updated)
            if store.is_rejected(state.repository, plan.name, plan.change_set):
                return "declined before; not proposed again"
        else:
            state.pr_title, state.pr_body = plan.title, plan.body
    if state.pr_number is None:
        created = await pulls.create(
            head_branch=state.push_branch,
            base=state.base_branch,
            title=plan.title,
            body=plan.body,
            draft=automation.pr_draft,
        )
        state.pr_number = created["number"]
        status = f"opened #{state.pr_number}"
        state.pr_title, state.pr_body = created.get("title"), created.get("body")
        state.pr_labels = sorted(label["name"] for label in created.get("labels") or [])
        if (state.pr_title, state.pr_body) != (plan.title, plan.body):  # an adopted PR
            await pulls.update(state.pr_number, title=plan.title, body=plan.body)
    await _sync_labels(pulls, automation, state)
    state.pr_title, state.pr_body = plan.title, plan.body
    state.change_set = plan.change_set
    return status


async def _write_branch(
    store: Store,
    repo: Repo,
    automation: AutomationConfig,
    state: AutomationState,
    tree: Tree,
    plan: AutomationPlan,
    expected: str | None,
) -> bool:
    """One commit on the base head, and the branch moved to it; False if someone else owns it."""
    sha = await repo.commit(
        base=tree, files=plan.edited, message=plan.commit_message, author=_author(automation)
    )
    # Saved before the branch moves: a crash in between must not look like someone else's push.
    previous = state.written_sha
    state.prior_sha, state.written_sha = previous, sha
    store.save_automation_state(state)
    try:
        await repo.set_branch(state.push_branch, sha, expected=expected, force=expected is not None)
    except BranchMoved as moved:
        if state.pr_number is not None:
            state.written_sha, state.prior_sha = previous, None
            return False  # an open PR with somebody else's commits: theirs now
        # No open PR: the branch is left over (or the store lost track); rebuild it.
        await repo.set_branch(
            state.push_branch, sha, expected=moved.actual, force=moved.actual is not None
        )
    return True


async def _leave_alone(pulls: Pulls, state: AutomationState) -> str:
    """Someone else pushed to the bot branch: never overwrite it; say so once."""
    if state.pr_number is not None and not state.human_noted:
        await pulls.comment(
            state.pr_number,
            f"Someone other than the bot pushed to `{state.push_branch}`, so the bot leaves "
            "this branch alone from now on: it will not update or close this pull request. "
            "Merge or close it yourself; once it is closed the bot proposes new updates again.",
        )
        state.human_noted = True
    return f"left alone: #{state.pr_number} has commits by someone else"


# -- the check run ---------------------------------------------------------------------

_LOCATED = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)?\s*(?P<message>.*)$")


def _annotation(error: str, level: str = "failure") -> dict | None:
    match = _LOCATED.match(str(error))
    if match is None:
        return None
    line = int(match["line"])
    return {
        "path": match["path"],
        "start_line": line,
        "end_line": line,
        "annotation_level": level,
        "message": match["message"],
    }


def _annotations(errors: Iterable[str], warnings: Iterable[str]) -> list[dict]:
    found = [_annotation(e) for e in errors] + [_annotation(w, "warning") for w in warnings]
    return [a for a in found if a is not None]


async def _report_checks(
    gh: GitHubClient,
    repository: str,
    default_head: str,
    base_heads: dict[str, str],
    reports: list[_Report],
    config_errors: list,
    observation: Observation,
    record: RepositoryRecord,
    *,
    config_changed: bool,
) -> None:
    """A check run where there is something to say that a pull request does not show.

    That is: errors and warnings, a new or edited config (its verdict), and
    direct commits (no PR to show them). A routine PR update adds none, so a
    busy base branch does not get one per commit (and the request budget holds).
    """
    config_lines = [str(e) for e in config_errors]
    by_head: dict[str, list[_Report]] = {}
    for report in reports:
        by_head.setdefault(report.base_sha, []).append(report)
    # The config lives on the default branch: its errors go on the default head.
    config_head = base_heads.get(record.default_branch or "", default_head)
    by_head.setdefault(config_head, [])
    for head, group in by_head.items():
        errors = [e for r in group for e in r.errors]
        warnings = [w for r in group for w in r.warnings]
        if head == config_head:
            errors = config_lines + errors
        policy_errors = [f"policy {n}: {m}" for n, m in sorted(observation.errors.items())]
        direct = any(r.status.startswith("committed") for r in group)
        if not (errors or warnings or policy_errors or direct or config_changed):
            continue
        if errors:
            conclusion = "failure"
        elif policy_errors or warnings:
            conclusion = "neutral"
        else:
            conclusion = "success"
        await report_check(
            gh,
            repository,
            head_sha=head,
            conclusion=conclusion,
            title=_check_title(group, errors, policy_errors),
            summary=_check_summary(group, errors, warnings, policy_errors, observation),
            text=_check_text(group),
            annotations=_annotations(errors, warnings),
        )


def _check_title(group: list[_Report], errors: list[str], policy_errors: list[str]) -> str:
    if errors:
        return f"{len(errors)} error(s) in the image automation"
    changed = [r for r in group if r.plan is not None and r.plan.result]
    if changed:
        return "; ".join(f"{r.automation}: {r.status}" for r in changed)
    if policy_errors:
        return f"{len(policy_errors)} policy error(s); images up to date otherwise"
    return "Images up to date"


def _check_summary(
    group: list[_Report],
    errors: list[str],
    warnings: list[str],
    policy_errors: list[str],
    observation: Observation,
) -> str:
    lines = ["| policy | image |", "| --- | --- |"]
    lines += [f"| {name} | `{ref}` |" for name, ref in sorted(observation.latest.items())]
    if group:
        lines += ["", "| automation | outcome |", "| --- | --- |"]
        lines += [f"| {r.automation} | {r.status} |" for r in group]
    for heading, items in (
        ("Errors", errors),
        ("Policy errors", policy_errors),
        ("Warnings", warnings),
    ):
        if items:
            lines += ["", f"**{heading}**", ""] + [f"- {item}" for item in items]
    return "\n".join(lines)


def _check_text(group: list[_Report]) -> str | None:
    bodies = [r.plan.body for r in group if r.plan is not None and r.plan.body]
    return "\n\n---\n\n".join(bodies) or None
