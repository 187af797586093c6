"""Repository routes: repository, branches, commits/{ref}, contents and tarballs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from aiohttp import web

from . import branches, shapes
from .credentials import CALLER
from .gitstore import MODE_DIR, MODE_FILE, MODE_SUBMODULE, MODE_SYMLINK
from .people import git_identity
from .protocol import (
    ApiError,
    empty_repository,
    json_response,
    missing_field,
    not_found,
    paginate,
    read_object,
    unprocessable,
    validation_failed,
)
from .sim import GitHubSim, sim_of
from .state import Repository

SHA_MEDIA = "application/vnd.github.sha"
RAW_MEDIA = ("application/vnd.github.raw", "application/vnd.github.v3.raw")


def base_url(request: web.Request) -> str:
    return str(request.url.origin())


def repo_for(request: web.Request, permission: str = "metadata", level: str = "read", *,
             allow_empty: bool = True) -> tuple[GitHubSim, Repository]:  # fmt: skip
    sim = sim_of(request)
    repo = sim.access(request[CALLER], request.match_info["owner"], request.match_info["repo"],
                      permission, level, allow_empty=allow_empty)  # fmt: skip
    return sim, repo


def accepts(request: web.Request, *media: str) -> bool:
    accept = request.headers.get("Accept", "")
    return any(m in accept for m in media)


async def list_releases(request: web.Request) -> web.Response:
    """Newest first, as GitHub lists them; drafts only for those who may push."""
    _, repo = repo_for(request, "contents", "read")
    push = request[CALLER].token.permissions.get("contents") == "write"
    releases = [r for r in reversed(repo.releases) if push or not r.draft]
    page, link = paginate(request, releases)
    return json_response([shapes.release(base_url(request), repo, r) for r in page], headers=link)


async def create_release(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "write")
    body = await read_object(request)
    tag = body.get("tag_name")
    if not isinstance(tag, str) or not tag:
        raise validation_failed({"resource": "Release", "field": "tag_name", "code": "missing_field"})
    if any(r.tag_name == tag for r in repo.releases):
        raise validation_failed({"resource": "Release", "field": "tag_name", "code": "already_exists"})
    number = sim.create_release(
        repo.full_name, tag, name=body.get("name"), body=body.get("body"),
        draft=bool(body.get("draft", False)), prerelease=bool(body.get("prerelease", False)),
        author=sim.actor(request[CALLER]).login,
    )  # fmt: skip
    release = next(r for r in repo.releases if r.id == number)
    return json_response(shapes.release(base_url(request), repo, release), status=201)


async def get_repository(request: web.Request) -> web.Response:
    sim, repo = repo_for(request)
    push = request[CALLER].token.permissions.get("contents") == "write"
    body = shapes.repository(base_url(request), repo, sim.account_type(repo.owner), full=True,
                             push=push)  # fmt: skip
    return json_response(body)


def commit_json(request: web.Request, repo: Repository, sha: str) -> dict:
    commit = repo.git.commit_info(sha)
    first_parent = commit.parents[0].decode() if commit.parents else None
    old_tree = repo.git.commit_tree(first_parent) if first_parent else None
    files = [
        shapes.diff_entry(base_url(request), repo, sha, path, status, blob)
        for status, path, blob in repo.git.changed_paths(old_tree, commit.tree.decode())
    ]
    return shapes.rest_commit(base_url(request), repo, sha, commit, files[:300])


async def get_commit(request: web.Request) -> web.Response:
    _, repo = repo_for(request, "contents", "read", allow_empty=False)
    ref = request.match_info["ref"]
    sha = repo.git.resolve_commit(ref)
    if sha is None:
        raise unprocessable(f"No commit found for SHA: {ref}")
    if accepts(request, SHA_MEDIA):
        # The 40-hex body with the SHA as ETag is what makes the cheap head check free on 304.
        return web.Response(body=sha.encode(), headers={"ETag": f'"{sha}"'},
                            content_type=SHA_MEDIA, charset="utf-8")  # fmt: skip
    return json_response(commit_json(request, repo, sha))


async def get_branch(request: web.Request) -> web.Response:
    _, repo = repo_for(request, "contents", "read")
    branch = request.match_info["branch"]
    sha = repo.git.ref(f"refs/heads/{branch}")
    if sha is None:
        raise ApiError(404, "Branch not found")
    url = f"{base_url(request)}/repos/{repo.full_name}/branches/{branch}"
    return json_response({
        "name": branch,
        "commit": commit_json(request, repo, sha),
        "_links": {"self": url, "html": f"{base_url(request)}/{repo.full_name}/tree/{branch}"},
        "protected": False,
        "protection": {"enabled": False},
        "protection_url": f"{url}/protection",
    })  # fmt: skip


def _resolve_ref_or_default(repo: Repository, ref: str | None) -> str:
    sha = repo.git.resolve_commit(ref or repo.default_branch)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    return sha


async def get_contents(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "read")
    if repo.git.is_empty():
        raise ApiError(404, "This repository is empty.")
    ref = request.query.get("ref") or repo.default_branch
    sha = _resolve_ref_or_default(repo, ref)
    path = request.match_info["path"].strip("/")
    found = repo.git.lookup(repo.git.commit_tree(sha), path)
    if found is None:
        raise not_found()
    mode, obj = found
    base = base_url(request)
    if mode == MODE_DIR:
        items = []
        for e in repo.git.list_tree(obj, recursive=False):
            child = f"{path}/{e.path}" if path else e.path
            kind = {"tree": "dir", "commit": "file"}.get(e.type, "file")
            if e.mode == "120000":
                kind = "symlink"
            items.append(shapes.content_entry(base, repo, ref, child, kind, e.sha, e.size or 0))
        return json_response(items[:1000])
    if mode == MODE_SUBMODULE:
        entry = shapes.content_entry(base, repo, ref, path, "submodule", obj, 0)
        entry["submodule_git_url"] = f"{base}/{path}.git"
        return json_response(entry)
    data = repo.git.blob(obj)
    if accepts(request, *RAW_MEDIA):
        return web.Response(body=data, content_type="application/vnd.github.raw", charset="utf-8")
    if mode == MODE_SYMLINK:
        entry = shapes.content_entry(base, repo, ref, path, "symlink", obj, len(data))
        entry["target"] = data.decode("utf-8", "replace")
        return json_response(entry)
    if len(data) > sim.contents_max_bytes:
        raise ApiError(
            403,
            "This API returns blobs up to 1 MB in size. The requested blob is too large to fetch "
            "via the API, but you can use the Git Data API to request blobs up to 100 MB in size.",
            errors=[{"resource": "Blob", "field": "data", "code": "too_large"}],
            doc="https://docs.github.com/rest/repos/contents#get-repository-content",
        )
    entry = shapes.content_entry(base, repo, ref, path, "file", obj, len(data))
    entry["content"] = base64.encodebytes(data).decode()
    entry["encoding"] = "base64"
    return json_response(entry)


async def put_contents(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "write")
    caller = request[CALLER]
    body = await read_object(request)
    path = request.match_info["path"].strip("/")
    for field in ("message", "content"):
        if not isinstance(body.get(field), str):
            raise missing_field("Commit" if field == "message" else "Blob", field)
    try:
        data = base64.b64decode(body["content"], validate=False)
    except (binascii.Error, ValueError) as exc:
        raise unprocessable("content is not valid Base64") from exc
    branch = body.get("branch") or repo.default_branch
    head = repo.git.ref(f"refs/heads/{branch}")
    if head is None and not repo.git.is_empty():
        raise ApiError(404, f"Branch {branch} not found")
    old_tree = repo.git.commit_tree(head) if head else None
    existing = repo.git.lookup(old_tree, path) if old_tree else None
    if existing and not body.get("sha"):
        raise unprocessable('Invalid request.\n\n"sha" wasn\'t supplied.')
    if existing and body["sha"] != existing[1]:
        raise ApiError(409, f"{path} does not match {body['sha']}")
    blob = repo.git.add_blob(data)
    tree = repo.git.build_tree(old_tree, [(path, MODE_FILE, blob)])
    sim.require_workflow_permission(caller, repo, old_tree, tree)
    actor = sim.actor(caller)
    name, email = git_identity(actor)
    person = body.get("author") or body.get("committer") or {}
    now = int(sim.clock())
    author = (person.get("name", name), person.get("email", email), now)
    sha = repo.git.make_commit(tree=tree, parents=[head] if head else [], message=body["message"],
                               author=author, committer=author)  # fmt: skip
    branches.update_ref(sim, repo, f"refs/heads/{branch}", sha, actor)
    base = base_url(request)
    content = shapes.content_entry(base, repo, branch, path, "file", blob, len(data))
    commit = shapes.git_commit(base, repo, sha, repo.git.commit_info(sha))
    return json_response({"content": content, "commit": commit}, status=200 if existing else 201)


def codeload_token(sim: GitHubSim, full_name: str, sha: str) -> str:
    return hmac.new(sim.codeload_secret.encode(), f"{full_name}@{sha}".encode(),
                    hashlib.sha256).hexdigest()[:32]  # fmt: skip


async def get_tarball(request: web.Request) -> web.Response:
    sim, repo = repo_for(request, "contents", "read")
    if repo.git.is_empty():
        raise not_found()
    sha = _resolve_ref_or_default(repo, request.match_info.get("ref"))
    token = codeload_token(sim, repo.full_name, sha)
    location = f"{base_url(request)}/_codeload/{repo.full_name}/legacy.tar.gz/{sha}?token={token}"
    return web.Response(status=302, headers={"Location": location})


async def get_codeload(request: web.Request) -> web.Response:
    sim = sim_of(request)
    full = f"{request.match_info['owner']}/{request.match_info['repo']}"
    sha = request.match_info["sha"]
    repo = sim.repos.get(full.lower())
    if repo is None or not hmac.compare_digest(
        request.query.get("token", ""), codeload_token(sim, repo.full_name, sha)
    ):
        raise not_found()
    prefix = f"{repo.owner}-{repo.name}-{sha[:7]}/"
    data = repo.git.tarball(sha, prefix, int(repo.git.commit_info(sha).commit_time))
    return web.Response(
        body=data,
        content_type="application/x-gzip",
        headers={"Content-Disposition": f"attachment; filename={prefix[:-1]}.tar.gz"},
    )


def _empty_conflict() -> ApiError:
    return empty_repository()


ROUTES = [
    ("GET", "/repos/{owner}/{repo}", get_repository),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}", get_branch),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}", get_commit),
    ("GET", "/repos/{owner}/{repo}/contents/{path}", get_contents),
    ("PUT", "/repos/{owner}/{repo}/contents/{path}", put_contents),
    ("GET", "/repos/{owner}/{repo}/tarball/{ref}", get_tarball),
    ("GET", "/repos/{owner}/{repo}/tarball", get_tarball),
    ("GET", "/_codeload/{owner}/{repo}/legacy.tar.gz/{sha}", get_codeload),
    ("GET", "/repos/{owner}/{repo}/releases", list_releases),
    ("POST", "/repos/{owner}/{repo}/releases", create_release),
]
