"""`/_sim/` admin routes for what people do: users and their tokens, pull requests (open,
edit, close, reopen, merge, comment) and branch deletion — each sends GitHub's webhooks."""

from __future__ import annotations

from aiohttp import web

from .admin import _body, _known_repo, _repo_name, _value_errors
from .protocol import json_response
from .sim import GitHubSim, sim_of


def _target(request: web.Request) -> tuple[GitHubSim, str]:
    sim = sim_of(request)
    return sim, _known_repo(sim, _repo_name(request))


def _number(request: web.Request) -> int:
    return int(request.match_info["number"])


def _pull_json(sim: GitHubSim, name: str, number: int) -> dict:
    return next(p for p in sim.pulls(name) if p["number"] == number)


@_value_errors
async def create_user(request: web.Request) -> web.Response:
    body = await _body(request)
    user = sim_of(request).create_user(body["login"], name=body.get("name"),
                                       email=body.get("email"))  # fmt: skip
    return json_response(user, status=201)


@_value_errors
async def create_user_token(request: web.Request) -> web.Response:
    token = sim_of(request).user_token(request.match_info["login"])
    return json_response({"token": token}, status=201)


@_value_errors
async def open_pull(request: web.Request) -> web.Response:
    sim, name = _target(request)
    body = await _body(request)
    number = sim.open_pull(name, body["head"], body.get("base"),
                           title=body.get("title", "Update"), body=body.get("body"),
                           draft=bool(body.get("draft", False)), as_user=body.get("as_user"))  # fmt: skip
    return json_response(_pull_json(sim, name, number), status=201)


@_value_errors
async def edit_pull(request: web.Request) -> web.Response:
    sim, name = _target(request)
    body = await _body(request)
    as_user = body.pop("as_user", None)
    fields = {k: body[k] for k in ("title", "body", "base", "state", "maintainer_can_modify")
              if k in body}  # fmt: skip
    sim.edit_pull(name, _number(request), as_user=as_user, **fields)
    return json_response(_pull_json(sim, name, _number(request)))


def _state_change(action: str):
    """An admin route that closes or reopens a PR as a person (`sim.close_pull` / `reopen_pull`)."""

    @_value_errors
    async def change(request: web.Request) -> web.Response:
        sim, name = _target(request)
        body = await _body(request)
        getattr(sim, f"{action}_pull")(name, _number(request), as_user=body.get("as_user"))
        return json_response(_pull_json(sim, name, _number(request)))

    return change


close_pull = _state_change("close")
reopen_pull = _state_change("reopen")


@_value_errors
async def merge_pull(request: web.Request) -> web.Response:
    sim, name = _target(request)
    body = await _body(request)
    sha = sim.merge_pull(name, _number(request), method=body.get("merge_method", "merge"),
                         sha=body.get("sha"), commit_title=body.get("commit_title"),
                         commit_message=body.get("commit_message"), as_user=body.get("as_user"))  # fmt: skip
    return json_response({"sha": sha, "merged": True})


@_value_errors
async def comment(request: web.Request) -> web.Response:
    sim, name = _target(request)
    body = await _body(request)
    comment_id = sim.comment(name, _number(request), body["body"], as_user=body.get("as_user"))
    return json_response({"id": comment_id}, status=201)


@_value_errors
async def delete_branch(request: web.Request) -> web.Response:
    sim, name = _target(request)
    body = await _body(request)
    as_user = body.get("as_user") or request.query.get("as_user")
    deleted = sim.delete_branch(name, request.match_info["branch"], as_user=as_user)
    return json_response({"deleted": deleted})


ROUTES = [
    ("POST", "/_sim/users", create_user),
    ("POST", "/_sim/users/{login}/tokens", create_user_token),
    ("POST", "/_sim/repos/{owner}/{repo}/pulls", open_pull),
    ("PATCH", "/_sim/repos/{owner}/{repo}/pulls/{number}", edit_pull),
    ("POST", "/_sim/repos/{owner}/{repo}/pulls/{number}/close", close_pull),
    ("POST", "/_sim/repos/{owner}/{repo}/pulls/{number}/reopen", reopen_pull),
    ("POST", "/_sim/repos/{owner}/{repo}/pulls/{number}/merge", merge_pull),
    ("POST", "/_sim/repos/{owner}/{repo}/pulls/{number}/comments", comment),
    ("DELETE", "/_sim/repos/{owner}/{repo}/branches/{branch}", delete_branch),
]
