"""One reconcile of one repository, top to bottom (design §1).

    head check ─► config ─► observe policies ─► short-circuit?
        ─► per automation: read files ─► plan ─► branch and PR (bot/pullrequest.py)
        ─► check runs on the base heads (bot/checkrun.py) ─► remember what was seen

Everything on GitHub goes through `bot.github`; everything about images
through a `TagSource`; what happened last time comes from the `Store`.
A reconcile raises on transport failures (the scheduler retries with
backoff); config, policy and update problems are reported in GitHub instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from bot import metrics
from bot.checkrun import AutomationReport, CheckRun, render_checks
from bot.config import CONFIG_PATH, AutomationConfig, Config, load_config
from bot.config.manifests import manifest_paths, mentions_flux_objects, too_large
from bot.config.schedule import Schedule
from bot.config.sources import ConfigSources, sources_identity
from bot.config.yaml import MAX_MANIFEST_BYTES
from bot.configcache import ConfigCache
from bot.github.checks import report_check
from bot.github.client import GitHubClient
from bot.github.errors import (
    AuthenticationFailed,
    EmptyRepository,
    GitHubError,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from bot.github.repo import Repo
from bot.github.tarball import git_blob_sha
from bot.github.trees import (
    SYMLINK_MODE,
    WORKFLOWS_DIR,
    BlobCache,
    BlobIds,
    Tree,
    TreeCache,
    is_workflow_file,
)
from bot.logs import log_context
from bot.planner import (
    MAX_BYTES_SETTING,
    MAX_FILES_SETTING,
    MAX_SECONDS_SETTING,
    UNLIMITED,
    AutomationPlan,
    Observation,
    PlanBudget,
    TagSource,
    automation_paths,
    observe_policies,
    plan_automation,
    update_path_problem,
)
from bot.policy.evaluate import Ranking, rank_tags
from bot.policy.model import PolicyError, PolicySpec
from bot.problems import Problem, Severity, error, warning
from bot.pullrequest import Outcome, Proposal
from bot.rankings import RankingCache
from bot.releasenotes import ReleaseNotes
from bot.scheduler import Postpone, RetryLater
from bot.store import AutomationState, RepositoryRecord, RunSnapshot, Store
from bot.update.prbody import problems_section
from bot.update.releasenotes import image_changes
from bot.update.releasenotes import section as release_notes_section
from bot.workers import WallTimeExceeded, WorkerLost, Workers

T = TypeVar("T")


log = logging.getLogger(__name__)

#: Without a config the bot waits for a push; this is only a safety net.
UNCONFIGURED_INTERVAL = 3600.0
#: Runs past the short-circuit at once, per replica (however many run their head check):
#: they read files, plan and write, and the rate-limit reserve is sized for this many
#: runs' writes (`bot.github.ratelimit.RESERVE`).
FULL_RUNS = 16


class Connections(Protocol):
    """Per-installation GitHub access (built by `bot.server`)."""

    def client(self, installation_id: int) -> GitHubClient: ...
    def blobs(self, installation_id: int) -> BlobCache: ...
    def trees(self, installation_id: int) -> TreeCache: ...


@dataclass
class Deps:
    store: Store
    github: Connections
    #: The tag source for one GitHub repository (credentials are allowed per repository),
    #: and the images a registry said were pushed (`RunSnapshot.pushed`), to scan again.
    tag_source: Callable[..., TagSource]
    #: Where planning and tag ranking run (`serve`: worker processes, off the event loop).
    workers: Workers = field(default_factory=Workers)
    #: What one automation may cost per run (`serve`: the operator's settings).
    budget: PlanBudget = UNLIMITED
    #: Tag rankings, computed once per (policy spec, tag list) for every repository.
    rankings: RankingCache = field(default_factory=RankingCache)
    #: Parsed configs, read again only when their bytes change.
    configs: ConfigCache = field(default_factory=ConfigCache)
    #: Slots for the work after the short-circuit (`FULL_RUNS`).
    full_runs: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(FULL_RUNS))
    #: Where a check run goes when the credential may not create one (`python -m bot run`
    #: with a token lacking ``checks: write``); None: the refusal is an error, as for the App.
    checks_refused: Callable[[CheckRun], None] | None = None
    #: Put the problems a check run shows in each PR's body too (`python -m bot run`, whose
    #: token usually may not create check runs).
    problems_in_pr: bool = False
    #: Release notes for PR bodies: cached, and their requests counted apart.
    release_notes: ReleaseNotes = field(default_factory=ReleaseNotes)
    #: Blob ids of YAML files known to hold no Flux object (`bot.config.manifests`).
    not_flux: BlobIds = field(default_factory=lambda: BlobIds(200_000))
    #: Now, for automations' schedules (tests set it).
    clock: Callable[[], float] = time.time


@dataclass
class RepositoryOutcome:
    repository: str
    short_circuited: bool = False
    next_run: float | None = None  # seconds
    automations: dict[str, str] = field(default_factory=dict)  # name -> what happened
    problems: list[Problem] = field(default_factory=list)


async def run_repository(
    deps: Deps, repository: str, *, snapshot: RunSnapshot | None = None
) -> float | None:
    """The scheduler's entry: reconcile, answer seconds until the next run.

    `snapshot` is what the scheduler's claim read for this run; without it the
    run reads its own.

    A GitHub failure that outlived the client's retries raises `RetryLater`
    (one log line, no traceback; messages never hold tokens): the scheduler
    tries again with backoff, capped near the repository's interval.
    """
    started = time.monotonic()
    try:
        outcome = await reconcile(deps, repository, snapshot=snapshot)
    except RateLimited as exc:
        # Not a failure: the installation's window is spent; come back when it allows.
        metrics.observe_reconcile("postponed", time.monotonic() - started)
        now = time.time()
        raise Postpone(exc.message, delay=exc.resume_at(now) - now) from None
    except GitHubError as exc:
        metrics.observe_reconcile("retry_later", time.monotonic() - started)
        record = deps.store.repository(repository)
        raise RetryLater(str(exc), interval=_interval_of(record)) from None
    except Exception:
        metrics.observe_reconcile("failed", time.monotonic() - started)
        raise
    if outcome.short_circuited:
        metrics.count_short_circuit()
    metrics.observe_reconcile(
        "short_circuit" if outcome.short_circuited else "completed", time.monotonic() - started
    )
    return outcome.next_run


async def reconcile(
    deps: Deps, repository: str, *, snapshot: RunSnapshot | None = None
) -> RepositoryOutcome:
    if snapshot is None:
        snapshot = deps.store.snapshot_for_run(repository)
    outcome = RepositoryOutcome(repository)
    if snapshot is None or snapshot.suspended:
        return outcome  # uninstalled or paused: nothing to do, no timer
    record = snapshot.record
    with log_context(installation=record.installation_id):
        await _reconcile_installed(deps, snapshot, outcome)
        for name, status in outcome.automations.items():
            with log_context(automation=None if name == "*" else name):
                log.info("%s: %s: %s", repository, name, status)
        return outcome


async def _reconcile_installed(
    deps: Deps, snapshot: RunSnapshot, outcome: RepositoryOutcome
) -> RepositoryOutcome:
    record = snapshot.record
    repository = record.full_name
    repo = Repo(
        deps.github.client(record.installation_id),
        repository,
        blobs=deps.github.blobs(record.installation_id),
        trees=deps.github.trees(record.installation_id),
    )
    run = _Run(deps, repo, snapshot, outcome)

    # 1. Has the default branch moved? (one request, 304 when not)
    if not await run.check_default_head():
        return outcome
    # 2. The config, from the default branch (the blob cache makes an unchanged one free).
    if not await run.load_config():
        return outcome
    # 3. Scan registries and evaluate policies (a failed policy keeps its previous image).
    await run.observe_policies()
    # 4. Short-circuit: base heads, config, observed policies, branches as last time.
    if await run.unchanged():
        outcome.short_circuited = True
        run.wake_when_windows_open()
        return outcome
    async with deps.full_runs:
        # 5. Each automation: read, plan, bring its branch and PR in line.
        for automation in run.automations:
            await run.run_automation(automation)
        await run.retire_removed_automations()
        # 6. The check runs, on each base head the automations read.
        await run.report_checks()
        # 7. Remember what this run saw, for the next short-circuit.
        run.remember()
    return outcome


class _Run:
    """The steps of one reconcile, named as `reconcile` calls them, and what they share."""

    def __init__(
        self, deps: Deps, repo: Repo, snapshot: RunSnapshot, outcome: RepositoryOutcome
    ) -> None:
        self.deps, self.store, self.repo = deps, deps.store, repo
        self.record, self.outcome = snapshot.record, outcome
        #: The stored state at the start, for the short-circuit (a change runs re-read it).
        self.snapshot = snapshot
        self.trees: dict[str, Tree] = {}
        self.head_sha = ""
        self.moved = False
        self.config = Config()
        self.config_sha: str | None = None
        self.config_text: bytes | None = None
        self.config_problems: list[Problem] = []
        self.observation = Observation()
        self.previous_latest: dict = {}
        self.base_heads: dict[str, str] = {}
        self.missing: set[str] = set()
        self.reports: list[AutomationReport] = []
        self.deferred: list[str] = []  # automations outside their schedule this run
        self.source: TagSource | None = None  # step 3's, for the release notes
        self.manifest_problems: list[Problem] = []  # listed manifests not read, and why

    @property
    def automations(self) -> list[AutomationConfig]:
        return sorted(self.config.automations.values(), key=lambda a: a.name)

    async def tree(self, commit_sha: str) -> Tree:
        if commit_sha not in self.trees:
            self.trees[commit_sha] = await self.repo.tree(commit_sha)
        return self.trees[commit_sha]

    # 1.
    async def check_default_head(self) -> bool:
        record = self.record
        if record.default_branch is None:
            record.default_branch = await self.repo.default_branch()
        try:
            moved_to = await self.repo.head(record.default_branch, known_sha=record.head_sha)
        except EmptyRepository:
            self.outcome.automations["*"] = "empty repository"
            self.outcome.next_run = UNCONFIGURED_INTERVAL
            return False
        self.moved = moved_to is not None
        self.head_sha = moved_to or record.head_sha or ""
        self.base_heads = {record.default_branch: self.head_sha}
        return True

    # 2.
    async def load_config(self) -> bool:
        record = self.record
        if not self.moved and not record.dirty:
            # Unchanged head: unchanged config.
            self.config_text, self.config_sha = record.config_text, record.config_sha
        else:
            tree = await self.tree(self.head_sha)
            self.config_sha, self.config_text = await self._config_sources(tree)
        if self.config_text is None:
            self._save_record(head_sha=self.head_sha)
            self.outcome.automations["*"] = f"no {CONFIG_PATH}"
            self.outcome.next_run = UNCONFIGURED_INTERVAL
            return False
        # Bytes as they are: a file that is not UTF-8 gets its own clear problem.
        try:
            self.config, self.config_problems = await self.deps.configs.load_with(
                self.config_text,
                default_branch=self.record.default_branch,
                parse=self._parse_in_worker,
            )
        except (WallTimeExceeded, WorkerLost) as exc:
            seconds = self.deps.budget.max_seconds
            why = f"took longer than {seconds:g} s" if isinstance(exc, WallTimeExceeded) else exc
            sources = ConfigSources.decode(self.config_text)
            where = CONFIG_PATH if sources.config is not None else sources.manifests[0][0]
            failed = (
                Config(),
                [error(where, 1, 1, f"reading the Flux manifests failed ({why}); "
                       "list fewer or smaller files in fluxManifests")],
            )  # fmt: skip
            # Remembered like a parse: the same sources fail the same way next time.
            self.config, self.config_problems = self.deps.configs.put(
                self.config_text, self.record.default_branch, failed
            )
        self.config_problems += self.manifest_problems
        self.outcome.problems.extend(self.config_problems)
        self.outcome.next_run = self.config.shortest_interval()
        return True

    async def _parse_in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.deps.workers.run(fn, *args, seconds=self.deps.budget.max_seconds)

    async def _config_sources(self, tree: Tree) -> tuple[str | None, bytes | None]:
        """(identity, encoded `ConfigSources`) at ``tree``: the config file and the Flux
        manifests it lists, or with no config file the Flux objects found in the tree.

        Nothing is read when the identity (git's blob ids) is what the store holds.
        """
        record = self.record
        entry = tree.entries.get(CONFIG_PATH)
        if (
            entry is not None
            and entry.sha == record.config_sha
            and record.config_text is not None
            and not self._lists_manifests(record.config_text)
        ):
            return record.config_sha, record.config_text  # the same config file, no manifests
        stored = ConfigSources.decode(record.config_text) if record.config_text else None
        config_text = None
        patterns = None
        if entry is not None:
            if (
                stored is not None
                and stored.config is not None
                and (git_blob_sha(stored.config) == entry.sha)
            ):
                config_text = stored.config
            else:
                config_text = (await self.repo.read_blobs(tree, [CONFIG_PATH])).get(CONFIG_PATH)
            if config_text is None:
                return None, None
            # Encoded, never the raw bytes: a file that mimics a stored bundle stays a file.
            config_alone = ConfigSources(config_text).encode()
            if not self._lists_manifests(config_alone):
                return entry.sha, config_alone
            patterns = self.deps.configs.load(config_alone, default_branch=record.default_branch)[
                0
            ].flux_manifests
        candidates = self._manifest_candidates(tree, patterns)
        identity = sources_identity(
            entry.sha if entry else None, {p: tree.entries[p].sha for p in candidates}
        )
        if identity == record.config_sha:
            return identity, record.config_text
        # Files known to hold no Flux object are not read again when others change.
        unknown = [p for p in candidates if tree.entries[p].sha not in self.deps.not_flux]
        files = await self.repo.read_blobs(tree, unknown, max_bytes=MAX_MANIFEST_BYTES)
        found = {}
        for path, data in files.items():
            if mentions_flux_objects(data):
                found[path] = data
            else:
                self.deps.not_flux.add(tree.entries[path].sha)
        if config_text is None and not found:
            return identity, None
        return identity, ConfigSources.of(config_text, found).encode()

    def _lists_manifests(self, encoded: bytes) -> bool:
        """Does this config file (alone, encoded) list Flux manifests? (Its parse is cached.)

        A record from before manifests were read holds the same bytes: asking keeps an
        upgraded repository whose config already had ``fluxManifests`` from never
        reading them."""
        if ConfigSources.is_bundle(encoded):
            return True
        config, _ = self.deps.configs.load(encoded, default_branch=self.record.default_branch)
        return bool(config.flux_manifests)

    def _manifest_candidates(self, tree: Tree, patterns: tuple[str, ...] | None) -> list[str]:
        """The files to look for Flux objects in: those listed, else every YAML file.

        Symbolic links are not followed (the identity is the blobs' ids), files over
        `MAX_MANIFEST_BYTES` are not read (a listed one gets a warning), and all of them
        must fit the reading budget (`PlanBudget`), else none is read: with no config
        file silently (the repository did not ask), with one as a warning.
        """
        paths = [p for p in manifest_paths(patterns, tree.entries)
                 if tree.entries[p].mode != SYMLINK_MODE]  # fmt: skip
        large = [p for p in paths if (tree.entries[p].size or 0) > MAX_MANIFEST_BYTES]
        if patterns is not None:
            self.manifest_problems += [too_large(p, tree.entries[p].size or 0) for p in large]
        paths = [p for p in paths if (tree.entries[p].size or 0) <= MAX_MANIFEST_BYTES]
        budget = self.deps.budget
        total = sum(tree.entries[p].size or 0 for p in paths)
        if (budget.max_files is not None and len(paths) > budget.max_files) or (
            budget.max_bytes is not None and total > budget.max_bytes
        ):
            message = (
                f"{len(paths)} YAML files ({total} bytes) are more than the bot reads for Flux "
                f"objects ({MAX_FILES_SETTING}, {MAX_BYTES_SETTING}); none is read"
            )
            if patterns is None:
                log.info("%s: no config file, and %s", self.repo.full_name, message)
            else:
                self.manifest_problems.append(
                    warning(CONFIG_PATH, 1, 1, f"fluxManifests: {message}; list fewer files")
                )
            return []
        return paths

    # 3.
    async def observe_policies(self) -> None:
        previous = self.snapshot.latest
        self.previous_latest = previous
        source = self.source = self.deps.tag_source(
            self.repo.full_name, pushed=self.snapshot.pushed
        )
        self.observation = await observe_policies(
            self.config,
            source,
            previous=previous,
            rank=self._rank_tags,
            ages=self.store,
            now=self.deps.clock(),
        )
        self.outcome.problems.extend(self.observation.errors.values())

    async def _rank_tags(self, spec: PolicySpec, tags: Sequence[str]) -> Ranking:
        """The ranking of a tag list: shared by every repository that asks for it."""
        return await self.deps.rankings.rank(spec, tags, self._rank_in_worker)

    async def _rank_in_worker(self, spec: PolicySpec, tags: Sequence[str]) -> Ranking:
        """Filtering and sorting a tag list (up to 100,000 tags) in a worker."""
        seconds = self.deps.budget.max_seconds
        try:
            return await self.deps.workers.run(rank_tags, spec, tags, seconds=seconds)
        except WallTimeExceeded:
            raise PolicyError(
                f"ranking {len(tags)} tags took longer than the limit of {seconds:g} s "
                f"({MAX_SECONDS_SETTING}); narrow the tags with filterTags or exclusionList"
            ) from None
        except WorkerLost as exc:
            raise PolicyError(f"ranking {len(tags)} tags failed: {exc}") from None

    # 4.
    async def unchanged(self) -> bool:
        record = self.record
        unchanged = (
            not self.moved
            and not record.dirty
            and not self._window_opened()
            and record.config_sha == self.config_sha
            and self.previous_latest == self.observation.latest
            and set(record.policy_errors) == set(self.observation.errors)
        )
        for automation in self.automations:
            branch = automation.base_branch(record.default_branch)
            if branch in self.base_heads or branch in self.missing:
                continue
            state = self._state_at_start(automation)
            known = state.base_sha if state.base_branch == branch else None
            try:
                moved = await self.repo.head(branch, known_sha=known)
            except NotFound:
                self.missing.add(branch)
                unchanged = False
                continue
            self.base_heads[branch] = moved or known  # type: ignore[assignment]
            unchanged = unchanged and moved is None
        if unchanged:
            # A branch someone took over: was it given back while no webhook came?
            for automation in self.automations:
                state = self._state_at_start(automation)
                if state.taken_over and await self._proposal(automation, state).given_back():
                    return False
        return unchanged

    def _waiting(self) -> list[tuple[str, Schedule | None]]:
        """The automations the last run left for their schedule, and their schedule now
        (None: gone from the config, or no longer scheduled)."""
        found = (self.config.automations.get(name) for name in self.record.deferred)
        return [
            (name, automation.schedule if automation is not None else None)
            for name, automation in zip(self.record.deferred, found, strict=True)
        ]

    def _window_opened(self) -> bool:
        """Did an automation the last run left for its schedule enter a window since?"""
        now = self._now()
        # Gone, or no longer scheduled: the run must look at it.
        return any(schedule is None or schedule.is_open(now) for _, schedule in self._waiting())

    def wake_when_windows_open(self) -> None:
        """Due again when a waiting automation's window opens, if that is before its interval."""
        now = self._now()
        for _name, schedule in self._waiting():
            if schedule is not None:
                self._wake_at(schedule.next_open(now), now)

    def _wake_at(self, opens: datetime | None, now: datetime) -> None:
        if opens is not None:
            wait = max((opens - now).total_seconds(), 1.0)
            self.outcome.next_run = min(self.outcome.next_run or wait, wait)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.deps.clock(), UTC)

    def _outside_schedule(self, automation: AutomationConfig) -> bool:
        """Outside its windows: left as it is, the check run says when the next one opens,
        and the repository is due again then."""
        schedule = automation.schedule
        now = self._now()
        if schedule is None or schedule.is_open(now):
            return False
        self.deferred.append(automation.name)
        opens = schedule.next_open(now)
        if opens is None:
            when = "none of its windows opens within a year"
        else:
            when = f"the next window opens at {opens:%Y-%m-%d %H:%M} {schedule.timezone}"
            self._wake_at(opens, now)
        problem = self.config.problem(
            automation,
            f"outside its schedule: {when}; its pull request is opened or updated then",
            line=automation.schedule_line or None,
            severity=Severity.NOTICE,
        )
        self._report(
            AutomationReport(
                automation.name, self.head_sha, "waiting for its schedule", problems=[problem]
            )  # fmt: skip
        )
        return True

    async def _release_notes(self, plan: AutomationPlan) -> str:
        """What changed in each image, for the PR body (empty when nothing is known)."""
        changes = image_changes(plan.result, plan.latest)
        if not changes or self.source is None:
            return ""
        config = self.config
        metadata_of = {
            c.policy: self.source.metadata_lookup(
                config.repositories[config.policies[c.policy].repository]
            )
            for c in changes
        }
        try:
            notes = await self.deps.release_notes.notes(
                changes, metadata_of, self.repo.gh, owner=self.record.installation_id
            )
        except Exception:  # best effort: a hostile image or registry must not stop the PR
            log.exception("%s: release notes failed; the PR goes without them", self.repo)
            return ""
        return release_notes_section(notes)

    def _state_at_start(self, automation: AutomationConfig) -> AutomationState:
        stored = self.snapshot.automations.get(automation.name)
        return stored or AutomationState(self.repo.full_name, automation.name)

    # 5.
    async def run_automation(self, automation: AutomationConfig) -> None:
        with log_context(automation=automation.name):
            await self._run_automation(automation)

    async def _run_automation(self, automation: AutomationConfig) -> None:
        branch = automation.base_branch(self.record.default_branch)
        assert branch is not None
        if self._outside_schedule(automation):
            return
        if branch in self.missing:
            problem = self.config.problem(automation, f"no branch {branch!r} to check out")
            self._report(
                AutomationReport(
                    automation.name, self.head_sha, "checkout branch missing", problems=[problem]
                )
            )
            return
        base_sha = self.base_heads[branch]
        tree, plan = await self._plan(automation, base_sha)
        direct = automation.commits_directly(branch)
        if plan.result and plan.pr_state is not None and not direct:
            plan.appendix = await self._release_notes(plan)
        if self.deps.problems_in_pr and plan.pr_state is not None:
            problems = [*self.config_problems, *self.observation.errors.values()]
            problems += [*plan.errors, *plan.warnings]
            plan.body_text += problems_section(list(dict.fromkeys(problems)))
        state = self.store.automation_state(self.repo.full_name, automation.name)
        state.push_branch = automation.push_branch
        state.base_branch = branch
        proposal = self._proposal(automation, state)
        try:
            if plan.failed:
                # Not planned (over budget, a bad update.path): the branch and PR stay as they are.
                result = Outcome("not planned (see errors)")
            elif direct:

                async def replan(head: str) -> tuple[Tree, AutomationPlan]:
                    return await self._plan(automation, head)

                result, base_sha, plan = await proposal.commit_directly(plan, tree, replan)
                if branch == self.record.default_branch:
                    self.base_heads[branch] = base_sha  # our own commit: not a change to react to
            else:
                result = await proposal.propose(plan, tree)
        except GitHubError as exc:
            if not refused_for_good(exc):
                raise  # unreachable, 5xx, rate limits: the scheduler retries the repository
            # GitHub said no to this automation (a locked PR, drafts not allowed...):
            # say so on it and go on with the others, rather than retry for ever.
            result = Outcome(
                "GitHub refused a request (see errors)",
                [self.config.problem(automation, f"GitHub refused: {exc.message}")],
            )
        state.base_sha = base_sha
        self.store.save_automation_state(state)
        self._report(
            AutomationReport(
                automation.name,
                base_sha,
                self._status(automation, result),
                plan,
                result.problems,
                direct_commit=direct and result.status.startswith("committed"),
            )
        )

    def _proposal(self, automation: AutomationConfig, state) -> Proposal:
        return Proposal(self.store, self.repo, automation, state, self.config)

    async def _plan(
        self, automation: AutomationConfig, base_sha: str
    ) -> tuple[Tree, AutomationPlan]:
        """Read the automation's files (within its budget) and plan in a worker."""
        tree = await self.tree(base_sha)
        paths = automation_paths(automation, tree.entries)
        budget = self.deps.budget
        too_much = budget.reading_problem(
            self.config, automation, {path: tree.entries[path].size for path in paths}
        )
        if too_much is not None:
            return tree, AutomationPlan.not_planned(automation.name, too_much)
        files = await self.repo.read_blobs(tree, paths)
        refused = {path: why for path in files if (why := _refusal(tree, path)) is not None}
        task = functools.partial(
            plan_automation,
            repository=self.repo.full_name,
            refused=refused,
            budget=budget,
        )
        try:
            plan = await self.deps.workers.run(
                task, self.config, automation, self.observation, files, seconds=budget.max_seconds
            )
        except WallTimeExceeded:
            plan = AutomationPlan.not_planned(
                automation.name, budget.time_problem(self.config, automation)
            )
        except WorkerLost as exc:
            problem = self.config.problem(automation, f"planning failed: {exc}; it is tried again")
            plan = AutomationPlan.not_planned(automation.name, problem)
        path_problem = update_path_problem(self.config, automation, tree.entries.keys())
        if path_problem is not None:
            plan.warnings.append(path_problem)
        return tree, plan

    def _status(self, automation: AutomationConfig, result: Outcome) -> str:
        failed = sorted(
            name
            for name in self.observation.errors
            if automation.selects(self.config.policies[name])
        )
        if not failed:
            return result.status
        return f"{result.status}; policy {', '.join(failed)} failed (see errors)"

    def _report(self, report: AutomationReport) -> None:
        self.reports.append(report)
        self.outcome.automations[report.automation] = report.status
        self.outcome.problems.extend(report.all_problems)

    async def retire_removed_automations(self) -> None:
        """Automations gone from a valid config: close their PRs and forget them.

        Not while the config has errors: an automation it fails to read is not gone.
        """
        if self.config_problems:
            return
        for state in self.store.automation_states(self.repo.full_name):
            if state.automation in self.config.automations:
                continue
            gone = AutomationConfig(name=state.automation, push_branch=state.push_branch)
            result = await self._proposal(gone, state).retire()
            self.outcome.automations[state.automation] = result.status
            self.store.forget_automation(self.repo.full_name, state.automation)

    # 6.
    async def report_checks(self) -> None:
        record = self.record
        checks = render_checks(
            self.reports,
            config_head=self.base_heads.get(record.default_branch or "", self.head_sha),
            config_problems=self.config_problems,
            policy_problems=self.observation.errors,
            latest=self.observation.latest,
            config_changed=record.config_sha != self.config_sha,
            # By name: a message that varies from run to run is not news.
            policies_changed=set(record.policy_errors) != set(self.observation.errors),
            explanations=self.observation.explanations,
        )
        for check in checks:
            try:
                await report_check(
                    self.repo.gh,
                    self.repo.full_name,
                    head_sha=check.head_sha,
                    conclusion=check.conclusion,
                    title=check.title,
                    summary=check.summary,
                    text=check.text,
                    annotations=check.annotations,
                )
            except PermissionDenied:
                if self.deps.checks_refused is None:
                    raise
                self.deps.checks_refused(check)

    def _policy_errors(self) -> dict[str, str]:
        return {name: problem.message for name, problem in self.observation.errors.items()}

    # 7.
    def remember(self) -> None:
        self.store.save_latest(self.repo.full_name, self.observation.latest)
        # The images a registry's push event finds this repository by.
        images = {r.ref.canonical_name for r in self.config.repositories.values()}
        self.store.save_images(self.repo.full_name, images)
        self.record.policy_errors = self._policy_errors()
        self.record.deferred = list(self.deferred)
        assert self.record.default_branch is not None
        self._save_record(head_sha=self.base_heads[self.record.default_branch])

    def _save_record(self, *, head_sha: str) -> None:
        record = self.record
        record.head_sha = head_sha
        record.config_sha = self.config_sha
        record.config_text = self.config_text
        self.store.save_repository(record)
        self.store.clear_dirty(record.full_name, seen=record.dirty)


def _refusal(tree: Tree, path: str) -> str | None:
    """Why the bot may not write `path`, judged by where a symlink leads (None: it may).

    Writing under .github/workflows needs the `workflows` permission the App lacks.
    """
    target = tree.links.get(path, path)
    if not (is_workflow_file(path) or is_workflow_file(target)):
        return None
    via = "" if target == path else f" (a link to {target})"
    return (
        f"has image updates, but files under {WORKFLOWS_DIR}{via} are never written "
        "by the bot (a GitHub App needs the workflows permission); update it by hand"
    )


def refused_for_good(exc: GitHubError) -> bool:
    """A 4xx answer that asking again will not change (not auth, not a rate limit)."""
    transient = isinstance(exc, RateLimited | AuthenticationFailed)
    return exc.status is not None and 400 <= exc.status < 500 and not transient


def _interval_of(record: RepositoryRecord | None) -> float | None:
    """The repository's shortest interval, from the config file it had last time (its
    Flux manifests are not parsed again here, on the event loop, for a retry's delay)."""
    config_file = (
        ConfigSources.decode(record.config_text).config if record and record.config_text else None
    )
    if config_file is None:
        return None
    config, _ = load_config(config_file, path=CONFIG_PATH)
    return config.shortest_interval()
