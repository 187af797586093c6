"""Git Data API: trees, blobs, commits and refs (stored in a real bare repository)."""

from __future__ import annotations

import base64
import binascii
import calendar
import time

from aiohttp import web

from . import branches, shapes
from .credentials import CALLER
from .gitstore import VALID_MODES, TreeEditError, entry_type, is_hex_sha
from .people import git_identity
from .protocol import ApiError, json_response, not_found, read_object, unprocessable
from .routes_repos import RAW_MEDIA, accepts, base_url, repo_for
from .sim import GitHubSim
from .state import Repository


def _bad_sha(sha: str) -> ApiError:
    return unprocessable(
        "The sha parameter must be exactly 40 characters and contain only [0-9a-f]."
    )


# -- trees ---------------------------------------------------------------------------------------
async def get_tree(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "read", allow_empty=False)
    wanted = request.match_info["tree_sha"]
    tree_sha = wanted if repo.git.is_tree(wanted) else None
    if tree_sha is None:
        commit = repo.git.resolve_commit(wanted)
        if commit is None:
            raise not_found()
        tree_sha = repo.git.commit_tree(commit)
    recursive = "recursive" in request.query  # any value enables it, like GitHub
    entries = repo.git.list_tree(tree_sha, recursive=recursive)
    truncated = recursive and len(entries) > sim.tree_entry_limit
    if truncated:
        entries = entries[: sim.tree_entry_limit]
    return json_response(shapes.git_tree(base_url(request), repo, tree_sha, entries, truncated))


def _tree_edits(repo: Repository, items: object) -> list[tuple[str, int, str | None]]:
    if not isinstance(items, list):
        raise unprocessable('Invalid request.\n\n"tree" wasn\'t supplied.')
    edits = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise unprocessable(f'Invalid request.\n\n"path" wasn\'t supplied for tree item {i}.')
        mode = VALID_MODES.get(str(item.get("mode", "")))
        if mode is None:
            raise unprocessable(
                f'Invalid request.\n\n"{item.get("mode")}" is not a valid tree item mode '
                "(100644, 100755, 040000, 160000, 120000)."
            )
        if "content" in item and item.get("sha") is not None:
            raise unprocessable('Invalid request.\n\nOnly one of "content" or "sha" may be given.')
        kind = item.get("type", entry_type(mode))
        if kind != entry_type(mode):
            raise unprocessable(f"tree.type {kind!r} does not match mode {item.get('mode')}")
        if "content" in item:
            if not isinstance(item["content"], str) or kind != "blob":
                raise unprocessable("tree.content must be a string for blob entries")
            edits.append((item["path"], mode, repo.git.add_blob(item["content"].encode())))
        elif "sha" in item and item["sha"] is None:
            edits.append((item["path"], mode, None))
        elif isinstance(item.get("sha"), str):
            sha = item["sha"]
            known = repo.git.is_tree(sha) if kind == "tree" else repo.git.blob(sha) is not None
            if kind != "commit" and not known:
                raise unprocessable(f"tree.sha {sha} is not a valid {kind}")
            edits.append((item["path"], mode, sha))
        else:
            raise unprocessable('Invalid request.\n\nOne of "content" or "sha" must be given.')
    return edits


async def create_tree(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "write", allow_empty=False)
    body = await read_object(request)
    base_tree = body.get("base_tree")
    if base_tree is not None and not (isinstance(base_tree, str) and repo.git.is_tree(base_tree)):
        commit = repo.git.resolve_commit(base_tree) if isinstance(base_tree, str) else None
        if commit is None:
            raise unprocessable("Invalid request.\n\nbase_tree is not a valid tree SHA.")
        base_tree = repo.git.commit_tree(commit)
    edits = _tree_edits(repo, body.get("tree"))
    try:
        sha = repo.git.build_tree(base_tree, edits)
    except TreeEditError as exc:
        raise unprocessable(str(exc)) from exc
    sim.require_workflow_permission(request[CALLER], repo, base_tree, sha)
    entries = repo.git.list_tree(sha, recursive=False)
    return json_response(shapes.git_tree(base_url(request), repo, sha, entries, False), status=201)


# -- blobs ---------------------------------------------------------------------------------------
async def get_blob(request: web.Request) -> web.Response:
    _, repo = repo_for(request, "contents", "read", allow_empty=False)
    sha = request.match_info["file_sha"]
    if not is_hex_sha(sha):
        raise _bad_sha(sha)
    data = repo.git.blob(sha)
    if data is None:
        raise not_found()
    if accepts(request, *RAW_MEDIA):
        return web.Response(body=data, content_type="application/vnd.github.raw")
    return json_response(shapes.blob(base_url(request), repo, sha, data))


async def create_blob(request: web.Request) -> web.Response:
    _, repo = repo_for(request, "contents", "write", allow_empty=False)
    body = await read_object(request)
    content, encoding = body.get("content"), body.get("encoding", "utf-8")
    if not isinstance(content, str):
        raise ApiError(422, 'Invalid request.\n\n"content" wasn\'t supplied.')
    if encoding == "utf-8":
        data = content.encode()
    elif encoding == "base64":
        try:
            data = base64.b64decode(content)
        except (binascii.Error, ValueError) as exc:
            raise unprocessable("content is not valid Base64") from exc
    else:
        raise unprocessable(f"encoding must be utf-8 or base64, not {encoding!r}")
    sha = repo.git.add_blob(data)
    url = f"{base_url(request)}/repos/{repo.full_name}/git/blobs/{sha}"
    return json_response({"sha": sha, "url": url}, status=201)


# -- commits -------------------------------------------------------------------------------------
async def get_git_commit(request: web.Request) -> web.Response:
    _, repo = repo_for(request, "contents", "read", allow_empty=False)
    sha = request.match_info["commit_sha"]
    commit = repo.git.commit_info(sha)
    if commit is None:
        raise not_found()
    return json_response(shapes.git_commit(base_url(request), repo, sha, commit))


def _person(sim: GitHubSim, given: object, default: tuple[str, str], field: str
            ) -> tuple[str, str, int]:  # fmt: skip
    now = int(sim.clock())
    if given is None:
        return (*default, now)
    if not isinstance(given, dict) or not given.get("name") or not given.get("email"):
        raise unprocessable(f'Invalid request.\n\n"name" and "email" are required in "{field}".')
    when = now
    if given.get("date"):
        try:
            when = calendar.timegm(time.strptime(given["date"][:19], "%Y-%m-%dT%H:%M:%S"))
        except (TypeError, ValueError) as exc:
            raise unprocessable(f"{field}.date is not a valid ISO 8601 timestamp") from exc
    return str(given["name"]), str(given["email"]), when


async def create_commit(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "write", allow_empty=False)
    caller = request[CALLER]
    body = await read_object(request)
    message, tree, parents = body.get("message"), body.get("tree"), body.get("parents", [])
    if not isinstance(message, str):
        raise unprocessable('Invalid request.\n\n"message" wasn\'t supplied.')
    if not isinstance(tree, str) or not repo.git.is_tree(tree):
        raise unprocessable("Tree SHA does not exist")
    if not isinstance(parents, list) or not all(
        isinstance(p, str) and repo.git.is_commit(p) for p in parents
    ):
        raise unprocessable("Parent SHA does not exist or is not a commit object")
    old_tree = repo.git.commit_tree(parents[0]) if parents else None
    sim.require_workflow_permission(caller, repo, old_tree, tree)
    author = _person(sim, body.get("author"), git_identity(sim.actor(caller)), "author")
    committer = _person(sim, body.get("committer"), author[:2], "committer")
    sha = repo.git.make_commit(tree=tree, parents=parents, message=message, author=author,
                               committer=committer)  # fmt: skip
    body = shapes.git_commit(base_url(request), repo, sha, repo.git.commit_info(sha))
    return json_response(body, status=201)


# -- refs ----------------------------------------------------------------------------------------
def _ref_name(raw: str) -> str:
    return "refs/" + raw.strip("/").removeprefix("refs/")


async def get_ref(request: web.Request) -> web.Response:
    _, repo = repo_for(request, "contents", "read", allow_empty=False)
    name = _ref_name(request.match_info["ref"])
    sha = repo.git.ref(name)
    if sha is None:
        raise not_found()
    return json_response(shapes.git_ref(base_url(request), repo, name, sha))


async def list_matching_refs(request: web.Request) -> web.Response:
    _, repo = repo_for(request, "contents", "read", allow_empty=False)
    prefix = _ref_name(request.match_info["ref"])
    base = base_url(request)
    return json_response(
        [shapes.git_ref(base, repo, n, s) for n, s in repo.git.refs(prefix).items()]
    )


async def list_refs(request: web.Request) -> web.Response:
    _, repo = repo_for(request, "contents", "read", allow_empty=False)
    base = base_url(request)
    return json_response([shapes.git_ref(base, repo, n, s) for n, s in repo.git.refs().items()])


def _check_new_commits(request: web.Request, sim: GitHubSim, repo: Repository, sha: str) -> None:
    """Moving a ref publishes its new commits: each must respect the workflows permission."""
    for commit in repo.git.new_commits(sha):
        info = repo.git.commit_info(commit)
        old = repo.git.commit_tree(info.parents[0].decode()) if info.parents else None
        sim.require_workflow_permission(request[CALLER], repo, old, info.tree.decode())


async def create_ref(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "write", allow_empty=False)
    body = await read_object(request)
    name, sha = body.get("ref"), body.get("sha")
    if not isinstance(name, str) or not name.startswith("refs/") or name.count("/") < 2:
        raise unprocessable("Reference name must start with 'refs/' and have at least two slashes.")
    if not isinstance(sha, str):
        raise unprocessable('Invalid request.\n\n"sha" wasn\'t supplied.')
    if not repo.git.is_commit(sha):
        raise unprocessable("Object does not exist")
    if repo.git.ref(name) is not None:
        raise unprocessable("Reference already exists")
    _check_new_commits(request, sim, repo, sha)
    branches.update_ref(sim, repo, name, sha, sim.actor(request[CALLER]))
    return json_response(shapes.git_ref(base_url(request), repo, name, sha), status=201)


async def update_ref(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "write", allow_empty=False)
    body = await read_object(request)
    name = _ref_name(request.match_info["ref"])
    sha, force = body.get("sha"), bool(body.get("force", False))
    if not isinstance(sha, str):
        raise unprocessable('Invalid request.\n\n"sha" wasn\'t supplied.')
    current = repo.git.ref(name)
    if current is None:
        raise unprocessable("Reference does not exist")
    if not repo.git.is_commit(sha):
        raise unprocessable("Object does not exist")
    if not force and not repo.git.is_ancestor(current, sha):
        raise unprocessable("Update is not a fast forward")
    _check_new_commits(request, sim, repo, sha)
    branches.update_ref(sim, repo, name, sha, sim.actor(request[CALLER]))
    return json_response(shapes.git_ref(base_url(request), repo, name, sha))


async def delete_ref(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "write", allow_empty=False)
    name = _ref_name(request.match_info["ref"])
    if name == f"refs/heads/{repo.default_branch}":
        raise unprocessable("Cannot delete the default branch")
    if not branches.update_ref(sim, repo, name, None, sim.actor(request[CALLER])):
        raise unprocessable("Reference does not exist")
    return web.Response(status=204)


ROUTES = [
    ("GET", "/repos/{owner}/{repo}/git/trees/{tree_sha}", get_tree),
    ("POST", "/repos/{owner}/{repo}/git/trees", create_tree),
    ("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}", get_blob),
    ("POST", "/repos/{owner}/{repo}/git/blobs", create_blob),
    ("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}", get_git_commit),
    ("POST", "/repos/{owner}/{repo}/git/commits", create_commit),
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref}", get_ref),
    ("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}", list_matching_refs),
    ("GET", "/repos/{owner}/{repo}/git/refs", list_refs),
    ("GET", "/repos/{owner}/{repo}/git/refs/", list_refs),
    ("GET", "/repos/{owner}/{repo}/git/refs/{ref}", get_ref),
    ("POST", "/repos/{owner}/{repo}/git/refs", create_ref),
    ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}", update_ref),
    ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}", delete_ref),
]
