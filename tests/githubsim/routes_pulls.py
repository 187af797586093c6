"""Pull requests: create (with GitHub's 422s), list with filters, get, update."""

from __future__ import annotations

from aiohttp import web

from . import shapes
from .credentials import CALLER
from .protocol import ApiError, json_response, not_found, paginate, read_object, validation_failed
from .routes_repos import base_url, repo_for
from .sim import sim_of
from .state import Pull, Repository


def _custom(message: str) -> ApiError:
    return validation_failed({"resource": "PullRequest", "code": "custom", "message": message})


def _invalid(field: str) -> ApiError:
    return validation_failed({"resource": "PullRequest", "field": field, "code": "invalid"})


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
    owner_type = sim_of(request).account_type(repo.owner)
    return shapes.pull(base_url(request), repo, pr, owner_type, full=full)


async def create_pull(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "pull_requests", "write")
    body = await read_object(request)
    title, head, base = body.get("title"), body.get("head"), body.get("base")
    if not isinstance(head, str) or not head:
        raise validation_failed(
            {"resource": "PullRequest", "field": "head", "code": "missing_field"}
        )
    if not isinstance(base, str) or not base:
        raise validation_failed(
            {"resource": "PullRequest", "field": "base", "code": "missing_field"}
        )
    if not isinstance(title, str) or not title:
        raise validation_failed(
            {"resource": "PullRequest", "field": "title", "code": "missing_field"}
        )
    branch = _head_branch(repo, head)
    head_sha = repo.git.ref(f"refs/heads/{branch}") if branch else None
    if head_sha is None:
        raise _invalid("head")
    base_sha = repo.git.ref(f"refs/heads/{base}")
    if base_sha is None:
        raise _invalid("base")
    for pr in repo.pulls.values():
        sim.sync_pull(repo, pr)
        if pr.state == "open" and pr.head == branch and pr.base == base:
            raise _custom(f"A pull request already exists for {repo.owner}:{branch}.")
    if repo.git.is_ancestor(head_sha, base_sha):
        raise _custom(f"No commits between {base} and {branch}")
    login, kind = sim.bot_login(request[CALLER])
    now = sim.clock()
    number = repo.next_number
    repo.next_number += 1
    pr = Pull(
        number=number, id=sim.next_id(), title=title, body=body.get("body"), head=branch,
        base=base, head_sha=head_sha, base_sha=base_sha, user=login, user_type=kind,
        draft=bool(body.get("draft", False)), created_at=now, updated_at=now,
        maintainer_can_modify=bool(body.get("maintainer_can_modify", False)),
    )  # fmt: skip
    repo.pulls[number] = pr
    headers = {"Location": f"{base_url(request)}/repos/{repo.full_name}/pulls/{number}"}
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
    sim.sync_pull(repo, pr)
    if "title" in body:
        if not isinstance(body["title"], str) or not body["title"]:
            raise _invalid("title")
        pr.title = body["title"]
    if "body" in body:
        pr.body = body["body"]
    if "base" in body:
        if repo.git.ref(f"refs/heads/{body['base']}") is None:
            raise _invalid("base")
        pr.base = body["base"]
    if "maintainer_can_modify" in body:
        pr.maintainer_can_modify = bool(body["maintainer_can_modify"])
    if "state" in body:
        state = body["state"]
        if state not in ("open", "closed"):
            raise _invalid("state")
        if state == "open" and pr.state == "closed":
            if repo.git.ref(f"refs/heads/{pr.head}") is None:
                raise _custom("Cannot reopen this pull request: the head branch was deleted.")
            for other in repo.pulls.values():
                if other is not pr and other.state == "open" and other.head == pr.head:
                    raise _custom(f"A pull request already exists for {repo.owner}:{pr.head}.")
            pr.closed_at = None
        elif state == "closed" and pr.state == "open":
            pr.closed_at = sim.clock()
        pr.state = state
    pr.updated_at = sim.clock()
    return json_response(render(request, repo, pr, full=True))


ROUTES = [
    ("GET", "/repos/{owner}/{repo}/pulls", list_pulls),
    ("POST", "/repos/{owner}/{repo}/pulls", create_pull),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", get_pull),
    ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", update_pull),
]
