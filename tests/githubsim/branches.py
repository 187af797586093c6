"""Every ref change the simulator makes on behalf of someone: move the ref, send `push`, and
let pull requests follow their branches like on GitHub:

* the head branch moves → `pull_request synchronize` (`before`/`after`);
* the head branch is deleted → the PR is closed (`pull_request closed`, not merged);
* the base branch moves so that it contains the PR's head (someone pushed the PR's commits
  to the base by hand) → the PR is marked merged (`closed` with `merged: true`, merge
  commit = the head SHA, merged by the pusher);
* the base branch is deleted → the PR is closed.

Low-level `GitRepo.set_ref` calls bypass all of this (no webhooks; PRs catch up lazily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import events
from .state import Pull, Repository, User

if TYPE_CHECKING:
    from .sim import GitHubSim

HEADS = "refs/heads/"


def update_ref(sim: GitHubSim, repo: Repository, ref: str, new: str | None, actor: User) -> bool:
    """Point `ref` at `new` (None deletes it); False when nothing changed."""
    before = repo.git.ref(ref)
    if new == before:
        return False
    if new is None:
        repo.git.delete_ref(ref)
    else:
        repo.git.set_ref(ref, new)
    repo.pushed_at = sim.clock()
    events.push(sim, repo, ref, before, new, actor)
    if ref.startswith(HEADS):
        _pulls_follow(sim, repo, ref[len(HEADS) :], before, new, actor)
    return True


def close(sim: GitHubSim, repo: Repository, pr: Pull, actor: User, *, merged_sha: str | None = None
          ) -> None:  # fmt: skip
    """Close `pr` (as merged when `merged_sha` is given) and send `pull_request closed`."""
    now = sim.clock()
    pr.state, pr.closed_at, pr.updated_at = "closed", now, now
    if merged_sha is not None:
        pr.merged_at, pr.merged_by, pr.merge_commit_sha = now, actor, merged_sha
    events.pull_request(sim, repo, pr, "closed", actor)


def _pulls_follow(sim: GitHubSim, repo: Repository, branch: str, before: str | None,
                  after: str | None, actor: User) -> None:  # fmt: skip
    for pr in sorted(repo.pulls.values(), key=lambda p: p.number):
        if pr.state != "open":
            continue
        if pr.head == branch:
            if after is None:
                close(sim, repo, pr, actor)
                continue
            previous, pr.head_sha, pr.updated_at = pr.head_sha, after, sim.clock()
            extra = {"before": before or previous, "after": after}
            events.pull_request(sim, repo, pr, "synchronize", actor, extra)
        elif pr.base == branch:
            if after is None:
                close(sim, repo, pr, actor)
                continue
            pr.base_sha = after
            head = repo.git.ref(HEADS + pr.head) or pr.head_sha
            if repo.git.is_ancestor(head, after):
                close(sim, repo, pr, actor, merged_sha=head)
