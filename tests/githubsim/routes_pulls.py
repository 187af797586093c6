"""Pull requests: create (with GitHub's 422s), list with filters, get, update, merge."""

from __future__ import annotations

from aiohttp import web

from . import pullops, shapes
from .credentials import CALLER
from .protocol import ApiError, json_response, not_found, paginate, read_object, validation_failed
from .routes_repos import base_url, repo_for
from .sim import sim_of
from .state import Pull, Repository


def _head_branch(repo: Repository, head: str) -> str | None:
    """`owner:branch` (or a bare branch) → branch name if it names this repository's owner."""
    owner, sep, branch = head.rpartition(":")
    if sep and owner.lower() != repo.owner.lower():
        return None
    return branch


def _pull(request: web.Request, repo: Repository) -> Pull:
    try:
        pr = repo.pulls.get(int(request.match_info["pull_number"]))
    except ValueError:
        pr = None
    if pr is None:
        raise not_found()
    return pr


def render(request: web.Request, repo: Repository, pr: Pull, *, full: bool) -> dict:
    sim = sim_of(request)
    owner_type = sim.account_type(repo.owner)
    mergeable = sim.mergeable(repo, pr) if full else None
    return shapes.pull(base_url(request), repo, pr, owner_type, full=full, mergeable=mergeable)


async def request_reviewers(request: web.Request) -> web.Response:
    """All or nothing, as on GitHub: one person or team without access refuses the lot."""
    _, repo = repo_for(request, "pull_requests", "write")
    pr = _pull(request, repo)
    body = await read_object(request)
    people, teams = body.get("reviewers", []), body.get("team_reviewers", [])
    for value in (people, teams):
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise validation_failed({"resource": "PullRequest", "field": "reviewers", "code": "invalid"})
    if any(login.lower() == pr.user.lower() for login in people):
        raise ApiError(422, "Review cannot be requested from pull request author.")
    if not all(repo.is_collaborator(p) for p in people) or not all(
        t.lower() in repo.teams for t in teams
    ):
        raise ApiError(
            422,
            "Reviews may only be requested from collaborators. One or more of the users or "
            f"teams you specified is not a collaborator of the {repo.full_name} repository.",
        )
    users = sim_of(request).users
    for login in people:
        if login.lower() not in map(str.lower, pr.requested_reviewers):
            pr.requested_reviewers.append(users[login.lower()].login)
    for slug in teams:
        if slug.lower() not in pr.requested_teams:
            pr.requested_teams.append(slug.lower())
    return json_response(render(request, repo, pr, full=False), status=201)


async def create_pull(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "pull_requests", "write")
    body = await read_object(request)
    title, head, base = body.get("title"), body.get("head"), body.get("base")
    for name, value in (("head", head), ("base", base), ("title", title)):
        if not isinstance(value, str) or not value:
            raise validation_failed(
                {"resource": "PullRequest", "field": name, "code": "missing_field"}
            )
    branch = _head_branch(repo, head)
    if branch is None:
        raise pullops.invalid("head")
    pr = pullops.open_pull(
        sim, repo, sim.actor(request[CALLER]), head=branch, base=base, title=title,
        body=body.get("body"), draft=bool(body.get("draft", False)),
        maintainer_can_modify=bool(body.get("maintainer_can_modify", False)),
    )  # fmt: skip
    headers = {"Location": f"{base_url(request)}/repos/{repo.full_name}/pulls/{pr.number}"}
    return json_response(render(request, repo, pr, full=True), status=201, headers=headers)


async def list_pulls(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "pull_requests", "read")
    state = request.query.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise validation_failed({"resource": "Issue", "field": "state", "code": "invalid"})
    head = request.query.get("head")
    head_branch = _head_branch(repo, head) if head else None
    base = request.query.get("base")
    direction = request.query.get("direction", "desc")
    pulls = []
    for pr in repo.pulls.values():
        sim.sync_pull(repo, pr)
        if state != "all" and pr.state != state:
            continue
        if head and pr.head != head_branch:
            continue
        if base and pr.base != base:
            continue
        pulls.append(pr)
    pulls.sort(key=lambda p: p.number, reverse=direction != "asc")
    page, headers = paginate(request, pulls)
    return json_response([render(request, repo, p, full=False) for p in page], headers=headers)


async def get_pull(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "pull_requests", "read")
    pr = _pull(request, repo)
    sim.sync_pull(repo, pr)
    return json_response(render(request, repo, pr, full=True))


async def update_pull(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "pull_requests", "write")
    pr = _pull(request, repo)
    body = await read_object(request)
    pullops.update(sim, repo, pr, sim.actor(request[CALLER]), body)
    return json_response(render(request, repo, pr, full=True))


async def merge_pull(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "write")
    pr = _pull(request, repo)
    body = await read_object(request, allow_empty=True)
    for key in ("commit_title", "commit_message", "sha", "merge_method"):
        if key in body and not isinstance(body[key], str):
            raise validation_failed({"resource": "PullRequest", "field": key, "code": "invalid"})
    caller = request[CALLER]
    sha = pullops.merge(sim, repo, pr, sim.actor(caller), method=body.get("merge_method", "merge"),
                        sha=body.get("sha"), title=body.get("commit_title"),
                        message=body.get("commit_message"), caller=caller)  # fmt: skip
    return json_response(
        {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
    )


ROUTES = [
    ("GET", "/repos/{owner}/{repo}/pulls", list_pulls),
    ("POST", "/repos/{owner}/{repo}/pulls", create_pull),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", get_pull),
    ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", update_pull),
    ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", merge_pull),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", request_reviewers),
]
