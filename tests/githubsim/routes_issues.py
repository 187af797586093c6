"""Issue-side routes used on pull requests: labels, comments, the issues list; repo labels."""

from __future__ import annotations

import re

from aiohttp import web

from . import pullops, shapes
from .credentials import CALLER
from .protocol import (
    ApiError,
    json_response,
    not_accessible,
    not_found,
    paginate,
    read_json,
    read_object,
    validation_failed,
)
from .routes_repos import base_url, repo_for
from .sim import sim_of
from .state import Pull, Repository, allows

_COLOR = re.compile(r"^[0-9a-fA-F]{6}$")


def _writable_issue(request: web.Request) -> tuple[Repository, Pull]:
    """Labels/comments on a PR need `issues: write` or `pull_requests: write`."""
    _, repo = repo_for(request)
    perms = request[CALLER].token.permissions
    if not (allows(perms, "issues", "write") or allows(perms, "pull_requests", "write")):
        raise not_accessible()
    return repo, _issue(request, repo)


def _readable_issue(request: web.Request) -> tuple[Repository, Pull]:
    _, repo = repo_for(request)
    perms = request[CALLER].token.permissions
    if not (allows(perms, "issues", "read") or allows(perms, "pull_requests", "read")):
        raise not_accessible()
    return repo, _issue(request, repo)


def _issue(request: web.Request, repo: Repository) -> Pull:
    try:
        pr = repo.pulls.get(int(request.match_info["issue_number"]))
    except ValueError:
        pr = None
    if pr is None:
        raise not_found()
    return pr


def _label_names(body: object, *, allow_string: bool) -> list[str]:
    if isinstance(body, dict):
        body = body.get("labels")
    if allow_string and isinstance(body, str):
        body = [body]
    if not isinstance(body, list):
        raise validation_failed(
            {"resource": "Label", "field": "labels", "code": "invalid"},
            message="Invalid request.\n\nFor 'links/0/schema', nil is not an array.",
        )
    names = []
    for item in body:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name.strip():
            raise validation_failed({"resource": "Label", "field": "name", "code": "invalid"})
        names.append(name.strip())
    return names


def _labels_response(request: web.Request, repo: Repository, pr: Pull) -> web.Response:
    base = base_url(request)
    return json_response([shapes.label(base, repo, repo.labels[n.lower()]) for n in pr.labels])


def _apply_labels(request: web.Request, repo: Repository, pr: Pull, names: list[str]) -> None:
    sim = sim_of(request)
    have = {n.lower() for n in pr.labels}
    for name in names:
        label = sim.ensure_label(repo, name)  # unknown labels are created on the fly
        if label.name.lower() not in have:
            pr.labels.append(label.name)
            have.add(label.name.lower())
    pr.updated_at = sim.clock()


async def list_issue_labels(request: web.Request) -> web.Response:
    repo, pr = _readable_issue(request)
    return _labels_response(request, repo, pr)


async def add_labels(request: web.Request) -> web.Response:
    repo, pr = _writable_issue(request)
    _apply_labels(request, repo, pr, _label_names(await read_json(request), allow_string=False))
    return _labels_response(request, repo, pr)


async def set_labels(request: web.Request) -> web.Response:
    repo, pr = _writable_issue(request)
    names = _label_names(await read_json(request, allow_empty=True) or [], allow_string=True)
    pr.labels = []
    _apply_labels(request, repo, pr, names)
    return _labels_response(request, repo, pr)


async def remove_label(request: web.Request) -> web.Response:
    repo, pr = _writable_issue(request)
    name = request.match_info["name"].lower()
    kept = [n for n in pr.labels if n.lower() != name]
    if len(kept) == len(pr.labels):
        raise ApiError(404, "Label does not exist")
    pr.labels = kept
    return _labels_response(request, repo, pr)


async def create_comment(request: web.Request) -> web.Response:
    repo, pr = _writable_issue(request)
    sim = sim_of(request)
    body = await read_object(request)
    if not isinstance(body.get("body"), str) or not body["body"]:
        raise validation_failed(
            {"resource": "IssueComment", "field": "body", "code": "missing_field"}
        )
    if len(body["body"]) > 65536:
        raise validation_failed({"resource": "IssueComment", "field": "body", "code": "custom",
                                 "message": "body is too long (maximum is 65536 characters)"})  # fmt: skip
    comment = pullops.comment(sim, pr, sim.actor(request[CALLER]), body["body"])
    out = shapes.comment(base_url(request), repo, pr.number, comment, comment.user_type)
    return json_response(out, status=201)


async def list_issues(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "issues", "read")
    state = request.query.get("state", "open")
    wanted_labels = {x.lower() for x in request.query.get("labels", "").split(",") if x}
    items = []
    for pr in sorted(repo.pulls.values(), key=lambda p: p.number, reverse=True):
        sim.sync_pull(repo, pr)
        if state != "all" and pr.state != state:
            continue
        if not wanted_labels <= {n.lower() for n in pr.labels}:
            continue
        items.append(pr)
    page, headers = paginate(request, items)
    base = base_url(request)
    return json_response([shapes.issue_for_pull(base, repo, p) for p in page], headers=headers)


async def list_repo_labels(request: web.Request) -> web.Response:
    _, repo = repo_for(request)
    labels = sorted(repo.labels.values(), key=lambda lab: lab.name.lower())
    page, headers = paginate(request, labels)
    base = base_url(request)
    return json_response([shapes.label(base, repo, lab) for lab in page], headers=headers)


async def create_repo_label(request: web.Request) -> web.Response:
    sim, repo = repo_for(request)
    perms = request[CALLER].token.permissions
    if not (allows(perms, "issues", "write") or allows(perms, "pull_requests", "write")):
        raise not_accessible()
    body = await read_object(request)
    name, color = body.get("name"), str(body.get("color", "ededed")).removeprefix("#")
    if not isinstance(name, str) or not name.strip():
        raise validation_failed({"resource": "Label", "field": "name", "code": "missing_field"})
    if not _COLOR.match(color):
        raise validation_failed({"resource": "Label", "code": "invalid", "field": "color"})
    description = body.get("description")
    if isinstance(description, str) and len(description) > 100:
        raise validation_failed({"resource": "Label", "code": "invalid", "field": "description"})
    if name.lower() in repo.labels:
        raise validation_failed({"resource": "Label", "code": "already_exists", "field": "name"})
    label = sim.ensure_label(repo, name, color.lower(), description)
    return json_response(shapes.label(base_url(request), repo, label), status=201)


async def add_assignees(request: web.Request) -> web.Response:
    """GitHub's rule: people who may not be assigned are left out without an error."""
    repo, pr = _writable_issue(request)
    body = await read_object(request)
    wanted = body.get("assignees", [])
    if not isinstance(wanted, list) or not all(isinstance(x, str) for x in wanted):
        raise validation_failed({"resource": "Issue", "field": "assignees", "code": "invalid"})
    for login in wanted[:10]:
        if repo.is_collaborator(login) and login.lower() not in map(str.lower, pr.assignees):
            pr.assignees.append(sim_of(request).users[login.lower()].login)
    issue = shapes.issue_for_pull(base_url(request), repo, pr)
    return json_response(issue, status=201)


ROUTES = [
    ("GET", "/repos/{owner}/{repo}/issues", list_issues),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels", list_issue_labels),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels", add_labels),
    ("PUT", "/repos/{owner}/{repo}/issues/{issue_number}/labels", set_labels),
    ("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}", remove_label),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", create_comment),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/assignees", add_assignees),
    ("GET", "/repos/{owner}/{repo}/labels", list_repo_labels),
    ("POST", "/repos/{owner}/{repo}/labels", create_repo_label),
]
