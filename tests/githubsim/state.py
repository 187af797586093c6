"""The simulator's in-memory records (everything except git objects, which live in git)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .gitstore import GitRepo

LEVELS = {"read": 1, "write": 2, "admin": 3}


def allows(permissions: dict[str, str], name: str, level: str) -> bool:
    return LEVELS.get(permissions.get(name, ""), 0) >= LEVELS[level]


@dataclass
class App:
    id: int
    slug: str
    name: str
    public_key_pem: str
    permissions: dict[str, str]
    events: list[str]
    owner: str
    created_at: float
    hook_id: int = 0
    webhook_url: str | None = None  # where the simulator POSTs this App's deliveries
    webhook_secret: str | None = None


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    account_type: str
    repositories: set[str] | None  # None = every repository of the account ("all")
    permissions: dict[str, str]
    events: list[str]
    created_at: float
    suspended_at: float | None = None
    suspended_by: str | None = None

    def covers(self, full_name: str) -> bool:
        if self.repositories is None:
            return full_name.split("/", 1)[0].lower() == self.account.lower()
        return full_name.lower() in {r.lower() for r in self.repositories}


@dataclass
class Token:
    token: str
    installation_id: int
    expires_at: float
    permissions: dict[str, str]
    repositories: set[str] | None  # down-scoped subset, None = whole installation
    user: str | None = None  # a person's token (login) instead of an installation's


@dataclass
class Label:
    id: int
    name: str
    color: str
    description: str | None
    default: bool = False


@dataclass
class User:
    """A person's account (`type: User`) or an App's bot user (`type: Bot`)."""

    login: str
    type: str = "User"
    name: str | None = None
    email: str | None = None


@dataclass
class Comment:
    id: int
    body: str
    user: str
    created_at: float
    user_type: str = "User"


@dataclass
class Pull:
    number: int
    id: int
    title: str
    body: str | None
    head: str  # branch name in the same repository
    base: str
    head_sha: str
    base_sha: str
    user: str
    user_type: str
    draft: bool
    created_at: float
    updated_at: float
    state: str = "open"
    closed_at: float | None = None
    maintainer_can_modify: bool = False
    labels: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    merged_at: float | None = None
    merged_by: User | None = None
    merge_commit_sha: str | None = None
    assignees: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        return self.merged_at is not None


@dataclass
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: float | None
    completed_at: float | None
    details_url: str | None
    external_id: str | None
    output: dict[str, Any]
    annotations: list[dict]
    app_id: int | None


@dataclass
class Release:
    id: int
    tag_name: str
    target_commitish: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    created_at: float
    author: str


@dataclass
class Repository:
    id: int
    owner: str
    name: str
    private: bool
    default_branch: str
    git: GitRepo
    created_at: float
    pushed_at: float
    description: str | None = None
    archived: bool = False
    next_number: int = 1
    pulls: dict[int, Pull] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)  # keyed by lower-case name
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    releases: list[Release] = field(default_factory=list)  # oldest first
    #: People (lower-case logins) with write access besides the owner, and teams (slugs).
    collaborators: set[str] = field(default_factory=set)
    teams: set[str] = field(default_factory=set)

    def is_collaborator(self, login: str) -> bool:
        return login.lower() in self.collaborators or login.lower() == self.owner.lower()

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Fault:
    method: str | None
    route: str | None
    status: int | None
    times: int | None  # None = every matching request until cleared
    headers: dict[str, str]
    body: Any
    delay: float
    lose_answer: bool = False  # process the request, then drop the connection unanswered

    def matches(self, method: str, route: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return (self.method is None or self.method.upper() == method) and (
            self.route is None or self.route == route
        )


@dataclass
class RateBucket:
    limit: int
    reset: float
    used: int = 0
