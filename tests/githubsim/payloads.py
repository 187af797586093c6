"""Webhook payload bodies in GitHub's shapes (they validate against octokit's payload
schemas: `push`, `pull_request`, `installation`, `installation_repositories`)."""

from __future__ import annotations

from typing import Any

from . import shapes
from .gitmerge import rev_list
from .state import Installation, Pull, Repository, User

ZERO_SHA = "0" * 40


def user(base: str, who: User) -> dict:
    return shapes.user(base, who.login, who.type)


def repository(base: str, repo: Repository, owner_type: str, *, push_event: bool = False) -> dict:
    """The repository as webhooks carry it (no `permissions`; push events use epoch ints)."""
    out = shapes.repository(base, repo, owner_type)
    out.pop("permissions", None)
    out.update(web_commit_signoff_required=False, custom_properties={}, allow_forking=True)
    if push_event:
        out.update(created_at=int(repo.created_at), pushed_at=int(repo.pushed_at),
                   stargazers=0, master_branch=repo.default_branch)  # fmt: skip
        if owner_type == "Organization":
            out["organization"] = repo.owner
    return out


def organization(base: str, login: str) -> dict:
    url = f"{base}/orgs/{login}"
    return {
        "login": login, "id": shapes.stable_id(login), "node_id": shapes.node_id("O_", login),
        "url": url, "repos_url": f"{url}/repos", "events_url": f"{url}/events",
        "hooks_url": f"{url}/hooks", "issues_url": f"{url}/issues",
        "members_url": f"{url}/members{{/member}}",
        "public_members_url": f"{url}/public_members{{/member}}",
        "avatar_url": f"{base}/avatars/{login}", "description": None,
    }  # fmt: skip


def repo_envelope(base: str, repo: Repository, owner_type: str, inst: Installation,
                  sender: User, *, push_event: bool = False) -> dict:  # fmt: skip
    """`repository`, `sender`, `installation` (and `organization`) of a repository event."""
    out: dict[str, Any] = {
        "repository": repository(base, repo, owner_type, push_event=push_event),
        "sender": user(base, sender),
        "installation": {"id": inst.id, "node_id": shapes.node_id("I_", inst.id)},
    }
    if owner_type == "Organization":
        out["organization"] = organization(base, repo.owner)
    return out


# -- push --------------------------------------------------------------------------------------
def _commit(base: str, repo: Repository, sha: str) -> dict:
    git = repo.git
    info = git.commit_info(sha)
    first = info.parents[0].decode() if info.parents else None
    changes = git.changed_paths(git.commit_tree(first) if first else None, info.tree.decode())
    author = shapes._person(info.author, info.author_time)
    committer = shapes._person(info.committer, info.commit_time)
    return {
        "id": sha,
        "tree_id": info.tree.decode(),
        "distinct": True,
        "message": info.message.decode("utf-8", "replace"),
        "timestamp": committer["date"],
        "url": f"{base}/{repo.full_name}/commit/{sha}",
        "author": {"name": author["name"], "email": author["email"]},
        "committer": {"name": committer["name"], "email": committer["email"]},
        "added": [p for s, p, _ in changes if s == "added"],
        "removed": [p for s, p, _ in changes if s == "removed"],
        "modified": [p for s, p, _ in changes if s == "modified"],
    }


def pushed_commits(repo: Repository, ref: str, before: str | None, after: str | None) -> list[str]:
    """What a ref update brings: new commits since `before`, or for a new branch the commits
    not on any other branch (oldest first, at most 2048 like GitHub)."""
    if after is None:
        return []
    if before is not None:
        exclude = [before]
    else:
        exclude = [sha for name, sha in repo.git.refs("refs/heads/").items() if name != ref]
    return rev_list(repo.git, after, exclude)[-2048:]


def push(base: str, repo: Repository, owner_type: str, inst: Installation, *, ref: str,
         before: str | None, after: str | None, forced: bool, pusher: User,
         commits: list[str]) -> dict:  # fmt: skip
    html = f"{base}/{repo.full_name}"
    if before is None:
        compare = f"{html}/compare/{ref.split('/', 2)[-1]}"
    else:
        compare = f"{html}/compare/{before[:12]}...{(after or ZERO_SHA)[:12]}"
    listed = [_commit(base, repo, sha) for sha in commits]
    head = None
    if after is not None:
        head = listed[-1] if listed and listed[-1]["id"] == after else _commit(base, repo, after)
    name, email = pusher.name or pusher.login, pusher.email
    return {
        "ref": ref,
        "before": before or ZERO_SHA,
        "after": after or ZERO_SHA,
        "created": before is None,
        "deleted": after is None,
        "forced": forced,
        "base_ref": None,
        "compare": compare,
        "commits": listed,
        "head_commit": head,
        "pusher": {"name": pusher.login if pusher.type == "User" else name, "email": email},
        **repo_envelope(base, repo, owner_type, inst, pusher, push_event=True),
    }


# -- pull_request ------------------------------------------------------------------------------
def pull_request_object(base: str, repo: Repository, pr: Pull, owner_type: str,
                        mergeable: bool | None) -> dict:  # fmt: skip
    out = shapes.pull(base, repo, pr, owner_type, full=True, mergeable=mergeable)
    for side in ("head", "base"):
        out[side]["repo"] = repository(base, repo, owner_type)
    return out


def pull_request(base: str, repo: Repository, pr: Pull, owner_type: str, inst: Installation,
                 *, action: str, sender: User, mergeable: bool | None,
                 extra: dict | None = None) -> dict:  # fmt: skip
    return {
        "action": action,
        "number": pr.number,
        **(extra or {}),
        "pull_request": pull_request_object(base, repo, pr, owner_type, mergeable),
        **repo_envelope(base, repo, owner_type, inst, sender),
    }


# -- installation ------------------------------------------------------------------------------
def repo_mini(repo: Repository) -> dict:
    return {"id": repo.id, "node_id": shapes.node_id("R_", repo.id), "name": repo.name,
            "full_name": repo.full_name, "private": repo.private}  # fmt: skip


def _installation_body(base: str, inst: Installation, app) -> dict:
    """The installation as webhooks show it (the REST shape without `client_id`)."""
    body = shapes.installation(base, inst, app)
    body.pop("client_id", None)
    return body


def installation(base: str, inst: Installation, app, *, action: str, sender: User,
                 repositories: list[Repository]) -> dict:  # fmt: skip
    return {
        "action": action,
        "installation": _installation_body(base, inst, app),
        "repositories": [repo_mini(r) for r in repositories],
        "sender": user(base, sender),
        **({"requester": None} if action in ("suspend", "unsuspend") else {}),
    }


def installation_repositories(base: str, inst: Installation, app, *, action: str,
                              sender: User, added: list[Repository],
                              removed: list[Repository]) -> dict:  # fmt: skip
    return {
        "action": action,
        "installation": _installation_body(base, inst, app),
        "repository_selection": "all" if inst.repositories is None else "selected",
        "repositories_added": [repo_mini(r) for r in added],
        "repositories_removed": [repo_mini(r) for r in removed],
        "requester": None,
        "sender": user(base, sender),
    }
