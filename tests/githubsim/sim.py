"""GitHubSim: the simulator's state and its Python API for tests (see README.md)."""

from __future__ import annotations

import collections
import itertools
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from . import events, gitmerge, shapes
from .actions import ActionsAPI
from .credentials import Caller
from .gitstore import WORKFLOWS_DIR, GitRepo
from .people import INSTALLER, PeopleAPI
from .protocol import ApiError, empty_repository, not_accessible, not_found
from .state import (
    App,
    CheckRun,
    Fault,
    Installation,
    Label,
    Pull,
    RateBucket,
    Repository,
    Token,
    User,
    allows,
)
from .webhooks import HooksAPI, WebhookSender

SIM_KEY = web.AppKey("githubsim", object)
DEFAULT_PERMISSIONS = {"contents": "write", "pull_requests": "write", "issues": "write",
                       "checks": "write", "metadata": "read"}  # fmt: skip
DEFAULT_EVENTS = ["push", "pull_request"]
MULTI_SEGMENT = ("path", "ref", "tree_sha", "branch", "commit_sha")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubSim(PeopleAPI, ActionsAPI, HooksAPI):
    """In-process GitHub: apps, installations, tokens, git repositories, pulls, checks,
    people and webhook deliveries."""

    def __init__(self, root: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.token_ttl = 3600.0
        self.tree_entry_limit = 100_000  # recursive trees beyond this many entries are truncated
        self.rate_limit = 5000  # primary limit per installation / app per hour
        self.rate_limit_status = 403  # GitHub answers 403 or 429 when exhausted
        self.rate_window = 3600.0  # seconds from a bucket's first request to its reset
        self.contents_max_bytes = 1 << 20
        # `installation` deliveries of an "all repositories" installation list none (as
        # GitHub's may): the App must page GET /installation/repositories itself.
        self.all_repositories_unlisted = False
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.repos: dict[str, Repository] = {}  # keyed by lower-case full name
        self.faults: list[Fault] = []
        self.counters: collections.Counter[str] = collections.Counter()
        self.exchanges: list | None = None  # set to [] to record every API response
        #: Codes of the App manifest flow, by code (`routes_manifests`).
        self.manifest_codes: dict[str, Any] = {}
        self._buckets: dict[str, RateBucket] = {}
        self._ids = itertools.count(1001)
        self._hook_ids = itertools.count(400_001)  # apart from _ids: installation ids stay put
        self.codeload_secret = secrets.token_hex(16)
        self.users: dict[str, User] = {}  # keyed by lower-case login
        self.hooks = WebhookSender(self)
        self.base_url = "http://127.0.0.1"  # URLs in webhook payloads; set by the first request
        self.mergeable_cache: dict[tuple[str, str, str], bool] = {}

    # -- web application ---------------------------------------------------------------------
    def make_app(self) -> web.Application:
        from . import (
            admin,
            admin_hooks,
            admin_people,
            routes_apps,
            routes_checks,
            routes_git,
            routes_issues,
            routes_manifests,
            routes_pulls,
            routes_repos,
        )
        from .middleware import make_middleware

        app = web.Application(middlewares=[make_middleware(self)], client_max_size=200 << 20)
        app[SIM_KEY] = self
        for module in (routes_apps, routes_repos, routes_git, routes_pulls, routes_issues,
                       routes_checks, routes_manifests, admin, admin_people,
                       admin_hooks):  # fmt: skip
            for method, template, handler in module.ROUTES:
                app.router.add_route(method, _aiohttp_pattern(template), handler)

        async def start_deliveries(_app: web.Application) -> None:
            self.hooks.kick()  # deliveries queued by setup code before the loop ran

        async def stop_deliveries(_app: web.Application) -> None:
            await self.hooks.aclose()

        app.on_startup.append(start_deliveries)
        app.on_cleanup.append(stop_deliveries)
        return app

    # -- setup API ---------------------------------------------------------------------------
    def register_app(self, app_id: int = 1, public_key_pem: str | bytes = "", *,
                     slug: str = "image-automation", permissions: dict[str, str] | None = None,
                     name: str | None = None, events: list[str] | None = None,
                     owner: str = "octo-org", webhook_url: str | None = None,
                     webhook_secret: str | None = None) -> int:  # fmt: skip
        pem = public_key_pem.decode() if isinstance(public_key_pem, bytes) else public_key_pem
        if "PUBLIC KEY" not in pem:
            raise ValueError("register_app needs the App's public key in PEM form")
        self.apps[int(app_id)] = App(
            id=int(app_id), slug=slug, name=name or slug, public_key_pem=pem,
            permissions=dict(permissions or DEFAULT_PERMISSIONS),
            events=list(events or DEFAULT_EVENTS), owner=owner, created_at=self.clock(),
            hook_id=next(self._hook_ids), webhook_url=webhook_url, webhook_secret=webhook_secret,
        )  # fmt: skip
        return int(app_id)

    def create_installation(self, app_id: int, account: str, repositories: list[str] | None = None,
                            *, account_type: str = "Organization",
                            permissions: dict[str, str] | None = None,
                            installation_id: int | None = None,
                            as_user: str | None = None) -> int:  # fmt: skip
        """`repositories=None` installs on every repository of `account` ("all").

        Sends `installation created` (sender: `as_user`, else the account itself when it is
        a user, else `octocat`); so do the calls below with their events."""
        app = self.apps[int(app_id)]
        inst_id = installation_id if installation_id is not None else next(self._ids)
        inst = self.installations[inst_id] = Installation(
            id=inst_id, app_id=app.id, account=account, account_type=account_type,
            repositories=None if repositories is None else set(repositories),
            permissions=dict(permissions if permissions is not None else app.permissions),
            events=list(app.events), created_at=self.clock(),
        )  # fmt: skip
        events.installation(self, inst, "created", self._installer(inst, as_user))
        return inst_id

    def _installer(self, inst: Installation, as_user: str | None) -> User:
        if as_user is None and inst.account_type == "User":
            as_user = inst.account
        return self.person(as_user or INSTALLER)

    def add_repositories(self, installation_id: int, repositories: list[str], *,
                         as_user: str | None = None) -> None:  # fmt: skip
        """`installation_repositories added` for those not yet selected ("all": no-op)."""
        inst = self.installations[installation_id]
        if inst.repositories is not None:
            have = {r.lower() for r in inst.repositories}
            new = [r for r in dict.fromkeys(repositories) if r.lower() not in have]
            inst.repositories.update(new)
            events.installation_repositories(self, inst, "added",
                                             self._installer(inst, as_user), new)  # fmt: skip

    def remove_repositories(self, installation_id: int, repositories: list[str], *,
                            as_user: str | None = None) -> None:  # fmt: skip
        inst = self.installations[installation_id]
        if inst.repositories is not None:
            gone = [r for r in inst.repositories if r.lower() in {n.lower() for n in repositories}]
            inst.repositories.difference_update(gone)
            events.installation_repositories(self, inst, "removed",
                                             self._installer(inst, as_user), gone)  # fmt: skip

    def suspend_installation(self, installation_id: int, suspended: bool = True, *,
                             as_user: str | None = None) -> None:  # fmt: skip
        """`installation suspend` / `unsuspend` (only on a change of state)."""
        inst = self.installations[installation_id]
        if (inst.suspended_at is not None) == suspended:
            return
        who = self._installer(inst, as_user)
        inst.suspended_at = self.clock() if suspended else None
        inst.suspended_by = who.login if suspended else None
        events.installation(self, inst, "suspend" if suspended else "unsuspend", who)

    def delete_installation(self, installation_id: int, *, as_user: str | None = None) -> None:
        inst = self.installations.get(installation_id)
        if inst is not None:
            events.installation(self, inst, "deleted", self._installer(inst, as_user))
        self.installations.pop(installation_id, None)
        for key in [k for k, t in self.tokens.items() if t.installation_id == installation_id]:
            del self.tokens[key]

    def create_repository(self, full_name: str, files: dict[str, bytes] | None = None, *,
                          default_branch: str = "main", private: bool = True,
                          message: str = "Initial commit",
                          author: tuple[str, str] = ("Octo Cat", "octocat@example.com"),
                          ) -> str | None:  # fmt: skip
        """Create a repository with one commit of `files` (empty repository if None)."""
        if not _NAME.match(full_name):
            raise ValueError(f"repository name must be 'owner/name', got {full_name!r}")
        if full_name.lower() in self.repos:
            raise ValueError(f"repository {full_name} already exists")
        owner, name = full_name.split("/")
        now = self.clock()
        repo = Repository(
            id=next(self._ids), owner=owner, name=name, private=private,
            default_branch=default_branch,
            git=GitRepo(self.root / "repos" / owner / f"{name}.git", default_branch),
            created_at=now, pushed_at=now,
        )  # fmt: skip
        self.repos[full_name.lower()] = repo
        if files is None:
            return None
        return self.push(full_name, default_branch, files, message=message, author=author)

    def create_release(self, repo: str, tag_name: str, *, name: str | None = None,
                       body: str | None = None, draft: bool = False, prerelease: bool = False,
                       author: str = "octocat") -> int:  # fmt: skip
        """A release of `repo` (its tag need not exist, as on GitHub with a target); its id."""
        from .state import Release

        release = Release(id=self.next_id(), tag_name=tag_name, target_commitish="main",
                          name=name, body=body, draft=draft, prerelease=prerelease,
                          created_at=self.clock(), author=author)  # fmt: skip
        self.repo(repo).releases.append(release)
        return release.id

    def add_collaborator(self, repo: str, login: str) -> None:
        """Give a person (made if new) write access to `repo`: assignable, reviewable."""
        if login.lower() not in self.users:
            self.create_user(login)
        self.repo(repo).collaborators.add(login.lower())

    def add_team(self, repo: str, slug: str) -> None:
        """A team of the owning organisation with access to `repo` (reviews can be asked of it)."""
        self.repo(repo).teams.add(slug.lower())

    def create_label(self, repo: str, name: str, color: str = "ededed",
                     description: str | None = None) -> None:  # fmt: skip
        self.ensure_label(self.repo(repo), name, color, description)

    # -- inspection API ------------------------------------------------------------------------
    def read_file(self, repo: str, ref: str, path: str) -> bytes | None:
        r = self.repo(repo)
        sha = r.git.resolve_commit(ref)
        if sha is None:
            return None
        found = r.git.lookup(r.git.commit_tree(sha), path)
        return r.git.blob(found[1]) if found else None

    def branch_sha(self, repo: str, branch: str) -> str | None:
        return self.repo(repo).git.ref(f"refs/heads/{branch}")

    def pulls(self, repo: str) -> list[dict]:
        r = self.repo(repo)
        out = []
        for pr in sorted(r.pulls.values(), key=lambda p: p.number):
            self.sync_pull(r, pr)
            out.append({
                "number": pr.number, "state": pr.state, "title": pr.title, "body": pr.body,
                "head": pr.head, "base": pr.base, "head_sha": pr.head_sha, "draft": pr.draft,
                "user": pr.user, "labels": list(pr.labels),
                "comments": [{"body": c.body, "user": c.user} for c in pr.comments],
                "merged": pr.merged, "merged_by": pr.merged_by.login if pr.merged_by else None,
                "merge_commit_sha": pr.merge_commit_sha, "assignees": list(pr.assignees),
                "requested_reviewers": list(pr.requested_reviewers),
                "requested_teams": list(pr.requested_teams),
            })  # fmt: skip
        return out

    def check_runs(self, repo: str) -> list[dict]:
        r = self.repo(repo)
        return [
            {
                "id": c.id,
                "name": c.name,
                "head_sha": c.head_sha,
                "status": c.status,
                "conclusion": c.conclusion,
                "output": dict(c.output),
                "annotations": list(c.annotations),
                "details_url": c.details_url,
                "external_id": c.external_id,
            }  # fmt: skip
            for c in sorted(r.check_runs.values(), key=lambda c: c.id)
        ]

    def reset_counters(self) -> None:
        self.counters.clear()

    def inject(self, method: str | None = None, route: str | None = None, status: int | None = 502,
               times: int | None = 1, headers: dict[str, str] | None = None, body: Any = None,
               delay: float = 0.0, lose_answer: bool = False) -> Fault:  # fmt: skip
        """Answer the next `times` matching requests with `status` (None: only delay them).

        `lose_answer`: carry the request out, then close the connection without an
        answer (a write that took effect although the client saw it fail).
        """
        fault = Fault(method=method.upper() if method else None, route=route, status=status,
                      times=times, headers=dict(headers or {}), body=body, delay=delay,
                      lose_answer=lose_answer)  # fmt: skip
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def issue_token(self, installation_id: int) -> str:
        """Mint an installation token directly (tests of routes other than token creation)."""
        inst = self.installations[installation_id]
        return self.mint_token(inst, dict(inst.permissions), None).token

    # -- helpers for route handlers -------------------------------------------------------------
    def repo(self, full_name: str) -> Repository:
        try:
            return self.repos[full_name.lower()]
        except KeyError:
            raise KeyError(f"no simulated repository {full_name!r}") from None

    def app_by_issuer(self, iss: object) -> App | None:
        try:
            return self.apps.get(int(str(iss)))
        except ValueError:
            return next((a for a in self.apps.values()
                         if shapes.app("", a)["client_id"] == iss), None)  # fmt: skip

    def account_type(self, login: str) -> str:
        for inst in self.installations.values():
            if inst.account.lower() == login.lower():
                return inst.account_type
        return "Organization"

    def mint_token(self, inst: Installation, permissions: dict[str, str],
                   repositories: set[str] | None) -> Token:  # fmt: skip
        value = "ghs_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "B")
        token = Token(token=value, installation_id=inst.id,
                      expires_at=self.clock() + self.token_ttl, permissions=permissions,
                      repositories=repositories)  # fmt: skip
        self.tokens[value] = token
        return token

    def rate_bucket(self, name: str) -> RateBucket:
        now = self.clock()
        bucket = self._buckets.get(name)
        if bucket is None or bucket.reset <= now:
            bucket = RateBucket(limit=self.rate_limit, reset=int(now + self.rate_window))
            self._buckets[name] = bucket
        return bucket

    def take_fault(self, method: str, route: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, route):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def visible_repos(self, caller: Caller) -> list[Repository]:
        return [r for r in self.repos.values() if self._can_see(caller, r)]

    def _can_see(self, caller: Caller, repo: Repository) -> bool:
        if caller.kind == "user":
            return True  # a person's token: collaborator everywhere
        if caller.kind != "installation":
            return False
        inst, token = caller.installation, caller.token
        if not inst.covers(repo.full_name):
            return False
        return token.repositories is None or repo.full_name.lower() in token.repositories

    def access(self, caller: Caller, owner: str, name: str, permission: str = "metadata",
               level: str = "read", *, allow_empty: bool = True) -> Repository:  # fmt: skip
        """The repository if the installation token may use it this way; GitHub's errors if not."""
        if caller.kind == "anonymous":
            raise ApiError(401, "Requires authentication")
        if caller.kind == "app":
            raise not_accessible()
        repo = self.repos.get(f"{owner}/{name}".lower())
        public_read = repo is not None and not repo.private and level == "read"
        if repo is None or not (self._can_see(caller, repo) or public_read):
            raise not_found()  # never 403 for repositories outside the installation
        if public_read and not self._can_see(caller, repo):
            return repo  # any token reads a public repository, whatever it was granted
        if not allows(caller.token.permissions, permission, level) and not (
            permission == "metadata" and level == "read"
        ):
            raise not_accessible()
        if not allow_empty and repo.git.is_empty():
            raise empty_repository()
        return repo

    def require_workflow_permission(self, caller: Caller, repo: Repository, old_tree: str | None,
                                    new_tree: str) -> None:  # fmt: skip
        """403 when a write changes `.github/workflows/` and the App lacks `workflows: write`."""
        if allows(caller.token.permissions, "workflows", "write"):
            return
        if repo.git.subtree_sha(old_tree, WORKFLOWS_DIR) != repo.git.subtree_sha(
            new_tree, WORKFLOWS_DIR
        ):
            raise ApiError(
                403,
                "Resource not accessible by integration",
                doc="https://docs.github.com/rest/git/refs#update-a-reference",
            )

    def bot_login(self, caller: Caller) -> tuple[str, str]:
        who = self.actor(caller)
        return who.login, who.type

    def sync_pull(self, repo: Repository, pr: Pull) -> None:
        """PRs follow their branches; deleting the head branch closes the PR (as on GitHub)."""
        head = repo.git.ref(f"refs/heads/{pr.head}")
        base = repo.git.ref(f"refs/heads/{pr.base}")
        if pr.merged:
            return  # a merged PR keeps the head and base it was merged with
        if head is not None:
            pr.head_sha = head
        elif pr.state == "open":
            pr.state, pr.closed_at = "closed", self.clock()
        if base is not None:
            pr.base_sha = base

    def mergeable(self, repo: Repository, pr: Pull) -> bool | None:
        """GitHub's `mergeable`: computed for open PRs (path-level three-way merge), else None."""
        base = repo.git.ref(f"refs/heads/{pr.base}")
        if pr.state != "open" or base is None:
            return None
        key = (repo.full_name, base, pr.head_sha)
        if key not in self.mergeable_cache:
            self.mergeable_cache[key] = gitmerge.can_merge(repo.git, base, pr.head_sha)
        return self.mergeable_cache[key]

    def ensure_label(self, repo: Repository, name: str, color: str = "ededed",
                     description: str | None = None) -> Label:  # fmt: skip
        key = name.lower()
        if key not in repo.labels:
            repo.labels[key] = Label(id=next(self._ids), name=name, color=color,
                                     description=description)  # fmt: skip
        return repo.labels[key]

    def next_id(self) -> int:
        return next(self._ids)

    def new_check_run(self, **fields: Any) -> CheckRun:
        return CheckRun(id=next(self._ids), **fields)


def _aiohttp_pattern(template: str) -> str:
    """`{path}`-style parameters that may contain `/` become regex parameters."""
    for name in MULTI_SEGMENT:
        template = template.replace("{" + name + "}", "{" + name + ":.+}" if name != "path"
                                    else "{" + name + ":.*}")  # fmt: skip
    return template


def sim_of(request: web.Request) -> GitHubSim:
    return request.app[SIM_KEY]  # type: ignore[return-value]
