"""The pipeline both `plan` and the server run: policies -> setters -> change list.

No I/O of its own: tags and digests come from a `TagSource`, files come in as
bytes, and the plan goes out as data. The CLI reads a directory; the server
reads the GitHub API; both hand the same bytes to this module.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.config import AutomationConfig, Config, ImagePolicyConfig, ImageRepositoryConfig
from bot.imagemeta import ImageMetadata
from bot.imageref import canonical_name
from bot.policy import LatestRef, evaluate
from bot.policy.evaluate import RankTags, rank_inline
from bot.policy.model import DigestLookup, InvalidPolicyError, PolicyError
from bot.problems import Problem, Severity, error, warning
from bot.update import UpdateError, build_setters, candidate_paths, has_marker, update_files
from bot.update.files import ignored_single_file
from bot.update.markercheck import check_markers
from bot.update.prbody import (
    PullRequestState,
    change_set_id,
    compose_body,
    default_pr_title,
    render_pr_body,
    too_long,
)
from bot.update.result import Result
from bot.update.template_data import template_data
from bot.update.template_names import (
    COMMIT_MESSAGE,
    DEFAULT_COMMIT_MESSAGE,
    PR_TITLE,
    TemplateError,
)

log = logging.getLogger(__name__)


class TagSource(Protocol):
    """Where tags and digests come from: a registry, or a JSON snapshot."""

    async def tags(self, image_repository: ImageRepositoryConfig) -> list[str]:
        """Tags after the image repository's exclusion list, in Flux order."""
        ...

    async def tags_of_all(
        self, image_repositories: Sequence[ImageRepositoryConfig]
    ) -> list[list[str] | BaseException]:
        """`tags` of each, in order, or the exception it raised (a registry: concurrently)."""
        ...

    def digest_lookup(
        self, image_repository: ImageRepositoryConfig, *, refresh: Iterable[str] = ()
    ) -> DigestLookup: ...

    def metadata_lookup(self, image_repository: ImageRepositoryConfig) -> MetadataLookup:
        """An async ``tag -> ImageMetadata | None`` (None: the image does not say)."""
        ...

    def all_tags(self, image_repository: ImageRepositoryConfig) -> Sequence[str] | None:
        """The image's tags before any exclusion list (None: not known)."""
        ...


MetadataLookup = Callable[[str], Awaitable[ImageMetadata | None]]


class TagAges(Protocol):
    """When the bot first saw each tag of an image (`serve`: the database)."""

    def first_seen(self, image: str, tags: Sequence[str], now: float) -> Mapping[str, float]:
        """Each tag's first sighting; tags never seen before are recorded as seen ``now``,
        except at the image's very first scan, whose tags count as old (0)."""
        ...


#: How many winners that turn out too young (by their created time) are passed over
#: before a policy gives up: each costs the registry a manifest and a config.
MAX_AGE_RETRIES = 5


@dataclass
class Observation:
    """The latest image of every policy (Flux's ``observedPolicies``), and failures.

    A failed policy's problem is located at the policy in the config file.
    """

    latest: dict[str, LatestRef] = field(default_factory=dict)
    errors: dict[str, Problem] = field(default_factory=dict)
    #: Per image repository, the tags it had (after its exclusion list), for `explain`.
    tags: dict[str, list[str]] = field(default_factory=dict)
    #: Per policy that picked nothing from the tags it had: why (`bot.policy.explain`).
    explanations: dict[str, str] = field(default_factory=dict)
    #: Per policy with ``minimumReleaseAge``: the tags passed over as too young.
    too_young: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class AutomationPlan:
    name: str
    result: Result
    edited: dict[str, bytes]  # repo-relative path -> new content
    commit_message: str = ""
    title: str = ""
    #: The rendered body, above the hidden state block (`body` puts them together).
    body_text: str = ""
    #: What the PR body says besides the change list (release notes): it gets the room
    #: the change list leaves, and is dropped first; it never makes the body "shortened".
    appendix: str = ""
    pr_state: PullRequestState | None = None
    #: The latest image of each policy this automation applies.
    latest: dict[str, LatestRef] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)

    @classmethod
    def not_planned(cls, name: str, problem: Problem) -> AutomationPlan:
        """No plan, for the reason `problem` gives (e.g. over its budget)."""
        return cls(name=name, result=Result(), edited={}, errors=[problem])

    @property
    def failed(self) -> bool:
        """Errors and no change list: nothing may be concluded, so nothing is touched."""
        return bool(self.errors) and not self.result

    @property
    def change_set(self) -> str:
        return self.pr_state.change_set if self.pr_state else ""

    @property
    def body_shortened(self) -> bool:
        """Is the change list too long for the PR body (the check run then has it all)?"""
        return self.pr_state is not None and too_long(self.body_text, self.pr_state)

    def body(self, *, head: str | None = None) -> str:
        """The PR body as GitHub takes it; ``head`` is the commit the branch will hold."""
        if self.pr_state is None:
            return ""
        state = dataclasses.replace(self.pr_state, head=head)
        text = self.body_text
        if self.appendix and not too_long(text + self.appendix, state):
            text += self.appendix
        return compose_body(text, state)


async def observe_policies(
    config: Config,
    source: TagSource,
    *,
    previous: Mapping[str, LatestRef] | None = None,
    rank: RankTags = rank_inline,
    ages: TagAges | None = None,
    now: float | None = None,
) -> Observation:
    """Evaluate every policy; a failed policy keeps its previous latest image (Flux).

    ``rank`` runs the filtering and sorting of tags (the server: in a worker process).
    ``ages`` (with ``now``) is when each tag was first seen, for ``minimumReleaseAge``;
    without it (`plan`) only an image's own created time can make a tag too young.
    """
    now = time.time() if now is None else now
    previous = previous or {}
    observation = Observation()

    # One scan per image repository, however many policies use it.
    image_repository_names = sorted({p.repository for p in config.policies.values()})
    scans = await source.tags_of_all([config.repositories[n] for n in image_repository_names])
    tags_by_image_repository = dict(zip(image_repository_names, scans, strict=True))
    observation.tags = {
        name: list(tags)
        for name, tags in tags_by_image_repository.items()
        if isinstance(tags, list)
    }

    for name in sorted(config.policies):
        policy = config.policies[name]
        image_repository = config.repositories[policy.repository]
        tags = tags_by_image_repository[policy.repository]
        try:
            if isinstance(tags, BaseException):
                raise tags
            lookup = source.digest_lookup(image_repository, refresh=_tags_to_refresh(policy))

            pick = functools.partial(
                evaluate,
                policy.spec,
                image_repository.image,
                previous=previous.get(name),
                digest_of=lookup,
                rank=rank,
            )
            if policy.minimum_age > 0:
                too_young = observation.too_young.setdefault(name, [])
                observation.latest[name] = await _old_enough(
                    policy, image_repository, tags, pick, source, ages, now, too_young
                )
            else:
                observation.latest[name] = await pick(tags)
        except Exception as exc:  # a registry or policy failure must not stop the others
            observation.errors[name] = error(config.file_of(policy), policy.line, 1, _describe(exc))
            picked_nothing = isinstance(exc, PolicyError) and not isinstance(
                exc, InvalidPolicyError
            )
            if picked_nothing and isinstance(tags, list):
                young = observation.too_young.get(name, [])
                observation.explanations[name] = _explanation(name, policy, tags, young)
            if name in previous:
                observation.latest[name] = previous[name]
    return observation


#: Explaining is linear in the tags; beyond this, `plan --explain` is the place for it.
MAX_EXPLAINED_TAGS = 10_000


async def _old_enough(
    policy: ImagePolicyConfig,
    image_repository: ImageRepositoryConfig,
    tags: Sequence[str],
    pick: Callable[[Sequence[str]], Awaitable[LatestRef]],
    source: TagSource,
    ages: TagAges | None,
    now: float,
    too_young: list[str],
) -> LatestRef:
    """The policy's pick among tags at least ``minimumReleaseAge`` old (``too_young``
    collects the others): first by when the bot first saw them, then the winner by the
    image's own created time, when it says."""
    age = policy.minimum_age
    if ages is not None:
        # Every tag of the image, not only those this repository's exclusion list keeps:
        # the sightings are shared, and an image's first scan must record them all as old.
        every_tag = source.all_tags(image_repository) or tags
        seen = ages.first_seen(canonical_name(image_repository.image), every_tag, now)
        too_young.extend(t for t in tags if now - seen.get(t, now) < age)
    young = set(too_young)
    candidates = [t for t in tags if t not in young]
    metadata_of = source.metadata_lookup(image_repository)
    for _ in range(MAX_AGE_RETRIES):
        if not candidates:
            break
        ref = await pick(candidates)
        metadata = await metadata_of(ref.tag)
        if metadata is None or metadata.created is None or now - metadata.created >= age:
            return ref
        too_young.append(ref.tag)
        candidates.remove(ref.tag)
    raise PolicyError(
        f"no tag is older than minimumReleaseAge ({len(too_young)} too young"
        f"{', more not checked' if candidates else ''}); the policy keeps its last pick"
    )


def _explanation(
    name: str, policy: ImagePolicyConfig, tags: list[str], too_young: Sequence[str] = ()
) -> str:
    if len(tags) > MAX_EXPLAINED_TAGS:
        return (
            f"policy {name}: {len(tags)} tags; run `plan --explain {name}` to see each one's fate"
        )
    from bot.policy.explain import explain

    try:
        return explain(name, policy.spec, tags, too_young=too_young).text()
    except PolicyError as exc:  # what made the policy fail may stop the explanation too
        return f"policy {name}: {exc}"


def _tags_to_refresh(policy: ImagePolicyConfig) -> list[str]:
    """Mutable tags whose digest must be asked again on every scan."""
    spec = policy.spec
    refresh = []
    if spec.kind == "rolling" and spec.rolling_tag:
        refresh.append(spec.rolling_tag)
    if spec.alias_of:
        refresh.append(spec.alias_of)
    return refresh


def _describe(exc: BaseException) -> str:
    if not type(exc).__module__.startswith("bot."):
        # Not one of our own errors: keep the detail in the log for whoever debugs it.
        log.warning("policy evaluation failed unexpectedly", exc_info=exc)
    return str(exc).strip() or type(exc).__name__


def selected_policies(
    config: Config, automation: AutomationConfig, observation: Observation
) -> dict[str, LatestRef]:
    """The policies this automation applies: selector matches and a latest image exists."""
    return {
        name: observation.latest[name]
        for name, policy in sorted(config.policies.items())
        if name in observation.latest and automation.selects(policy)
    }


def update_path_problem(
    config: Config, automation: AutomationConfig, paths: Collection[str]
) -> Problem | None:
    """A warning at update.path when the automation can change nothing there: it names
    one file that Flux never updates, or no file of `paths` (the tree's) is under it."""
    message = ignored_single_file(paths, automation.update_path)
    if message is None and not _has_candidates(paths, automation.update_path):
        message = (
            f"update.path {automation.update_path!r} holds no file the setters read (*.yaml, "
            "*.yml or Kustomization): it does not exist, or holds no manifests, so this "
            "automation can change nothing; check the path"
        )
    if message is None:
        return None
    line = automation.update_path_line or None
    return config.problem(automation, message, line=line, severity=Severity.WARNING)


def _has_candidates(paths: Iterable[str], update_path: str) -> bool:
    try:
        return bool(candidate_paths(paths, update_path))
    except UpdateError:
        return True  # an update.path outside the tree is an error of its own


def automation_paths(automation: AutomationConfig, paths: Iterable[str]) -> list[str]:
    """Repo-relative paths an automation may edit (yaml/yml/Kustomization under update.path)."""
    return [repo_path for repo_path, _rel in candidate_paths(paths, automation.update_path)]


# -- what one automation may cost the server ------------------------------------------

#: The operator's settings for `PlanBudget`, named in the messages that cite them.
MAX_FILES_SETTING = "AUTOMATION_MAX_FILES"
MAX_BYTES_SETTING = "AUTOMATION_MAX_BYTES"
MAX_MARKED_FILES_SETTING = "AUTOMATION_MAX_MARKED_FILES"
MAX_SECONDS_SETTING = "AUTOMATION_MAX_SECONDS"

_NARROW = "narrow update.path to the files that carry image policy markers"


@dataclass(frozen=True)
class PlanBudget:
    """What one automation may cost per run in `serve` (None: no limit, as in `plan`).

    Files and bytes are checked before anything is read; marked files before
    anything is parsed; seconds by the worker that plans (`bot.workers`).
    """

    max_files: int | None = 20_000
    max_bytes: int | None = 256 << 20
    max_marked_files: int | None = 2_000
    max_seconds: float | None = 60.0

    def reading_problem(
        self, config: Config, automation: AutomationConfig, sizes: Mapping[str, int | None]
    ) -> Problem | None:
        """The error when the files `automation` would read (path -> size) exceed the budget."""
        if self.max_files is not None and len(sizes) > self.max_files:
            return config.problem(
                automation,
                f"update.path selects {len(sizes)} files, more than the limit of "
                f"{self.max_files} per automation ({MAX_FILES_SETTING}); {_NARROW}",
            )
        total = sum(size or 0 for size in sizes.values())
        if self.max_bytes is not None and total > self.max_bytes:
            return config.problem(
                automation,
                f"the files under update.path hold {total} bytes, more than the limit of "
                f"{self.max_bytes} per automation ({MAX_BYTES_SETTING}); {_NARROW}",
            )
        return None

    def time_problem(self, config: Config, automation: AutomationConfig) -> Problem:
        return config.problem(
            automation,
            f"planning took longer than the limit of {self.max_seconds:g} s per automation "
            f"({MAX_SECONDS_SETTING}); {_NARROW}",
        )


UNLIMITED = PlanBudget(max_files=None, max_bytes=None, max_marked_files=None, max_seconds=None)


def plan_automation(
    config: Config,
    automation: AutomationConfig,
    observation: Observation,
    files: Mapping[str, bytes],
    *,
    repository: str,
    refused: Mapping[str, str] | None = None,
    budget: PlanBudget = UNLIMITED,
) -> AutomationPlan:
    """Apply one automation's setters to ``files`` (repo-relative) and render its texts.

    ``refused`` maps repo-relative paths that may not be written to why (the
    server refuses what a GitHub App cannot push; a local `plan` refuses nothing).
    They are left out of the change list, the PR and the commit alike, each
    with a warning at its first changed line. Pure, and picklable in and out:
    the server runs it in a worker process (`bot.workers`).
    """
    plan = AutomationPlan(name=automation.name, result=Result(), edited={})
    plan.latest = selected_policies(config, automation, observation)

    try:
        setters = build_setters(automation.namespace, plan.latest)
        candidates = candidate_paths(files.keys(), automation.update_path)
    except UpdateError as exc:
        plan.errors.append(config.problem(automation, str(exc)))
        return plan

    marked = sum(has_marker(files[repo_path]) for repo_path, _rel in candidates)
    if budget.max_marked_files is not None and marked > budget.max_marked_files:
        plan.errors.append(
            config.problem(
                automation,
                f"{marked} files under update.path carry image policy markers, more than the "
                f"limit of {budget.max_marked_files} per automation "
                f"({MAX_MARKED_FILES_SETTING}); {_NARROW}",
            )
        )
        return plan

    refused = refused or {}
    to_repo_path = {rel: repo_path for repo_path, rel in candidates}
    outcome = update_files({rel: files[repo_path] for repo_path, rel in candidates}, setters)
    marker_problems = check_markers(
        outcome.marked,
        namespace=automation.namespace,
        policies=[p.name for p in config.policies.values() if p.namespace == automation.namespace],
    )
    plan.warnings.extend(
        dataclasses.replace(w, path=to_repo_path.get(w.path, w.path))
        for w in [*outcome.warnings, *marker_problems]
    )
    for rel in sorted(outcome.result.files):
        reason = refused.get(to_repo_path[rel])
        if reason is None:
            continue
        plan.warnings.append(warning(to_repo_path[rel], outcome.first_lines.get(rel, 1), 0, reason))
        del outcome.result.files[rel]
        outcome.edited.pop(rel, None)
    plan.result = outcome.result
    plan.edited = {to_repo_path[rel]: content for rel, content in outcome.edited.items()}
    if not plan.result:
        return plan  # Flux renders templates only when something changed

    def render(source: str, name: str) -> str:
        # Jinja2 is loaded only for a repository's own template.
        from bot.update.templates import render_template

        return render_template(source, data, name=name)

    data = template_data(
        automation=f"{automation.namespace}/{automation.name}",
        result=plan.result,
        values=automation.message_template_values,
        observed_policies=plan.latest,
        repository=repository,
    )
    plan.pr_state = PullRequestState(
        automation=automation.name,
        change_set=change_set_id(plan.result),
        latest={name: ref.to_json() for name, ref in plan.latest.items()},
    )
    try:
        plan.commit_message = (
            render(automation.message_template, COMMIT_MESSAGE)
            if automation.message_template
            else DEFAULT_COMMIT_MESSAGE
        )
        plan.title = (
            render(automation.pr_title, PR_TITLE)
            if automation.pr_title
            else default_pr_title(automation.name, plan.result)
        )
        plan.body_text = render_pr_body(data, body_template=automation.pr_body_template)
    except TemplateError as exc:
        first = automation.template_lines.get(exc.name)
        line = None if first is None else first + exc.line - 1
        plan.errors.append(config.problem(automation, str(exc), line=line))
        # Without its commit message or PR text the change cannot be proposed:
        # report the change list, write nothing.
        plan.edited = {}
    return plan
