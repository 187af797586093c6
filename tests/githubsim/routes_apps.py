"""App-level routes: the API root, rate limit, the App itself, installations and tokens."""

from __future__ import annotations

from aiohttp import web

from . import shapes
from .credentials import CALLER, Caller
from .protocol import ApiError, json_response, not_found, paginate, read_object, validation_failed
from .sim import sim_of
from .state import LEVELS


def _base(request: web.Request) -> str:
    return str(request.url.origin())


def _require_jwt(request: web.Request) -> Caller:
    caller: Caller = request[CALLER]
    if caller.kind == "anonymous":
        raise ApiError(401, "Requires authentication")
    if caller.kind != "app":
        raise ApiError(401, "A JSON web token could not be decoded")
    return caller


async def get_root(request: web.Request) -> web.Response:
    return json_response(shapes.root(_base(request)))


async def get_rate_limit(request: web.Request) -> web.Response:
    sim = sim_of(request)
    bucket = sim.rate_bucket(request[CALLER].bucket)
    remaining = max(0, bucket.limit - bucket.used)
    return json_response(shapes.rate_limit(bucket.limit, remaining, int(bucket.reset), bucket.used))


async def get_app(request: web.Request) -> web.Response:
    caller = _require_jwt(request)
    body = shapes.app(_base(request), caller.app)
    body["installations_count"] = sum(
        i.app_id == caller.app.id for i in sim_of(request).installations.values()
    )
    return json_response(body)


async def list_installations(request: web.Request) -> web.Response:
    caller = _require_jwt(request)
    sim = sim_of(request)
    items = [
        shapes.installation(_base(request), i, caller.app)
        for i in sorted(sim.installations.values(), key=lambda i: i.id)
        if i.app_id == caller.app.id
    ]
    page, headers = paginate(request, items)
    return json_response(page, headers=headers)


def _own_installation(request: web.Request, caller: Caller):
    sim = sim_of(request)
    try:
        inst = sim.installations.get(int(request.match_info["installation_id"]))
    except ValueError:
        inst = None
    if inst is None or inst.app_id != caller.app.id:
        raise not_found()
    return inst


async def get_installation(request: web.Request) -> web.Response:
    caller = _require_jwt(request)
    inst = _own_installation(request, caller)
    return json_response(shapes.installation(_base(request), inst, caller.app))


async def create_access_token(request: web.Request) -> web.Response:
    caller = _require_jwt(request)
    sim = sim_of(request)
    inst = _own_installation(request, caller)
    if inst.suspended_at is not None:
        raise ApiError(403, "This installation has been suspended")
    body = await read_object(request, allow_empty=True)
    permissions = dict(inst.permissions)
    if body.get("permissions"):
        wanted = body["permissions"]
        for name, level in wanted.items():
            if LEVELS.get(level, 99) > LEVELS.get(inst.permissions.get(name, ""), 0):
                raise validation_failed(
                    message=f"The permissions requested are not granted to this installation."
                    f" ({name}: {level})"
                )
        permissions = dict(wanted)
    repositories = None
    names = body.get("repositories") or []
    ids = body.get("repository_ids") or []
    if names or ids:
        repositories = set()
        for repo in sim.repos.values():
            if (repo.name in names or repo.id in ids) and inst.covers(repo.full_name):
                repositories.add(repo.full_name.lower())
        if len(repositories) < len(set(names)) + len(set(ids)):
            raise validation_failed(
                message="There is at least one repository that does not exist or is not "
                "accessible to the parent installation."
            )
    token = sim.mint_token(inst, permissions, repositories)
    out = {
        "token": token.token,
        "expires_at": shapes.iso(token.expires_at),
        "permissions": permissions,
        "repository_selection": "selected" if repositories or inst.repositories else "all",
    }
    if repositories is not None:
        out["repositories"] = [
            shapes.repository(_base(request), sim.repo(n), sim.account_type(n.split("/")[0]))
            for n in sorted(repositories)
        ]
    return json_response(out, status=201)


async def list_installation_repositories(request: web.Request) -> web.Response:
    caller: Caller = request[CALLER]
    if caller.kind != "installation":
        raise (
            ApiError(401, "Bad credentials")
            if caller.kind == "anonymous"
            else ApiError(403, "Resource not accessible by integration")
        )
    sim = sim_of(request)
    repos = sorted(sim.visible_repos(caller), key=lambda r: r.id)
    items = [shapes.repository(_base(request), r, sim.account_type(r.owner)) for r in repos]
    page, headers = paginate(request, items)
    body = {
        "total_count": len(items),
        "repository_selection": "all" if caller.installation.repositories is None else "selected",
        "repositories": page,
    }
    return json_response(body, headers=headers)


async def get_repo_installation(request: web.Request) -> web.Response:
    caller = _require_jwt(request)
    sim = sim_of(request)
    full = f"{request.match_info['owner']}/{request.match_info['repo']}"
    if full.lower() not in sim.repos:
        raise not_found()
    for inst in sim.installations.values():
        if inst.app_id == caller.app.id and inst.covers(full):
            return json_response(shapes.installation(_base(request), inst, caller.app))
    raise not_found()


ROUTES = [
    ("GET", "/", get_root),
    ("GET", "/rate_limit", get_rate_limit),
    ("GET", "/app", get_app),
    ("GET", "/app/installations", list_installations),
    ("GET", "/app/installations/{installation_id}", get_installation),
    ("POST", "/app/installations/{installation_id}/access_tokens", create_access_token),
    ("GET", "/installation/repositories", list_installation_repositories),
    ("GET", "/repos/{owner}/{repo}/installation", get_repo_installation),
]
