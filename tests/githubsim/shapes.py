"""JSON representations in GitHub's shapes (fields required by the OpenAPI subset are filled)."""

from __future__ import annotations

import base64
import time
import zlib
from typing import Any

from dulwich.objects import Commit

from .state import App, CheckRun, Comment, Installation, Label, Pull, Repository


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def node_id(kind: str, ident: Any) -> str:
    return base64.b64encode(f"{kind}{ident}".encode()).decode()


def stable_id(text: str) -> int:
    """A deterministic numeric id for names (accounts, users) the simulator never registered."""
    return 1000 + zlib.crc32(text.lower().encode()) % 10_000_000


def user(base: str, login: str, kind: str = "User") -> dict:
    url = f"{base}/users/{login}"
    return {
        "login": login,
        "id": stable_id(login),
        "node_id": node_id("U_", login),
        "avatar_url": f"{base}/avatars/{login}",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{base}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": kind,
        "site_admin": False,
    }


def release(base: str, repo: Repository, r: Any) -> dict:
    url = f"{base}/repos/{repo.full_name}/releases/{r.id}"
    html = f"{base}/{repo.full_name}/releases/tag/{r.tag_name}"
    return {
        "url": url,
        "html_url": html,
        "assets_url": f"{url}/assets",
        "upload_url": f"{base}/repos/{repo.full_name}/releases/{r.id}/assets{{?name,label}}",
        "tarball_url": f"{base}/repos/{repo.full_name}/tarball/{r.tag_name}",
        "zipball_url": f"{base}/repos/{repo.full_name}/zipball/{r.tag_name}",
        "id": r.id,
        "node_id": node_id("RE_", r.id),
        "tag_name": r.tag_name,
        "target_commitish": r.target_commitish,
        "name": r.name,
        "body": r.body,
        "draft": r.draft,
        "prerelease": r.prerelease,
        "created_at": iso(r.created_at),
        "published_at": None if r.draft else iso(r.created_at),
        "author": user(base, r.author, "User"),
        "assets": [],
    }


def team(base: str, repo: Repository, slug: str) -> dict:
    """A team of the repository's owner (an organisation), as a PR's requested team."""
    url = f"{base}/orgs/{repo.owner}/teams/{slug}"
    return {
        "id": stable_id(f"team:{repo.owner}/{slug}"),
        "node_id": node_id("T_", f"{repo.owner}/{slug}"),
        "url": url,
        "html_url": f"{base}/orgs/{repo.owner}/teams/{slug}",
        "name": slug,
        "slug": slug,
        "description": None,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "push",
        "members_url": f"{url}/members{{/member}}",
        "repositories_url": f"{url}/repos",
        "parent": None,
        "type": "organization",
    }


def repository(base: str, repo: Repository, owner_type: str, *, full: bool = False,
               push: bool = True) -> dict:  # fmt: skip
    url = f"{base}/repos/{repo.full_name}"
    out: dict[str, Any] = {
        "id": repo.id,
        "node_id": node_id("R_", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": user(base, repo.owner, owner_type),
        "private": repo.private,
        "visibility": "private" if repo.private else "public",
        "html_url": f"{base}/{repo.full_name}",
        "description": repo.description,
        "fork": False,
        "url": url,
        "homepage": None,
        "language": None,
        "mirror_url": None,
        "license": None,
        "default_branch": repo.default_branch,
        "archived": repo.archived,
        "disabled": False,
        "forks": 0,
        "forks_count": 0,
        "open_issues": sum(p.state == "open" for p in repo.pulls.values()),
        "watchers": 0,
        "watchers_count": 0,
        "stargazers_count": 0,
        "size": 1,
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "is_template": False,
        "topics": [],
        "pushed_at": iso(repo.pushed_at),
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.pushed_at),
        "permissions": {
            "admin": False,
            "maintain": False,
            "push": push,
            "triage": push,
            "pull": True,
        },
        "clone_url": f"{base}/{repo.full_name}.git",
        "git_url": f"git://127.0.0.1/{repo.full_name}.git",
        "ssh_url": f"git@127.0.0.1:{repo.full_name}.git",
        "svn_url": f"{base}/{repo.full_name}",
    }
    out["open_issues_count"] = out["open_issues"]
    for key, suffix in _REPO_URLS.items():
        out[key] = url + suffix
    if full:
        out["network_count"] = 0
        out["subscribers_count"] = 0
    return out


_REPO_URLS = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def app(base: str, a: App) -> dict:
    return {
        "id": a.id,
        "slug": a.slug,
        "node_id": node_id("A_", a.id),
        "client_id": f"Iv1.sim{a.id:010d}",
        "owner": user(base, a.owner, "Organization"),
        "name": a.name,
        "description": None,
        "external_url": f"{base}/apps/{a.slug}",
        "html_url": f"{base}/apps/{a.slug}",
        "created_at": iso(a.created_at),
        "updated_at": iso(a.created_at),
        "permissions": dict(a.permissions),
        "events": list(a.events),
        "installations_count": 0,
    }


def installation(base: str, inst: Installation, a: App) -> dict:
    return {
        "id": inst.id,
        "account": user(base, inst.account, inst.account_type),
        "repository_selection": "all" if inst.repositories is None else "selected",
        "access_tokens_url": f"{base}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{base}/installation/repositories",
        "html_url": f"{base}/organizations/{inst.account}/settings/installations/{inst.id}",
        "app_id": inst.app_id,
        "app_slug": a.slug,
        "client_id": f"Iv1.sim{a.id:010d}",
        "target_id": stable_id(inst.account),
        "target_type": inst.account_type,
        "permissions": dict(inst.permissions),
        "events": list(inst.events),
        "created_at": iso(inst.created_at),
        "updated_at": iso(inst.created_at),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": user(base, inst.suspended_by) if inst.suspended_by else None,
        "suspended_at": iso(inst.suspended_at),
    }


def git_ref(base: str, repo: Repository, name: str, sha: str) -> dict:
    url = f"{base}/repos/{repo.full_name}"
    return {
        "ref": name,
        "node_id": node_id("REF_", f"{repo.id}:{name}"),
        "url": f"{url}/git/{name}",
        "object": {"sha": sha, "type": "commit", "url": f"{url}/git/commits/{sha}"},
    }


def git_tree(base: str, repo: Repository, sha: str, entries: list, truncated: bool) -> dict:
    url = f"{base}/repos/{repo.full_name}/git"
    tree = []
    for e in entries:
        item = {"path": e.path, "mode": e.mode, "type": e.type, "sha": e.sha}
        if e.type == "blob":
            item["size"] = e.size
            item["url"] = f"{url}/blobs/{e.sha}"
        elif e.type == "tree":
            item["url"] = f"{url}/trees/{e.sha}"
        tree.append(item)
    return {"sha": sha, "url": f"{url}/trees/{sha}", "tree": tree, "truncated": truncated}


def _person(raw: bytes, ts: int) -> dict:
    text = raw.decode("utf-8", "replace")
    name, _, email = text.partition(" <")
    return {"name": name, "email": email.rstrip(">"), "date": iso(ts)}


def _verification() -> dict:
    return {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
            "verified_at": None}  # fmt: skip


def git_commit(base: str, repo: Repository, sha: str, commit: Commit) -> dict:
    url = f"{base}/repos/{repo.full_name}"
    return {
        "sha": sha,
        "node_id": node_id("C_", sha),
        "url": f"{url}/git/commits/{sha}",
        "html_url": f"{base}/{repo.full_name}/commit/{sha}",
        "author": _person(commit.author, commit.author_time),
        "committer": _person(commit.committer, commit.commit_time),
        "tree": {"sha": commit.tree.decode(), "url": f"{url}/git/trees/{commit.tree.decode()}"},
        "message": commit.message.decode("utf-8", "replace"),
        "parents": [
            {
                "sha": p.decode(),
                "url": f"{url}/git/commits/{p.decode()}",
                "html_url": f"{base}/{repo.full_name}/commit/{p.decode()}",
            }  # fmt: skip
            for p in commit.parents
        ],
        "verification": _verification(),
    }


def rest_commit(base: str, repo: Repository, sha: str, commit: Commit, files: list[dict]) -> dict:
    url = f"{base}/repos/{repo.full_name}"
    git = git_commit(base, repo, sha, commit)
    return {
        "url": f"{url}/commits/{sha}",
        "sha": sha,
        "node_id": git["node_id"],
        "html_url": git["html_url"],
        "comments_url": f"{url}/commits/{sha}/comments",
        "commit": {
            "url": git["url"],
            "author": git["author"],
            "committer": git["committer"],
            "message": git["message"],
            "comment_count": 0,
            "tree": git["tree"],
            "verification": git["verification"],
        },
        "author": None,
        "committer": None,
        "parents": [
            {"sha": p["sha"], "url": f"{url}/commits/{p['sha']}", "html_url": p["html_url"]}
            for p in git["parents"]
        ],  # fmt: skip
        "stats": {"additions": 0, "deletions": 0, "total": 0},
        "files": files,
    }


def diff_entry(base: str, repo: Repository, sha: str, path: str, status: str,
               blob_sha: str | None) -> dict:  # fmt: skip
    url = f"{base}/repos/{repo.full_name}"
    return {
        "sha": blob_sha,
        "filename": path,
        "status": status,
        "additions": 0,
        "deletions": 0,
        "changes": 0,
        "blob_url": f"{base}/{repo.full_name}/blob/{sha}/{path}",
        "raw_url": f"{base}/{repo.full_name}/raw/{sha}/{path}",
        "contents_url": f"{url}/contents/{path}?ref={sha}",
    }


def content_entry(base: str, repo: Repository, ref: str, path: str, kind: str, sha: str,
                  size: int) -> dict:  # fmt: skip
    url = f"{base}/repos/{repo.full_name}"
    git_kind = "trees" if kind == "dir" else "blobs"
    self_url = f"{url}/contents/{path}?ref={ref}"
    html = f"{base}/{repo.full_name}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{path}"
    git_url = f"{url}/git/{git_kind}/{sha}"
    return {
        "type": kind,
        "size": size,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "url": self_url,
        "git_url": git_url,
        "html_url": html,
        "download_url": None if kind == "dir" else f"{base}/_raw/{repo.full_name}/{ref}/{path}",
        "_links": {"self": self_url, "git": git_url, "html": html},
    }


def blob(base: str, repo: Repository, sha: str, data: bytes) -> dict:
    return {
        "sha": sha,
        "node_id": node_id("B_", sha),
        "url": f"{base}/repos/{repo.full_name}/git/blobs/{sha}",
        "size": len(data),
        "content": base64.encodebytes(data).decode(),
        "encoding": "base64",
    }


def label(base: str, repo: Repository, lab: Label) -> dict:
    return {
        "id": lab.id,
        "node_id": node_id("LA_", lab.id),
        "url": f"{base}/repos/{repo.full_name}/labels/{lab.name}",
        "name": lab.name,
        "description": lab.description,
        "color": lab.color,
        "default": lab.default,
    }


def _branch_side(base: str, repo: Repository, owner_type: str, ref: str, sha: str) -> dict:
    return {
        "label": f"{repo.owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user(base, repo.owner, owner_type),
        "repo": repository(base, repo, owner_type),
    }


def pull(base: str, repo: Repository, pr: Pull, owner_type: str, *, full: bool,
         mergeable: bool | None = None) -> dict:  # fmt: skip
    url = f"{base}/repos/{repo.full_name}"
    html = f"{base}/{repo.full_name}/pull/{pr.number}"
    issue_url = f"{url}/issues/{pr.number}"
    out: dict[str, Any] = {
        "url": f"{url}/pulls/{pr.number}",
        "id": pr.id,
        "node_id": node_id("PR_", pr.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue_url,
        "commits_url": f"{url}/pulls/{pr.number}/commits",
        "review_comments_url": f"{url}/pulls/{pr.number}/comments",
        "review_comment_url": f"{url}/pulls/comments{{/number}}",
        "comments_url": f"{issue_url}/comments",
        "statuses_url": f"{url}/statuses/{pr.head_sha}",
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": user(base, pr.user, pr.user_type),
        "body": pr.body,
        "labels": [label(base, repo, repo.labels[n.lower()]) for n in pr.labels],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": iso(pr.created_at),
        "updated_at": iso(pr.updated_at),
        "closed_at": iso(pr.closed_at),
        "merged_at": iso(pr.merged_at),
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": user(base, pr.assignees[0], "User") if pr.assignees else None,
        "assignees": [user(base, login, "User") for login in pr.assignees],
        "requested_reviewers": [user(base, login, "User") for login in pr.requested_reviewers],
        "requested_teams": [team(base, repo, slug) for slug in pr.requested_teams],
        "head": _branch_side(base, repo, owner_type, pr.head, pr.head_sha),
        "base": _branch_side(base, repo, owner_type, pr.base, pr.base_sha),
        "_links": {
            key: {"href": href}
            for key, href in {
                "self": f"{url}/pulls/{pr.number}",
                "html": html,
                "issue": issue_url,
                "comments": f"{issue_url}/comments",
                "review_comments": f"{url}/pulls/{pr.number}/comments",
                "review_comment": f"{url}/pulls/comments{{/number}}",
                "commits": f"{url}/pulls/{pr.number}/commits",
                "statuses": f"{url}/statuses/{pr.head_sha}",
            }.items()
        },
        "author_association": "NONE",
        "auto_merge": None,
        "draft": pr.draft,
    }
    if full:
        by = pr.merged_by
        out.update(
            merged=pr.merged,
            mergeable=mergeable,
            rebaseable=mergeable,
            mergeable_state={True: "clean", False: "dirty"}.get(mergeable, "unknown"),
            merged_by=user(base, by.login, by.type) if by is not None else None,
            comments=len(pr.comments),
            review_comments=0,
            maintainer_can_modify=pr.maintainer_can_modify,
            commits=1,
            additions=0,
            deletions=0,
            changed_files=0,
        )
    return out


def issue_for_pull(base: str, repo: Repository, pr: Pull) -> dict:
    url = f"{base}/repos/{repo.full_name}"
    issue_url = f"{url}/issues/{pr.number}"
    return {
        "id": pr.id,
        "node_id": node_id("I_", pr.id),
        "url": issue_url,
        "repository_url": url,
        "labels_url": f"{issue_url}/labels{{/name}}",
        "comments_url": f"{issue_url}/comments",
        "events_url": f"{issue_url}/events",
        "html_url": f"{base}/{repo.full_name}/pull/{pr.number}",
        "number": pr.number,
        "state": pr.state,
        "state_reason": None,
        "title": pr.title,
        "body": pr.body,
        "user": user(base, pr.user, pr.user_type),
        "labels": [label(base, repo, repo.labels[n.lower()]) for n in pr.labels],
        "assignee": user(base, pr.assignees[0], "User") if pr.assignees else None,
        "assignees": [user(base, login, "User") for login in pr.assignees],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": len(pr.comments),
        "pull_request": {
            "url": f"{url}/pulls/{pr.number}",
            "html_url": f"{base}/{repo.full_name}/pull/{pr.number}",
            "diff_url": f"{base}/{repo.full_name}/pull/{pr.number}.diff",
            "patch_url": f"{base}/{repo.full_name}/pull/{pr.number}.patch",
            "merged_at": iso(pr.merged_at),
        },
        "closed_at": iso(pr.closed_at),
        "created_at": iso(pr.created_at),
        "updated_at": iso(pr.updated_at),
        "author_association": "NONE",
        "draft": pr.draft,
    }


def comment(base: str, repo: Repository, number: int, c: Comment, user_type: str) -> dict:
    url = f"{base}/repos/{repo.full_name}"
    return {
        "id": c.id,
        "node_id": node_id("IC_", c.id),
        "url": f"{url}/issues/comments/{c.id}",
        "html_url": f"{base}/{repo.full_name}/pull/{number}#issuecomment-{c.id}",
        "issue_url": f"{url}/issues/{number}",
        "body": c.body,
        "user": user(base, c.user, user_type),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.created_at),
        "author_association": "NONE",
    }


def check_run(base: str, repo: Repository, run: CheckRun, a: App | None) -> dict:
    url = f"{base}/repos/{repo.full_name}/check-runs/{run.id}"
    return {
        "id": run.id,
        "node_id": node_id("CR_", run.id),
        "head_sha": run.head_sha,
        "name": run.name,
        "url": url,
        "html_url": f"{base}/{repo.full_name}/runs/{run.id}",
        "details_url": run.details_url,
        "external_id": run.external_id,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "output": {
            "title": run.output.get("title"),
            "summary": run.output.get("summary"),
            "text": run.output.get("text"),
            "annotations_count": len(run.annotations),
            "annotations_url": f"{url}/annotations",
        },
        "check_suite": {"id": run.id},
        "app": app(base, a) if a is not None else None,
        "pull_requests": [],
    }


def rate_limit(limit: int, remaining: int, reset: int, used: int) -> dict:
    core = {
        "limit": limit,
        "remaining": remaining,
        "reset": reset,
        "used": used,
        "resource": "core",
    }
    other = {"limit": 30, "remaining": 30, "reset": reset, "used": 0, "resource": "search"}
    return {"resources": {"core": core, "search": other}, "rate": core}


def root(base: str) -> dict:
    keys = [
        "current_user_url", "current_user_authorizations_html_url", "authorizations_url",
        "code_search_url", "commit_search_url", "emails_url", "emojis_url", "events_url",
        "feeds_url", "followers_url", "following_url", "gists_url", "hub_url",
        "issue_search_url", "issues_url", "keys_url", "label_search_url", "notifications_url",
        "organization_url", "organization_repositories_url", "organization_teams_url",
        "public_gists_url", "rate_limit_url", "repository_url", "repository_search_url",
        "current_user_repositories_url", "starred_url", "starred_gists_url", "user_url",
        "user_organizations_url", "user_repositories_url", "user_search_url",
    ]  # fmt: skip
    return {key: f"{base}/{key.removesuffix('_url')}" for key in keys}
