"""Pull-request operations shared by the REST routes, the Python API and the admin API:
open, update (edit / close / reopen), comment, merge — each sends GitHub's webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import branches, events, gitmerge
from .credentials import Caller
from .people import git_identity
from .protocol import ApiError, validation_failed
from .state import Comment, Pull, Repository, User

if TYPE_CHECKING:
    from .sim import GitHubSim

MERGE_METHODS = ("merge", "squash", "rebase")
NOT_MERGEABLE = "Pull Request is not mergeable"
HEAD_MODIFIED = "Head branch was modified. Review and try the merge again."
GITHUB_COMMITTER = ("GitHub", "noreply@github.com")


def custom(message: str) -> ApiError:
    return validation_failed({"resource": "PullRequest", "code": "custom", "message": message})


def invalid(field: str) -> ApiError:
    return validation_failed({"resource": "PullRequest", "field": field, "code": "invalid"})


def open_pull(sim: GitHubSim, repo: Repository, actor: User, *, head: str, base: str, title: str,
              body: str | None = None, draft: bool = False,
              maintainer_can_modify: bool = False) -> Pull:  # fmt: skip
    """Open a PR from branch `head` into `base` (GitHub's 422s) and send `opened`."""
    head_sha = repo.git.ref(f"refs/heads/{head}")
    if head_sha is None:
        raise invalid("head")
    base_sha = repo.git.ref(f"refs/heads/{base}")
    if base_sha is None:
        raise invalid("base")
    for pr in repo.pulls.values():
        sim.sync_pull(repo, pr)
        if pr.state == "open" and pr.head == head and pr.base == base:
            raise custom(f"A pull request already exists for {repo.owner}:{head}.")
    if repo.git.is_ancestor(head_sha, base_sha):
        raise custom(f"No commits between {base} and {head}")
    now = sim.clock()
    number = repo.next_number
    repo.next_number += 1
    pr = Pull(
        number=number, id=sim.next_id(), title=title, body=body, head=head, base=base,
        head_sha=head_sha, base_sha=base_sha, user=actor.login, user_type=actor.type,
        draft=draft, created_at=now, updated_at=now, maintainer_can_modify=maintainer_can_modify,
    )  # fmt: skip
    repo.pulls[number] = pr
    events.pull_request(sim, repo, pr, "opened", actor)
    return pr


def update(sim: GitHubSim, repo: Repository, pr: Pull, actor: User, fields: dict) -> None:
    """PATCH semantics: `title`, `body`, `base`, `maintainer_can_modify`, `state`.

    Sends `edited` (with `changes`) for title/body/base, then `closed` or `reopened`."""
    sim.sync_pull(repo, pr)
    changes: dict = {}
    if "title" in fields:
        if not isinstance(fields["title"], str) or not fields["title"]:
            raise invalid("title")
        if fields["title"] != pr.title:
            changes["title"] = {"from": pr.title}
    if "base" in fields and fields["base"] != pr.base:
        base_sha = repo.git.ref(f"refs/heads/{fields['base']}")
        if base_sha is None:
            raise invalid("base")
        changes["base"] = {"ref": {"from": pr.base}, "sha": {"from": pr.base_sha}}
    state = fields.get("state", pr.state)
    if state not in ("open", "closed"):
        raise invalid("state")
    if state == "open" and pr.state == "closed":
        _check_reopen(sim, repo, pr)
    if "body" in fields and fields["body"] != pr.body:
        changes["body"] = {"from": pr.body or ""}
    pr.title = fields.get("title", pr.title)
    pr.body = fields.get("body", pr.body)
    if "base" in changes:
        pr.base, pr.base_sha = fields["base"], repo.git.ref(f"refs/heads/{fields['base']}")
    if "maintainer_can_modify" in fields:
        pr.maintainer_can_modify = bool(fields["maintainer_can_modify"])
    pr.updated_at = sim.clock()
    if changes:
        events.pull_request(sim, repo, pr, "edited", actor, {"changes": changes})
    if state == "closed" and pr.state == "open":
        branches.close(sim, repo, pr, actor)
    elif state == "open" and pr.state == "closed":
        pr.state, pr.closed_at = "open", None
        events.pull_request(sim, repo, pr, "reopened", actor)


def _check_reopen(sim: GitHubSim, repo: Repository, pr: Pull) -> None:
    if pr.merged:
        raise custom("Cannot reopen a merged pull request.")
    if repo.git.ref(f"refs/heads/{pr.head}") is None:
        raise custom("Cannot reopen this pull request: the head branch was deleted.")
    for other in repo.pulls.values():
        if other is not pr and other.state == "open" and other.head == pr.head:
            raise custom(f"A pull request already exists for {repo.owner}:{pr.head}.")


def comment(sim: GitHubSim, pr: Pull, actor: User, body: str) -> Comment:
    """An issue comment on the PR (no webhook: the simulator sends no `issue_comment`)."""
    c = Comment(id=sim.next_id(), body=body, user=actor.login, created_at=sim.clock(),
                user_type=actor.type)  # fmt: skip
    pr.comments.append(c)
    pr.updated_at = c.created_at
    return c


def merge(sim: GitHubSim, repo: Repository, pr: Pull, actor: User, *, method: str = "merge",
          sha: str | None = None, title: str | None = None, message: str | None = None,
          caller: Caller | None = None) -> str:  # fmt: skip
    """Merge `pr` with GitHub's methods, move its base, send `push` + `closed` (merged)."""
    sim.sync_pull(repo, pr)
    if method not in MERGE_METHODS:
        raise validation_failed({"resource": "PullRequest", "field": "merge_method",
                                 "code": "invalid"})  # fmt: skip
    if pr.state != "open":
        raise ApiError(405, NOT_MERGEABLE)
    if sha is not None and sha != pr.head_sha:
        raise ApiError(409, HEAD_MODIFIED)
    git, base_sha = repo.git, repo.git.ref(f"refs/heads/{pr.base}")
    if base_sha is None:
        raise ApiError(405, NOT_MERGEABLE)
    now = int(sim.clock())
    author, committer = (*git_identity(actor), now), (*GITHUB_COMMITTER, now)
    try:
        if method == "merge":
            text = _message(title or f"Merge pull request #{pr.number} from "
                            f"{repo.owner}/{pr.head}", message if message is not None else pr.title)  # fmt: skip
            new = gitmerge.merge_commit(git, base_sha, pr.head_sha, text, author, committer)
        elif method == "squash":
            listed = "\n\n".join(f"* {m.strip()}" for m in
                                 gitmerge.commit_messages(git, base_sha, pr.head_sha))  # fmt: skip
            text = _message(title or f"{pr.title} (#{pr.number})",
                            message if message is not None else listed)  # fmt: skip
            new = gitmerge.squash_commit(git, base_sha, pr.head_sha, text, author, committer)
        else:
            new = gitmerge.rebase_commits(git, base_sha, pr.head_sha, committer)
    except gitmerge.MergeConflict as exc:
        raise ApiError(405, NOT_MERGEABLE) from exc
    if caller is not None:
        sim.require_workflow_permission(
            caller, repo, git.commit_tree(base_sha), git.commit_tree(new)
        )
    pr.state, pr.closed_at, pr.updated_at = "closed", now, now
    pr.merged_at, pr.merged_by, pr.merge_commit_sha = now, actor, new
    branches.update_ref(sim, repo, f"refs/heads/{pr.base}", new, actor)
    events.pull_request(sim, repo, pr, "closed", actor)
    return new


def _message(title: str, body: str) -> str:
    return f"{title}\n\n{body}" if body else title
