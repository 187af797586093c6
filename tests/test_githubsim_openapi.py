"""Every simulator route answers what GitHub documents: responses validated against the
OpenAPI subset in tests/data/github/openapi with an OpenAPI-3.0-aware validator."""

from __future__ import annotations

import base64
import copy
import json
import urllib.parse

import aiohttp
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.datapaths import GITHUB_DATA
from tests.githubsim.testkit import PERMISSIONS, Api, app_jwt

SPEC_PATH = GITHUB_DATA / "openapi" / "api.github.com.subset.json"
DOC_URI = "urn:github-openapi-subset"
REPO = "octo-org/app"


NULL_ONLY = {"type": "string", "nullable": True, "enum": [None]}


def _fix_description_quirks(node: object) -> None:
    """Make the validator read the description the way OpenAPI 3.0 means it:

    * `nullable: true` with an `enum` lacking null (e.g. `state_reason`, the README's quirk)
      and `nullable: true` on a `oneOf`/`anyOf` (e.g. a commit's `author`, null when the
      e-mail matches no account) both mean "null is allowed": add null explicitly;
    * the contents response's `discriminator` maps `array` to the directory listing, which
      no property of an array can select: validate that `oneOf` without it.
    """
    if isinstance(node, dict):
        enum = node.get("enum")
        if node.get("nullable") is True and isinstance(enum, list) and None not in enum:
            enum.append(None)
        for key in ("oneOf", "anyOf"):
            if node.get("nullable") is True and key in node and NULL_ONLY not in node[key]:
                node[key].append(dict(NULL_ONLY, enum=[None]))
        if "array" in node.get("discriminator", {}).get("mapping", {}):
            del node["discriminator"]
        for value in list(node.values()):
            _fix_description_quirks(value)
    elif isinstance(node, list):
        for value in node:
            _fix_description_quirks(value)


@pytest.fixture(scope="module")
def spec() -> dict:
    if not SPEC_PATH.exists():
        pytest.fail(f"OpenAPI subset missing at {SPEC_PATH}")
    doc = copy.deepcopy(json.loads(SPEC_PATH.read_text()))
    _fix_description_quirks(doc)
    return doc


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _response_schema_ref(spec: dict, path: str, method: str, status: int, ctype: str
                         ) -> str | None:  # fmt: skip
    """JSON pointer (within the document) of the schema for this response, or None."""
    responses = spec["paths"][path][method.lower()]["responses"]
    if str(status) not in responses:
        return None
    pointer = ["paths", path, method.lower(), "responses", str(status)]
    response = responses[str(status)]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        pointer = ["components", "responses", name]
        response = spec["components"]["responses"][name]
    content = response.get("content", {})
    if ctype not in content or "schema" not in content[ctype]:
        return None
    return "#/" + _pointer(*pointer, "content", ctype, "schema")


def _operations(spec: dict) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m != "parameters"}


async def _walk_every_route(api: Api, sim, app_id: int, private_pem: str, inst: int) -> None:
    """A scenario touching each of the 38 operations with a successful request, plus errors."""
    jwt_token = app_jwt(app_id, private_pem)
    await api.get("/")
    await api.get("/rate_limit")
    await api.get("/app", token=jwt_token)
    await api.get("/app/installations", token=jwt_token)
    await api.get(f"/app/installations/{inst}", token=jwt_token)
    await api.get("/app/installations/999999", token=jwt_token)  # 404
    reply = await api.post(f"/app/installations/{inst}/access_tokens", token=jwt_token)
    api.token = reply.body["token"]
    await api.post(f"/app/installations/{inst}/access_tokens", token=jwt_token,
                   body={"repositories": ["app"], "permissions": {"contents": "read"}})  # fmt: skip
    await api.get("/installation/repositories?per_page=1")
    # The App manifest flow: GitHub's page takes the manifest (a form) and redirects with
    # a code, which is converted once, without a credential.
    manifest = {"name": "from-manifest", "url": "https://example.com",
                "redirect_url": "https://example.com/callback",
                "hook_attributes": {"url": "https://example.com/hooks"},
                "default_permissions": {"contents": "read"}, "default_events": ["push"]}  # fmt: skip
    form = urllib.parse.urlencode({"manifest": json.dumps(manifest)}).encode()
    reply = await api.call("POST", "/settings/apps/new?state=s1", raw=form, token="",
                           headers={"Content-Type": "application/x-www-form-urlencoded"},
                           allow_redirects=False)  # fmt: skip
    assert reply.status == 302, reply
    back = urllib.parse.urlsplit(reply.headers["Location"])
    code = urllib.parse.parse_qs(back.query)["code"][0]
    assert urllib.parse.parse_qs(back.query)["state"] == ["s1"]
    await api.post(f"/app-manifests/{code}/conversions", token="")
    await api.post(f"/app-manifests/{code}/conversions", token="")  # 404: a code works once
    await api.get(f"/repos/{REPO}/installation", token=jwt_token)
    await api.get(f"/repos/{REPO}")
    await api.get("/repos/octo-org/nope")  # 404
    await api.get(f"/repos/{REPO}/contents/deploy/app.yaml")
    await api.get(f"/repos/{REPO}/contents/")
    await api.get(f"/repos/{REPO}/contents/link")
    await api.get(f"/repos/{REPO}/contents/missing")  # 404
    await api.get(f"/repos/{REPO}/contents/big.bin")  # 403 too_large
    await api.put(f"/repos/{REPO}/contents/new.txt",
                  {"message": "m", "content": base64.b64encode(b"n").decode()})  # fmt: skip
    await api.get(f"/repos/{REPO}/branches/main")
    await api.get(f"/repos/{REPO}/branches/nope")  # 404
    await api.get(f"/repos/{REPO}/commits/main")
    await api.get(f"/repos/{REPO}/commits/main", headers={"Accept": "application/vnd.github.sha"})
    await api.get(f"/repos/{REPO}/commits/nope")  # 422
    await api.get("/repos/octo-org/empty/commits/main")  # 409
    tree = await api.get(f"/repos/{REPO}/git/trees/main?recursive=1")
    await api.get(f"/repos/{REPO}/git/trees/{'0' * 40}")  # 404
    await api.get("/repos/octo-org/empty/git/trees/main")  # 409
    blob_sha = next(e["sha"] for e in tree.body["tree"] if e["type"] == "blob")
    await api.get(f"/repos/{REPO}/git/blobs/{blob_sha}")
    await api.get(f"/repos/{REPO}/git/blobs/xyz")  # 422
    await api.post(f"/repos/{REPO}/git/blobs", {"content": "hello", "encoding": "utf-8"})
    head = sim.branch_sha(REPO, "main")
    commit = await api.get(f"/repos/{REPO}/git/commits/{head}")
    new_tree = await api.post(f"/repos/{REPO}/git/trees", {
        "base_tree": commit.body["tree"]["sha"],
        "tree": [{"path": "deploy/app.yaml", "mode": "100644", "type": "blob", "content": "x\n"}],
    })  # fmt: skip
    await api.post(f"/repos/{REPO}/git/trees", {"tree": [{"path": "a", "mode": "1"}]})  # 422
    new_commit = await api.post(f"/repos/{REPO}/git/commits", {
        "message": "bump", "tree": new_tree.body["sha"], "parents": [head],
        "author": {"name": "A", "email": "a@example.com", "date": "2024-01-01T00:00:00Z"},
    })  # fmt: skip
    sha = new_commit.body["sha"]
    await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/bot", "sha": sha})
    await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/bot", "sha": sha})  # 422
    await api.get(f"/repos/{REPO}/git/ref/heads/bot")
    await api.get(f"/repos/{REPO}/git/ref/heads/nope")  # 404
    await api.get(f"/repos/{REPO}/git/matching-refs/heads/b")
    await api.patch(f"/repos/{REPO}/git/refs/heads/bot", {"sha": head})  # 422 not ff
    await api.patch(f"/repos/{REPO}/git/refs/heads/bot", {"sha": sha, "force": True})
    await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/tmp", "sha": sha})
    await api.delete(f"/repos/{REPO}/git/refs/heads/tmp")
    pr = await api.post(f"/repos/{REPO}/pulls", {"title": "Bump", "head": "octo-org:bot",
                                                 "base": "main", "body": None})  # fmt: skip
    await api.post(f"/repos/{REPO}/pulls", {"title": "Bump", "head": "octo-org:bot",
                                           "base": "main"})  # 422  # fmt: skip
    number = pr.body["number"]
    await api.get(f"/repos/{REPO}/pulls?head=octo-org:bot&state=all")
    await api.get(f"/repos/{REPO}/pulls/{number}")
    await api.patch(f"/repos/{REPO}/pulls/{number}", {"body": "new body"})
    await api.post(f"/repos/{REPO}/issues/{number}/labels", ["a", "b"])
    await api.put(f"/repos/{REPO}/issues/{number}/labels", {"labels": ["a"]})
    await api.get(f"/repos/{REPO}/issues/{number}/labels")
    await api.delete(f"/repos/{REPO}/issues/{number}/labels/a")
    await api.delete(f"/repos/{REPO}/issues/{number}/labels/a")  # 404
    await api.post(f"/repos/{REPO}/issues/{number}/comments", {"body": "hi"})
    sim.add_collaborator(REPO, "mona")
    sim.add_team(REPO, "reviewers")
    await api.post(f"/repos/{REPO}/issues/{number}/assignees", {"assignees": ["mona", "nobody"]})
    await api.post(f"/repos/{REPO}/pulls/{number}/requested_reviewers",
                   {"reviewers": ["mona"], "team_reviewers": ["reviewers"]})  # fmt: skip
    await api.post(f"/repos/{REPO}/pulls/{number}/requested_reviewers",
                   {"reviewers": ["nobody"]})  # 422  # fmt: skip
    await api.get(f"/repos/{REPO}/pulls/{number}")  # assignees and requested reviewers shown
    await api.post(f"/repos/{REPO}/releases", {"tag_name": "v1.0.0", "name": "One",
                                              "body": "Notes"})  # fmt: skip
    await api.post(f"/repos/{REPO}/releases", {"tag_name": "v1.0.0"})  # 422: exists
    sim.create_release(REPO, "v1.1.0", body="More", prerelease=True)
    await api.get(f"/repos/{REPO}/releases?per_page=1")  # paginated, newest first
    await api.get(f"/repos/{REPO}/issues?state=all")
    await api.get(f"/repos/{REPO}/labels")
    await api.post(f"/repos/{REPO}/labels", {"name": "deps", "color": "00ff00"})
    await api.post(f"/repos/{REPO}/labels", {"name": "bad", "color": "zz"})  # 422
    run = await api.post(f"/repos/{REPO}/check-runs", {"name": "c", "head_sha": sha,
                                                       "status": "in_progress"})  # fmt: skip
    await api.patch(f"/repos/{REPO}/check-runs/{run.body['id']}", {
        "conclusion": "success", "output": {"title": "t", "summary": "s", "text": "x"}})  # fmt: skip
    merge = f"/repos/{REPO}/pulls/{number}/merge"
    await api.put(merge, {"sha": head, "merge_method": "squash"})  # 409 head modified
    await api.put(merge, {"merge_method": "octopus"})  # 422
    await api.put(merge, {"sha": sha, "merge_method": "merge", "commit_title": "Merge it"})
    await api.put(merge, {})  # 405: already merged
    await api.get(f"/repos/{REPO}/pulls/{number}")  # merged: merged_by, merge_commit_sha
    await api.get(f"/repos/{REPO}/pulls?state=closed")
    await api.get(f"/repos/{REPO}", token="ghs_unknown")  # 401


async def test_every_route_matches_the_openapi_subset(github_sim, app_key, spec):
    app_id, private_pem, public_pem = app_key
    sim = github_sim.sim
    sim.register_app(app_id, public_pem, permissions=dict(PERMISSIONS))
    inst = sim.create_installation(app_id, "octo-org", [REPO, "octo-org/empty"])
    sim.create_repository(REPO, {"deploy/app.yaml": b"image: a:1\n", "big.bin": b"x" * (1 << 21)})
    sim.repo(REPO).git.set_ref("refs/heads/main", _with_symlink(sim))
    sim.create_repository("octo-org/empty", None)
    sim.exchanges = []
    async with aiohttp.ClientSession() as session:
        await _walk_every_route(Api(session, github_sim.url), sim, app_id, private_pem, inst)

    registry = Registry().with_resource(DOC_URI, Resource.from_contents(spec, DRAFT4))
    templates = {p: p for p in spec["paths"]}
    validated_ok: set[tuple[str, str]] = set()
    validated = 0
    failures = []
    for ex in sim.exchanges:
        if ex.route not in templates or ex.method.lower() not in spec["paths"][ex.route]:
            continue
        ctype = ex.content_type
        ref = _response_schema_ref(spec, ex.route, ex.method, ex.status, ctype)
        if ref is None:
            if 200 <= ex.status < 300 and ex.status != 204:
                failures.append(f"{ex.method} {ex.route} {ex.status} {ctype}: not documented")
            continue
        body = ex.body.decode() if ctype != "application/json" else json.loads(ex.body)
        validator = OAS30Validator({"$ref": DOC_URI + ref}, registry=registry,
                                   format_checker=oas30_format_checker)  # fmt: skip
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        for err in errors[:3]:
            path = "/".join(map(str, err.absolute_path))
            failures.append(f"{ex.method} {ex.route} {ex.status}: at {path}: {err.message[-400:]}")
        validated += 1
        if 200 <= ex.status < 300:
            validated_ok.add((ex.method, ex.route))
    for ex in sim.exchanges:
        if ex.status == 204 and (ex.method, ex.route) in _operations(spec):
            validated_ok.add((ex.method, ex.route))
    assert not failures, "\n".join(failures)
    assert validated_ok == _operations(spec), sorted(_operations(spec) - validated_ok)
    assert validated > len(validated_ok)  # error bodies were validated too


def _with_symlink(sim) -> str:
    """Add a symlink on main so the contents API's symlink form is exercised."""
    git = sim.repo(REPO).git
    head = git.ref("refs/heads/main")
    tree = git.build_tree(git.commit_tree(head), [("link", 0o120000, git.add_blob(b"deploy"))])
    return git.make_commit(tree=tree, parents=[head], message="link", author=("A", "a@b", 0),
                           committer=("A", "a@b", 0))  # fmt: skip
