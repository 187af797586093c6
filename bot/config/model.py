"""What a loaded config is: the dataclasses the rest of the bot reads, and their defaults.

Pure data, no validation: the readers in this package only build these from a
file that passed every check (design §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.config.schedule import Schedule
from bot.imageref import ImageRef
from bot.policy.model import DEFAULT_EXCLUSION_LIST, PolicySpec
from bot.problems import Problem, Severity

CONFIG_PATH = ".github/image-automation.yml"
DEFAULT_NAMESPACE = "default"
DEFAULT_REPOSITORY_INTERVAL = 300.0  # 5m
DEFAULT_AUTOMATION_INTERVAL = 1800.0  # 30m
DEFAULT_POLICY_INTERVAL = 600.0  # 10m, Flux's default for digestReflectionPolicy: Always
MIN_TIMEOUT = 1.0  # Flux raises any shorter timeout to 1s
MAX_EXCLUSION_LIST = 25  # Flux's CRD limit
MAX_ASSIGNEES = 10  # GitHub assigns at most 10 people to an issue or PR
MAX_REVIEWERS = 15  # people and teams asked to review, together (GitHub's own cap)
DEFAULT_AUTHOR_NAME = "image-automation[bot]"
PUSH_BRANCH_PREFIX = "image-automation/"
UPDATE_STRATEGIES = ("Setters",)  # update.strategy: Flux knows only this one


@dataclass
class ImageRepositoryConfig:
    name: str
    image: str  # verbatim; becomes LatestRef.name
    ref: ImageRef
    interval: float = DEFAULT_REPOSITORY_INTERVAL
    timeout: float | None = None  # None: the scanner's default (30s), not the interval as in Flux
    exclusion_list: tuple[str, ...] = DEFAULT_EXCLUSION_LIST  # effective list
    insecure: bool | None = None  # None: plain http only for loopback
    credentials: str | None = None
    line: int = 0
    namespace: str = DEFAULT_NAMESPACE
    path: str = ""  # the Flux manifest it came from; "": the config file


@dataclass
class ImagePolicyConfig:
    name: str
    repository: str
    spec: PolicySpec
    labels: dict[str, str] = field(default_factory=dict)
    interval: float | None = None  # set only with digestReflectionPolicy: Always
    line: int = 0
    repository_namespace: str = ""  # imageRepositoryRef.namespace; "": the policy's own
    #: minimumReleaseAge in seconds: a tag is a candidate once it is that old (0: at once).
    minimum_age: float = 0.0
    namespace: str = DEFAULT_NAMESPACE
    path: str = ""  # the Flux manifest it came from; "": the config file


@dataclass
class LabelSelector:
    match_labels: dict[str, str] = field(default_factory=dict)
    match_expressions: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: every matchLabels pair and every expression must hold."""
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for key, operator, values in self.match_expressions:
            present = key in labels
            if operator == "In" and not (present and labels[key] in values):
                return False
            if operator == "NotIn" and present and labels[key] in values:
                return False
            if operator == "Exists" and not present:
                return False
            if operator == "DoesNotExist" and present:
                return False
        return True


#: matchExpressions operators, in the order `LabelSelector.matches` handles them.
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass
class AutomationConfig:
    name: str
    interval: float = DEFAULT_AUTOMATION_INTERVAL
    checkout_branch: str | None = None  # None: the repository's default branch
    push_branch: str = ""  # "" is replaced by image-automation/<name>
    author_name: str = DEFAULT_AUTHOR_NAME
    author_email: str = ""  # "": the GitHub App's own bot identity
    message_template: str | None = None
    message_template_values: dict[str, str] = field(default_factory=dict)
    update_path: str = "."
    update_path_line: int = 0  # its line in the config, 0 if not given
    strategy: str = UPDATE_STRATEGIES[0]
    policy_selector: LabelSelector | None = None  # None: every policy
    pr_title: str | None = None
    pr_body_template: str | None = None
    pr_labels: list[str] = field(default_factory=list)
    pr_draft: bool = False
    #: Asked for once, when the PR is opened: GitHub logins, and team slugs of the owner.
    pr_assignees: list[str] = field(default_factory=list)
    pr_reviewers: list[str] = field(default_factory=list)
    pr_team_reviewers: list[str] = field(default_factory=list)
    #: When it may open and update its PR (None: any time), and its line in the config.
    schedule: Schedule | None = None
    schedule_line: int = 0
    line: int = 0
    #: Template name (`bot.update.templates.COMMIT_MESSAGE`...) -> the config line of its
    #: first line, so a template's problem points at its own line.
    template_lines: dict[str, int] = field(default_factory=dict)
    namespace: str = DEFAULT_NAMESPACE
    path: str = ""  # the Flux manifest it came from; "": the config file

    def __post_init__(self) -> None:
        if not self.push_branch:
            self.push_branch = f"{PUSH_BRANCH_PREFIX}{self.name}"

    def selects(self, policy: ImagePolicyConfig) -> bool:
        """Flux: the policies of the automation's own namespace that its selector matches."""
        if policy.namespace != self.namespace:
            return False
        return self.policy_selector is None or self.policy_selector.matches(policy.labels)

    def base_branch(self, default_branch: str | None) -> str | None:
        """The branch it checks out: its own, else the repository's default (None: unknown)."""
        return self.checkout_branch or default_branch

    def commits_directly(self, default_branch: str | None) -> bool:
        """Flux's direct mode: it pushes to the branch it checks out (no pull request)."""
        return self.push_branch == self.base_branch(default_branch)


@dataclass
class Config:
    version: int = 1
    path: str = CONFIG_PATH  # the file, as `load_config` was told; problems found later name it
    namespace: str = DEFAULT_NAMESPACE
    repositories: dict[str, ImageRepositoryConfig] = field(default_factory=dict)
    policies: dict[str, ImagePolicyConfig] = field(default_factory=dict)
    automations: dict[str, AutomationConfig] = field(default_factory=dict)
    #: `fluxManifests:` paths and globs: where Flux objects that are part of this config live.
    flux_manifests: tuple[str, ...] = ()

    def manifest_files(self) -> set[str]:
        """The Flux manifests any object of this config came from."""
        objects = [*self.repositories.values(), *self.policies.values()]
        return {item.path for item in [*objects, *self.automations.values()] if item.path}

    def file_of(self, item: ImageRepositoryConfig | ImagePolicyConfig | AutomationConfig) -> str:
        """The file an object was read from: its Flux manifest, or the config file."""
        return item.path or self.path

    def problem(
        self,
        automation: AutomationConfig,
        message: str,
        *,
        line: int | None = None,
        severity: Severity = Severity.ERROR,
    ) -> Problem:
        """A problem of one automation, at its entry in this config (or at ``line``)."""
        where = automation.line if line is None else line
        text = f"automation {automation.name!r}: {message}"
        return Problem(self.file_of(automation), where, 1, text, severity)

    def shortest_interval(self) -> float:
        """How often the repository is due: its shortest automation, image or policy interval.

        A policy has one only with ``digestReflectionPolicy: Always``: how often
        its digest is asked again.
        """
        intervals = [a.interval for a in self.automations.values()]
        intervals += [r.interval for r in self.repositories.values()]
        intervals += [p.interval for p in self.policies.values() if p.interval]
        return min((i for i in intervals if i), default=DEFAULT_REPOSITORY_INTERVAL)
