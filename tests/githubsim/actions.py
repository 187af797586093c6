"""The Python API for what people do on GitHub: push, delete a branch, open / edit / close /
reopen / merge pull requests, comment. Each sends the webhooks GitHub would, with the
person as `sender`. `as_user` names the person (created on first use); without it a push
acts as the user whose e-mail is the commit author's (default author → user `alice`)
and the other actions act as `alice`.

Errors GitHub would answer with (422, 405, 409) are raised as `ValueError(message)`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from . import branches, pullops
from .gitstore import MODE_FILE
from .people import git_identity
from .protocol import ApiError
from .state import Pull

if TYPE_CHECKING:
    from .sim import GitHubSim

DEFAULT_AUTHOR = ("Alice", "alice@example.com")
DEFAULT_PERSON = "alice"


def _plain_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            detail = "; ".join(e.get("message", "") for e in exc.errors or [] if "message" in e)
            raise ValueError(f"{exc.status} {exc.message}" + (f": {detail}" if detail else "")
                             ) from exc  # fmt: skip

    return wrapper


class ActionsAPI:
    """Mixin of `GitHubSim`."""

    def push(self: GitHubSim, repo: str, branch: str, files: dict[str, bytes | None], *,
             message: str = "Update files", author: tuple[str, str] | None = None,
             force: bool = False, parent: str | None = None, as_user: str | None = None,
             ) -> str:  # fmt: skip
        """Commit `files` (None deletes) on `branch` as a person and move the branch.

        The parent is the branch head (or the default branch head for a new branch); pass
        `parent` to build elsewhere — moving the branch to a non-descendant needs `force=True`.
        The author defaults to the acting user's identity (`as_user`) or Alice.
        """
        person = self.person(as_user, author or DEFAULT_AUTHOR)
        author = author or (git_identity(person) if as_user else DEFAULT_AUTHOR)
        r = self.repo(repo)
        ref = f"refs/heads/{branch}"
        current = r.git.ref(ref)
        base = parent or current or r.git.ref(f"refs/heads/{r.default_branch}")
        base_tree = r.git.commit_tree(base) if base else None
        edits = []
        for path, data in files.items():
            edits.append((path, MODE_FILE, None if data is None else r.git.add_blob(data)))
        tree = r.git.build_tree(base_tree, edits)
        now = int(self.clock())
        sha = r.git.make_commit(tree=tree, parents=[base] if base else [], message=message,
                                author=(*author, now), committer=(*author, now))  # fmt: skip
        if current and not force and not r.git.is_ancestor(current, sha):
            raise ValueError(f"push to {branch} is not a fast forward; pass force=True")
        branches.update_ref(self, r, ref, sha, person)
        return sha

    def delete_branch(self: GitHubSim, repo: str, branch: str, *, as_user: str | None = None
                      ) -> bool:  # fmt: skip
        """Delete a branch (`push` with `deleted: true`); a PR from it is closed."""
        r = self.repo(repo)
        person = self.person(as_user or DEFAULT_PERSON)
        return branches.update_ref(self, r, f"refs/heads/{branch}", None, person)

    @_plain_errors
    def open_pull(self: GitHubSim, repo: str, head: str, base: str | None = None, *,
                  title: str = "Update", body: str | None = None, draft: bool = False,
                  as_user: str | None = None) -> int:  # fmt: skip
        """Open a PR from branch `head` (default base: the default branch); its number."""
        r = self.repo(repo)
        person = self.person(as_user or DEFAULT_PERSON)
        pr = pullops.open_pull(self, r, person, head=head, base=base or r.default_branch,
                               title=title, body=body, draft=draft)  # fmt: skip
        return pr.number

    @_plain_errors
    def edit_pull(self: GitHubSim, repo: str, number: int, *, as_user: str | None = None,
                  **fields: object) -> None:  # fmt: skip
        """Change `title`, `body`, `base` (→ `edited`) or `state` like `PATCH pulls/{n}`."""
        r, pr = self._pull(repo, number)
        pullops.update(self, r, pr, self.person(as_user or DEFAULT_PERSON), dict(fields))

    def close_pull(self: GitHubSim, repo: str, number: int, *, as_user: str | None = None
                   ) -> None:  # fmt: skip
        self.edit_pull(repo, number, state="closed", as_user=as_user)

    def reopen_pull(self: GitHubSim, repo: str, number: int, *, as_user: str | None = None
                    ) -> None:  # fmt: skip
        self.edit_pull(repo, number, state="open", as_user=as_user)

    @_plain_errors
    def merge_pull(self: GitHubSim, repo: str, number: int, *, method: str = "merge",
                   sha: str | None = None, commit_title: str | None = None,
                   commit_message: str | None = None, as_user: str | None = None) -> str:  # fmt: skip
        """Merge like `PUT pulls/{n}/merge`; returns the merge (or squash / last rebased)
        commit, which the base branch now points at."""
        r, pr = self._pull(repo, number)
        return pullops.merge(self, r, pr, self.person(as_user or DEFAULT_PERSON), method=method,
                             sha=sha, title=commit_title, message=commit_message)  # fmt: skip

    def comment(self: GitHubSim, repo: str, number: int, body: str, *,
                as_user: str | None = None) -> int:  # fmt: skip
        """An issue comment on PR `number` by the person; returns the comment id."""
        _, pr = self._pull(repo, number)
        return pullops.comment(self, pr, self.person(as_user or DEFAULT_PERSON), body).id

    def _pull(self: GitHubSim, repo: str, number: int) -> tuple:
        r = self.repo(repo)
        pr: Pull | None = r.pulls.get(int(number))
        if pr is None:
            raise KeyError(f"no pull request #{number} in {repo}")
        return r, pr
