"""The `/_sim/` admin API: drive the simulator over HTTP when it runs standalone (README.md)."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from .protocol import ApiError, json_response, read_object
from .sim import GitHubSim, sim_of


def _files(raw: object) -> dict[str, bytes | None]:
    """`{"path": "text" | {"base64": "..."} | null}` → bytes (None deletes)."""
    if not isinstance(raw, dict):
        raise ApiError(400, 'files must be an object {"path": "text" | {"base64": ...} | null}')
    out: dict[str, bytes | None] = {}
    for path, value in raw.items():
        if value is None:
            out[path] = None
        elif isinstance(value, str):
            out[path] = value.encode()
        elif isinstance(value, dict) and isinstance(value.get("base64"), str):
            try:
                out[path] = base64.b64decode(value["base64"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ApiError(400, f"files[{path!r}].base64 is not valid Base64") from exc
        else:
            raise ApiError(400, f"files[{path!r}] must be a string, {{'base64': ...}} or null")
    return out


def _repo_name(request: web.Request) -> str:
    return f"{request.match_info['owner']}/{request.match_info['repo']}"


def _known_repo(sim: GitHubSim, name: str) -> str:
    if name.lower() not in sim.repos:
        raise ApiError(404, f"no simulated repository {name}")
    return name


async def _body(request: web.Request) -> dict:
    return await read_object(request, allow_empty=True)


def _value_errors(func):
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await func(request)
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, f"{type(exc).__name__}: {exc}", with_status=False) from exc

    return wrapper


@_value_errors
async def register_app(request: web.Request) -> web.Response:
    body = await _body(request)
    app_id = sim_of(request).register_app(
        int(body.get("app_id", 1)), body["public_key_pem"], slug=body.get("slug", "image-automation"),
        permissions=body.get("permissions"), events=body.get("events"),
        webhook_url=body.get("webhook_url"), webhook_secret=body.get("webhook_secret"),
    )  # fmt: skip
    return json_response({"app_id": app_id}, status=201)


@_value_errors
async def create_installation(request: web.Request) -> web.Response:
    body = await _body(request)
    inst = sim_of(request).create_installation(
        int(body["app_id"]), body["account"], body.get("repositories"),
        account_type=body.get("account_type", "Organization"),
        permissions=body.get("permissions"), installation_id=body.get("installation_id"),
        as_user=body.get("as_user"),
    )  # fmt: skip
    return json_response({"installation_id": inst}, status=201)


@_value_errors
async def add_installation_repositories(request: web.Request) -> web.Response:
    body = await _body(request)
    sim_of(request).add_repositories(int(request.match_info["id"]), list(body["repositories"]),
                                     as_user=body.get("as_user"))  # fmt: skip
    return json_response({})


@_value_errors
async def remove_installation_repositories(request: web.Request) -> web.Response:
    body = await _body(request)
    sim_of(request).remove_repositories(int(request.match_info["id"]),
                                        list(body["repositories"]), as_user=body.get("as_user"))  # fmt: skip
    return json_response({})


@_value_errors
async def suspend_installation(request: web.Request) -> web.Response:
    body = await _body(request)
    sim_of(request).suspend_installation(int(request.match_info["id"]),
                                         bool(body.get("suspended", True)),
                                         as_user=body.get("as_user"))  # fmt: skip
    return json_response({})


@_value_errors
async def delete_installation(request: web.Request) -> web.Response:
    sim = sim_of(request)
    inst = int(request.match_info["id"])
    if inst not in sim.installations:
        raise ApiError(404, f"no installation {inst}")
    sim.delete_installation(inst, as_user=request.query.get("as_user"))
    return web.Response(status=204)


@_value_errors
async def create_repository(request: web.Request) -> web.Response:
    body = await _body(request)
    files = _files(body["files"]) if body.get("files") is not None else None
    sha = sim_of(request).create_repository(
        body["full_name"], files, default_branch=body.get("default_branch", "main"),
        private=bool(body.get("private", True)),
    )  # fmt: skip
    return json_response({"full_name": body["full_name"], "sha": sha}, status=201)


@_value_errors
async def push(request: web.Request) -> web.Response:
    sim = sim_of(request)
    body = await _body(request)
    name = _known_repo(sim, _repo_name(request))
    author = body.get("author")
    sha = sim.push(name, body["branch"], _files(body["files"]),
                   message=body.get("message", "Update files"),
                   author=(author["name"], author["email"]) if author else None,
                   force=bool(body.get("force")), parent=body.get("parent"),
                   as_user=body.get("as_user"))  # fmt: skip
    return json_response({"sha": sha}, status=201)


async def create_release(request: web.Request) -> web.Response:
    sim = sim_of(request)
    body = await _body(request)
    name = _known_repo(sim, _repo_name(request))
    release_id = sim.create_release(
        name, body["tag_name"], name=body.get("name"), body=body.get("body"),
        draft=bool(body.get("draft")), prerelease=bool(body.get("prerelease")),
        author=body.get("author", "octocat"),
    )  # fmt: skip
    return json_response({"id": release_id}, status=201)


@_value_errors
async def read_file(request: web.Request) -> web.Response:
    sim = sim_of(request)
    name = _known_repo(sim, _repo_name(request))
    data = sim.read_file(name, request.query.get("ref", "main"), request.query["path"])
    if data is None:
        raise ApiError(404, "no such file")
    return web.Response(body=data, content_type="application/octet-stream")


@_value_errors
async def branch(request: web.Request) -> web.Response:
    sim = sim_of(request)
    name = _known_repo(sim, _repo_name(request))
    return json_response({"sha": sim.branch_sha(name, request.match_info["branch"])})


async def pulls(request: web.Request) -> web.Response:
    sim = sim_of(request)
    return json_response(sim.pulls(_known_repo(sim, _repo_name(request))))


async def check_runs(request: web.Request) -> web.Response:
    sim = sim_of(request)
    return json_response(sim.check_runs(_known_repo(sim, _repo_name(request))))


@_value_errors
async def inject_fault(request: web.Request) -> web.Response:
    body = await _body(request)
    sim_of(request).inject(
        method=body.get("method"), route=body.get("route"), status=body.get("status", 502),
        times=body.get("times", 1), headers=body.get("headers"), body=body.get("body"),
        delay=float(body.get("delay", 0.0)), lose_answer=bool(body.get("lose_answer", False)),
    )  # fmt: skip
    return json_response({"faults": len(sim_of(request).faults)}, status=201)


async def clear_faults(request: web.Request) -> web.Response:
    sim_of(request).clear_faults()
    return web.Response(status=204)


async def counters(request: web.Request) -> web.Response:
    return json_response(dict(sim_of(request).counters))


async def reset_counters(request: web.Request) -> web.Response:
    sim_of(request).reset_counters()
    return web.Response(status=204)


@_value_errors
async def settings(request: web.Request) -> web.Response:
    """Tune `token_ttl`, `tree_entry_limit`, `rate_limit`, `rate_limit_status`, `rate_window`."""
    sim = sim_of(request)
    body = await _body(request)
    for key in ("token_ttl", "tree_entry_limit", "rate_limit", "rate_limit_status", "rate_window"):
        if key in body:
            setattr(sim, key, type(getattr(sim, key))(body[key]))
    return json_response({k: getattr(sim, k) for k in
                          ("token_ttl", "tree_entry_limit", "rate_limit", "rate_limit_status",
                           "rate_window")})  # fmt: skip


ROUTES = [
    ("POST", "/_sim/apps", register_app),
    ("POST", "/_sim/installations", create_installation),
    ("POST", "/_sim/installations/{id}/repositories", add_installation_repositories),
    ("DELETE", "/_sim/installations/{id}/repositories", remove_installation_repositories),
    ("POST", "/_sim/installations/{id}/suspend", suspend_installation),
    ("DELETE", "/_sim/installations/{id}", delete_installation),
    ("POST", "/_sim/repos", create_repository),
    ("POST", "/_sim/repos/{owner}/{repo}/push", push),
    ("POST", "/_sim/repos/{owner}/{repo}/releases", create_release),
    ("GET", "/_sim/repos/{owner}/{repo}/file", read_file),
    ("GET", "/_sim/repos/{owner}/{repo}/branches/{branch}", branch),
    ("GET", "/_sim/repos/{owner}/{repo}/pulls", pulls),
    ("GET", "/_sim/repos/{owner}/{repo}/check-runs", check_runs),
    ("POST", "/_sim/faults", inject_fault),
    ("DELETE", "/_sim/faults", clear_faults),
    ("GET", "/_sim/counters", counters),
    ("DELETE", "/_sim/counters", reset_counters),
    ("POST", "/_sim/settings", settings),
]
