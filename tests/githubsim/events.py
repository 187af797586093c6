"""Which Apps hear about a state change, and what they are sent: builds each delivery's
payload at the moment of the change and hands it to the `WebhookSender`.

An installation receives a repository event when its App has a webhook URL, the
installation is not suspended, covers the repository and subscribes to the event
(`installation.events`). `installation` / `installation_repositories` events go to the
installation's App regardless of subscriptions (`installation_repositories` not while
suspended).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import payloads
from .state import App, Installation, Pull, Repository, User

if TYPE_CHECKING:
    from .sim import GitHubSim


def _targets(sim: GitHubSim, repo: Repository, event: str) -> list[tuple[App, Installation]]:
    out = []
    for inst in sorted(sim.installations.values(), key=lambda i: i.id):
        app = sim.apps.get(inst.app_id)
        if app is None or not app.webhook_url or inst.suspended_at is not None:
            continue
        if inst.covers(repo.full_name) and event in inst.events:
            out.append((app, inst))
    return out


def push(sim: GitHubSim, repo: Repository, ref: str, before: str | None, after: str | None,
         pusher: User) -> None:  # fmt: skip
    """`push` for a ref created (before None), moved, or deleted (after None)."""
    targets = _targets(sim, repo, "push")
    if not targets:
        return
    forced = bool(before and after and not repo.git.is_ancestor(before, after))
    commits = payloads.pushed_commits(repo, ref, before, after)
    owner_type = sim.account_type(repo.owner)
    for app, inst in targets:
        payload = payloads.push(sim.base_url, repo, owner_type, inst, ref=ref, before=before,
                                after=after, forced=forced, pusher=pusher, commits=commits)  # fmt: skip
        sim.hooks.enqueue(app, inst.id, "push", payload)


def pull_request(sim: GitHubSim, repo: Repository, pr: Pull, action: str, sender: User,
                 extra: dict | None = None) -> None:  # fmt: skip
    targets = _targets(sim, repo, "pull_request")
    if not targets:
        return
    owner_type = sim.account_type(repo.owner)
    can_merge = sim.mergeable(repo, pr)
    for app, inst in targets:
        payload = payloads.pull_request(sim.base_url, repo, pr, owner_type, inst, action=action,
                                        sender=sender, mergeable=can_merge, extra=extra)  # fmt: skip
        sim.hooks.enqueue(app, inst.id, "pull_request", payload)


def _covered(sim: GitHubSim, inst: Installation) -> list[Repository]:
    return sorted((r for r in sim.repos.values() if inst.covers(r.full_name)), key=lambda r: r.id)


def installation(sim: GitHubSim, inst: Installation, action: str, sender: User) -> None:
    """`installation` created / deleted / suspend / unsuspend."""
    app = sim.apps.get(inst.app_id)
    if app is None or not app.webhook_url:
        return
    unlisted = sim.all_repositories_unlisted and inst.repositories is None
    payload = payloads.installation(sim.base_url, inst, app, action=action, sender=sender,
                                    repositories=[] if unlisted else _covered(sim, inst))  # fmt: skip
    sim.hooks.enqueue(app, inst.id, "installation", payload)


def installation_repositories(sim: GitHubSim, inst: Installation, action: str, sender: User,
                              names: list[str]) -> None:  # fmt: skip
    """`installation_repositories` added / removed for the repositories named."""
    app = sim.apps.get(inst.app_id)
    if app is None or not app.webhook_url or inst.suspended_at is not None:
        return
    repos = [sim.repos[n.lower()] for n in names if n.lower() in sim.repos]
    if not repos:
        return
    added, removed = (repos, []) if action == "added" else ([], repos)
    payload = payloads.installation_repositories(sim.base_url, inst, app, action=action,
                                                 sender=sender, added=added, removed=removed)  # fmt: skip
    sim.hooks.enqueue(app, inst.id, "installation_repositories", payload)
