"""The simulator's core behaviour: auth, git data, refs, contents, commits, pulls, labels, checks."""

from __future__ import annotations

import base64
import gzip
import io
import subprocess
import tarfile
from dataclasses import dataclass

import aiohttp
import pytest

from tests.githubsim import GitHubSim
from tests.githubsim.testkit import PERMISSIONS, Api, app_jwt

REPO = "octo-org/app"
FILES = {
    "README.md": b"# app\n",
    "deploy/app.yaml": b'image: nginx:1.25.0 # {"$imagepolicy": "flux-system:nginx"}\n',
    "deploy/nested/values.yaml": b"tag: 1.0.0\n",
}


@dataclass
class World:
    sim: GitHubSim
    api: Api
    app_id: int
    private_pem: str
    installation_id: int
    main_sha: str


@pytest.fixture
async def world(github_sim, app_key):
    app_id, private_pem, public_pem = app_key
    sim = github_sim.sim
    sim.register_app(app_id, public_pem, permissions=dict(PERMISSIONS))
    inst = sim.create_installation(app_id, "octo-org", [REPO])
    main_sha = sim.create_repository(REPO, dict(FILES))
    async with aiohttp.ClientSession() as session:
        api = Api(session, github_sim.url)
        reply = await api.post(f"/app/installations/{inst}/access_tokens",
                               token=app_jwt(app_id, private_pem))  # fmt: skip
        assert reply.status == 201, reply.body
        api.token = reply.body["token"]
        yield World(sim, api, app_id, private_pem, inst, main_sha)


# -- installations and tokens -----------------------------------------------------------------
async def test_token_creation_verifies_the_app_jwt(world):
    api, sim = world.api, world.sim
    url = f"/app/installations/{world.installation_id}/access_tokens"
    ok = await api.post(url, token=app_jwt(world.app_id, world.private_pem))
    assert ok.status == 201
    assert ok.body["token"].startswith("ghs_") and ok.body["expires_at"].endswith("Z")
    assert ok.body["permissions"]["contents"] == "write"
    too_long = app_jwt(world.app_id, world.private_pem, lifetime=3600)
    assert (await api.post(url, token=too_long)).status == 401
    expired = app_jwt(world.app_id, world.private_pem, now=sim.clock() - 1200)
    reply = await api.post(url, token=expired)
    assert reply.status == 401 and "exp" in reply.body["message"]
    hs256 = app_jwt(world.app_id, "not-the-app-key-" * 4, alg="HS256")
    assert (await api.post(url, token=hs256)).status == 401
    wrong_app = app_jwt(99, world.private_pem)
    assert (await api.post(url, token=wrong_app)).status == 401
    other_key = await _other_key_jwt(world.app_id)
    assert (await api.post(url, token=other_key)).status == 401
    assert (await api.post("/app/installations/424242/access_tokens",
                           token=app_jwt(world.app_id, world.private_pem))).status == 404  # fmt: skip


async def _other_key_jwt(app_id: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    return app_jwt(app_id, pem)


async def test_installation_token_expires_and_unknown_tokens_are_bad_credentials(world):
    api, sim = world.api, world.sim
    assert (await api.get(f"/repos/{REPO}")).status == 200
    start = sim.clock()
    sim.clock = lambda: start + sim.token_ttl + 1
    reply = await api.get(f"/repos/{REPO}")
    assert reply.status == 401 and reply.body["message"] == "Bad credentials"
    assert (await api.get(f"/repos/{REPO}", token="ghs_nope")).status == 401


async def test_installation_sees_only_its_repositories(world):
    api, sim = world.api, world.sim
    sim.create_repository("octo-org/secret", {"a": b"a"})
    sim.create_repository("other/app", {"a": b"a"})
    assert (await api.get("/repos/octo-org/secret")).status == 404
    assert (await api.get("/repos/other/app/git/trees/main")).status == 404
    listed = await api.get("/installation/repositories")
    assert [r["full_name"] for r in listed.body["repositories"]] == [REPO]
    assert listed.body["total_count"] == 1
    sim.add_repositories(world.installation_id, ["octo-org/secret"])
    assert (await api.get("/repos/octo-org/secret")).status == 200


async def test_app_endpoints_need_the_jwt(world):
    api = world.api
    jwt_token = app_jwt(world.app_id, world.private_pem)
    app = await api.get("/app", token=jwt_token)
    assert app.status == 200 and app.body["id"] == world.app_id
    installs = await api.get("/app/installations", token=jwt_token)
    assert [i["id"] for i in installs.body] == [world.installation_id]
    repo_inst = await api.get(f"/repos/{REPO}/installation", token=jwt_token)
    assert repo_inst.body["id"] == world.installation_id
    assert (await api.get("/app")).status == 401  # installation token is not a JWT


# -- reading git data ---------------------------------------------------------------------------
async def test_recursive_tree_and_blob_shas_are_real_git(world, tmp_path):
    api = world.api
    tree = await api.get(f"/repos/{REPO}/git/trees/main?recursive=1")
    assert tree.status == 200 and tree.body["truncated"] is False
    by_path = {e["path"]: e for e in tree.body["tree"]}
    assert set(by_path) == {"README.md", "deploy", "deploy/app.yaml", "deploy/nested",
                            "deploy/nested/values.yaml"}  # fmt: skip
    entry = by_path["deploy/app.yaml"]
    (tmp_path / "f").write_bytes(FILES["deploy/app.yaml"])
    hashed = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert entry["sha"] == hashed and entry["mode"] == "100644" and entry["type"] == "blob"
    assert entry["size"] == len(FILES["deploy/app.yaml"])
    blob = await api.get(f"/repos/{REPO}/git/blobs/{hashed}")
    assert base64.b64decode(blob.body["content"]) == FILES["deploy/app.yaml"]
    commit = await api.get(f"/repos/{REPO}/git/commits/{world.main_sha}")
    by_sha = await api.get(f"/repos/{REPO}/git/trees/{commit.body['tree']['sha']}")
    assert [e["path"] for e in by_sha.body["tree"]] == ["README.md", "deploy"]


async def test_tree_truncation_limit(world):
    world.sim.tree_entry_limit = 2
    tree = await world.api.get(f"/repos/{REPO}/git/trees/heads/main?recursive=1")
    assert tree.body["truncated"] is True and len(tree.body["tree"]) == 2


async def test_commits_ref_sha_media_type_etag_and_304(world):
    api, sim = world.api, world.sim
    sha_accept = {"Accept": "application/vnd.github.sha"}
    first = await api.get(f"/repos/{REPO}/commits/main", headers=sha_accept)
    assert first.status == 200 and first.body.decode() == world.main_sha
    assert first.headers["ETag"] == f'"{world.main_sha}"'
    used = int(first.headers["x-ratelimit-used"])
    again = await api.get(f"/repos/{REPO}/commits/main",
                          headers={**sha_accept, "If-None-Match": f'"{world.main_sha}"'})  # fmt: skip
    assert again.status == 304 and again.body == b""
    assert int(again.headers["x-ratelimit-used"]) == used  # 304s are free
    assert sim.counters["GET /repos/{owner}/{repo}/commits/{ref} 304"] == 1
    assert sim.counters["GET /repos/{owner}/{repo}/commits/{ref}"] == 2
    new = sim.push(REPO, "main", {"README.md": b"changed\n"})
    changed = await api.get(f"/repos/{REPO}/commits/main",
                            headers={**sha_accept, "If-None-Match": f'"{world.main_sha}"'})  # fmt: skip
    assert changed.status == 200 and changed.body.decode() == new
    as_json = await api.get(f"/repos/{REPO}/commits/main")
    assert as_json.body["sha"] == new and as_json.body["files"][0]["filename"] == "README.md"
    assert as_json.headers["ETag"] != changed.headers["ETag"]  # per representation


async def test_contents_api(world):
    api, sim = world.api, world.sim
    file = await api.get(f"/repos/{REPO}/contents/deploy/app.yaml?ref=main")
    assert file.body["type"] == "file"
    assert base64.b64decode(file.body["content"]) == FILES["deploy/app.yaml"]
    encoded = await api.get(f"/repos/{REPO}/contents/deploy%2Fapp.yaml")
    assert encoded.body["sha"] == file.body["sha"]
    root = await api.get(f"/repos/{REPO}/contents/")
    assert sorted(e["name"] for e in root.body) == ["README.md", "deploy"]
    assert (await api.get(f"/repos/{REPO}/contents/missing.yaml")).status == 404
    sim.push(REPO, "main", {"big.bin": b"x" * ((1 << 20) + 1)})
    big = await api.get(f"/repos/{REPO}/contents/big.bin")
    assert big.status == 403 and big.body["errors"][0]["code"] == "too_large"
    raw = await api.get(f"/repos/{REPO}/contents/big.bin",
                        headers={"Accept": "application/vnd.github.raw"})  # fmt: skip
    assert raw.status == 200 and len(raw.body) == (1 << 20) + 1


async def test_empty_repository_answers_409(world):
    api, sim = world.api, world.sim
    sim.create_repository("octo-org/empty", None)
    sim.add_repositories(world.installation_id, ["octo-org/empty"])
    for path in ("git/trees/main", "commits/main", "git/ref/heads/main", f"git/blobs/{'a' * 40}"):
        reply = await api.get(f"/repos/octo-org/empty/{path}")
        assert reply.status == 409, path
        assert reply.body["message"] == "Git Repository is empty."
    assert (await api.get("/repos/octo-org/empty")).body["default_branch"] == "main"


# -- writing ------------------------------------------------------------------------------------
async def _commit(api: Api, parent: str, files: dict[str, str | None]) -> str:
    parent_commit = await api.get(f"/repos/{REPO}/git/commits/{parent}")
    items = []
    for path, content in files.items():
        if content is None:
            items.append({"path": path, "mode": "100644", "type": "blob", "sha": None})
        else:
            items.append({"path": path, "mode": "100644", "type": "blob", "content": content})
    tree = await api.post(f"/repos/{REPO}/git/trees",
                          {"base_tree": parent_commit.body["tree"]["sha"], "tree": items})  # fmt: skip
    assert tree.status == 201, tree.body
    commit = await api.post(f"/repos/{REPO}/git/commits",
                            {"message": "bump", "tree": tree.body["sha"], "parents": [parent]})  # fmt: skip
    assert commit.status == 201, commit.body
    return commit.body["sha"]


async def test_multi_file_commit_and_branch_lifecycle(world):
    api, sim = world.api, world.sim
    sha = await _commit(api, world.main_sha, {"deploy/app.yaml": "image: nginx:1.26.0\n",
                                             "deploy/nested/values.yaml": None})  # fmt: skip
    assert sim.read_file(REPO, sha, "deploy/app.yaml") == b"image: nginx:1.26.0\n"
    assert sim.read_file(REPO, sha, "deploy/nested/values.yaml") is None
    assert sim.read_file(REPO, sha, "README.md") == FILES["README.md"]
    commit = await api.get(f"/repos/{REPO}/git/commits/{sha}")
    assert commit.body["author"]["name"] == "image-automation[bot]"
    created = await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/bot", "sha": sha})
    assert created.status == 201 and sim.branch_sha(REPO, "bot") == sha
    dup = await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/bot", "sha": sha})
    assert dup.status == 422 and dup.body["message"] == "Reference already exists"
    back = await api.patch(f"/repos/{REPO}/git/refs/heads/bot", {"sha": world.main_sha})
    assert back.status == 422 and back.body["message"] == "Update is not a fast forward"
    forced = await api.patch(f"/repos/{REPO}/git/refs/heads%2Fbot",
                             {"sha": world.main_sha, "force": True})  # fmt: skip
    assert forced.status == 200 and sim.branch_sha(REPO, "bot") == world.main_sha
    ff = await api.patch(f"/repos/{REPO}/git/refs/heads/bot", {"sha": sha})
    assert ff.status == 200
    matching = await api.get(f"/repos/{REPO}/git/matching-refs/heads/bo")
    assert [r["ref"] for r in matching.body] == ["refs/heads/bot"]
    assert (await api.get(f"/repos/{REPO}/git/ref/heads/nope")).status == 404
    assert (await api.delete(f"/repos/{REPO}/git/refs/heads/bot")).status == 204
    assert sim.branch_sha(REPO, "bot") is None


async def test_tree_edit_errors_are_422(world):
    api = world.api
    base = (await api.get(f"/repos/{REPO}/git/commits/{world.main_sha}")).body["tree"]["sha"]
    gone = await api.post(f"/repos/{REPO}/git/trees", {"base_tree": base, "tree": [
        {"path": "nope.yaml", "mode": "100644", "type": "blob", "sha": None}]})  # fmt: skip
    assert gone.status == 422
    both = await api.post(f"/repos/{REPO}/git/trees", {"base_tree": base, "tree": [
        {"path": "a", "mode": "100644", "type": "blob", "sha": "a" * 40, "content": "x"}]})  # fmt: skip
    assert both.status == 422
    bad_mode = await api.post(f"/repos/{REPO}/git/trees", {"tree": [
        {"path": "a", "mode": "100600", "type": "blob", "content": "x"}]})  # fmt: skip
    assert bad_mode.status == 422
    exec_file = await api.post(f"/repos/{REPO}/git/trees", {"base_tree": base, "tree": [
        {"path": "run.sh", "mode": "100755", "type": "blob", "content": "#!/bin/sh\n"}]})  # fmt: skip
    modes = {e["path"]: e["mode"] for e in exec_file.body["tree"]}
    assert modes["run.sh"] == "100755" and modes["deploy"] == "040000"


async def test_workflow_changes_need_workflows_permission(world):
    api, sim = world.api, world.sim
    base = (await api.get(f"/repos/{REPO}/git/commits/{world.main_sha}")).body["tree"]["sha"]
    reply = await api.post(f"/repos/{REPO}/git/trees", {"base_tree": base, "tree": [
        {"path": ".github/workflows/ci.yaml", "mode": "100644", "content": "on: push\n"}]})  # fmt: skip
    assert reply.status == 403
    assert reply.body["message"] == "Resource not accessible by integration"
    sim.apps[world.app_id].permissions["workflows"] = "write"
    inst = sim.create_installation(world.app_id, "octo-org", [REPO])
    token = sim.issue_token(inst)
    allowed = await api.post(f"/repos/{REPO}/git/trees", {"base_tree": base, "tree": [
        {"path": ".github/workflows/ci.yaml", "mode": "100644", "content": "on: push\n"}]},
        token=token)  # fmt: skip
    assert allowed.status == 201


async def test_blob_create_and_put_contents(world):
    api, sim = world.api, world.sim
    blob = await api.post(f"/repos/{REPO}/git/blobs",
                          {"content": base64.b64encode(b"\x00\x01").decode(), "encoding": "base64"})  # fmt: skip
    assert blob.status == 201 and sim.repo(REPO).git.blob(blob.body["sha"]) == b"\x00\x01"
    put = await api.put(f"/repos/{REPO}/contents/new.txt",
                        {"message": "add", "content": base64.b64encode(b"hi").decode()})  # fmt: skip
    assert put.status == 201 and sim.read_file(REPO, "main", "new.txt") == b"hi"
    again = await api.put(f"/repos/{REPO}/contents/new.txt",
                          {"message": "edit", "content": base64.b64encode(b"ho").decode()})  # fmt: skip
    assert again.status == 422  # sha of the replaced blob is required


async def test_missing_permission_is_403_not_404(world):
    api, sim = world.api, world.sim
    inst = sim.create_installation(world.app_id, "octo-org", [REPO],
                                   permissions={"contents": "read", "metadata": "read"})  # fmt: skip
    token = sim.issue_token(inst)
    reply = await api.post(f"/repos/{REPO}/git/refs",
                           {"ref": "refs/heads/x", "sha": world.main_sha}, token=token)  # fmt: skip
    assert reply.status == 403 and reply.body["message"] == "Resource not accessible by integration"
    assert (await api.get(f"/repos/{REPO}/git/trees/main", token=token)).status == 200


async def test_tarball_redirects_to_codeload_with_prefixed_gzip_tar(world):
    api = world.api
    redirect = await api.get(f"/repos/{REPO}/tarball/main", allow_redirects=False)
    assert redirect.status == 302 and "/_codeload/" in redirect.headers["Location"]
    followed = await api.get(f"/repos/{REPO}/tarball/main")
    assert followed.status == 200
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(followed.body))) as tar:
        names = {m.name: m for m in tar.getmembers() if m.isfile()}
        prefix = f"octo-org-app-{world.main_sha[:7]}/"
        assert set(names) == {prefix + p for p in FILES}
        data = tar.extractfile(names[prefix + "deploy/app.yaml"]).read()
    assert data == FILES["deploy/app.yaml"]


# -- pulls, labels, comments, check runs --------------------------------------------------------
async def test_pull_request_lifecycle(world):
    api, sim = world.api, world.sim
    sha = await _commit(api, world.main_sha, {"deploy/app.yaml": "image: nginx:1.26.0\n"})
    await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/bot", "sha": sha})
    created = await api.post(f"/repos/{REPO}/pulls",
                             {"title": "Bump", "head": "octo-org:bot", "base": "main", "body": "b"})  # fmt: skip
    assert created.status == 201 and created.body["head"]["sha"] == sha
    number = created.body["number"]
    dup = await api.post(f"/repos/{REPO}/pulls",
                         {"title": "Bump", "head": "octo-org:bot", "base": "main"})  # fmt: skip
    assert dup.status == 422
    assert dup.body["errors"][0]["message"] == "A pull request already exists for octo-org:bot."
    await api.post(f"/repos/{REPO}/git/refs", {"ref": "refs/heads/same", "sha": world.main_sha})
    empty = await api.post(f"/repos/{REPO}/pulls", {"title": "x", "head": "same", "base": "main"})
    assert empty.body["errors"][0]["message"] == "No commits between main and same"
    missing = await api.post(f"/repos/{REPO}/pulls", {"title": "x", "head": "nope", "base": "main"})
    assert missing.status == 422 and missing.body["errors"][0]["field"] == "head"
    found = await api.get(f"/repos/{REPO}/pulls?head=octo-org:bot&state=open&base=main")
    assert [p["number"] for p in found.body] == [number]
    assert (await api.get(f"/repos/{REPO}/pulls?head=octo-org:other")).body == []
    labels = await api.post(f"/repos/{REPO}/issues/{number}/labels", ["automation", "images"])
    assert [lab["name"] for lab in labels.body] == ["automation", "images"]
    labels = await api.put(f"/repos/{REPO}/issues/{number}/labels", {"labels": ["images"]})
    assert [lab["name"] for lab in labels.body] == ["images"]
    gone = await api.delete(f"/repos/{REPO}/issues/{number}/labels/images")
    assert gone.status == 200 and gone.body == []
    comment = await api.post(f"/repos/{REPO}/issues/{number}/comments", {"body": "closing"})
    assert comment.status == 201
    updated = await api.patch(f"/repos/{REPO}/pulls/{number}", {"title": "New", "state": "closed"})
    assert updated.body["state"] == "closed" and updated.body["title"] == "New"
    assert (await api.get(f"/repos/{REPO}/pulls?head=octo-org:bot")).body == []
    closed = await api.get(f"/repos/{REPO}/pulls?state=closed")
    assert [p["number"] for p in closed.body] == [number]
    [pr] = sim.pulls(REPO)
    assert pr["comments"] == [{"body": "closing", "user": "image-automation[bot]"}]
    assert pr["state"] == "closed" and pr["title"] == "New"


async def test_check_runs_store_output_and_annotations(world):
    api, sim = world.api, world.sim
    annotation = {"path": "deploy/app.yaml", "start_line": 1, "end_line": 1,
                  "annotation_level": "failure", "message": "bad marker"}  # fmt: skip
    run = await api.post(f"/repos/{REPO}/check-runs", {
        "name": "image-automation", "head_sha": world.main_sha, "status": "completed",
        "conclusion": "failure",
        "output": {"title": "t", "summary": "s", "annotations": [annotation] * 50}})  # fmt: skip
    assert run.status == 201 and run.body["conclusion"] == "failure"
    more = await api.patch(f"/repos/{REPO}/check-runs/{run.body['id']}", {
        "output": {"title": "t", "summary": "s", "annotations": [annotation] * 3}})  # fmt: skip
    assert more.status == 200 and more.body["output"]["annotations_count"] == 53
    too_many = await api.post(f"/repos/{REPO}/check-runs", {
        "name": "x", "head_sha": world.main_sha,
        "output": {"title": "t", "summary": "s", "annotations": [annotation] * 51}})  # fmt: skip
    assert too_many.status == 422
    [stored] = sim.check_runs(REPO)
    assert len(stored["annotations"]) == 53 and stored["output"]["summary"] == "s"


# -- merging pull requests ----------------------------------------------------------------------
def _git(sim: GitHubSim, *args: str) -> str:
    path = sim.repo(REPO).git.path
    return subprocess.run(["git", "--git-dir", str(path), *args], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


async def _diverged_pull(world: World) -> tuple[int, str, list[str]]:
    """A PR with two commits on `topic` while `main` moved on (disjoint files)."""
    sim = world.sim
    first = sim.push(REPO, "topic", {"deploy/app.yaml": b"image: nginx:1.26.0\n"}, message="one")
    second = sim.push(REPO, "topic", {"new.txt": b"new\n"}, message="two\n\nbody")
    base = sim.push(REPO, "main", {"README.md": b"# app, edited\n"}, message="docs")
    pr = await world.api.post(f"/repos/{REPO}/pulls", {"title": "Bump nginx",
                                                       "head": "octo-org:topic", "base": "main"})  # fmt: skip
    return pr.body["number"], base, [first, second]


def _merged_tree_ok(sim: GitHubSim, sha: str) -> None:
    assert sim.read_file(REPO, sha, "README.md") == b"# app, edited\n"
    assert sim.read_file(REPO, sha, "deploy/app.yaml") == b"image: nginx:1.26.0\n"
    assert sim.read_file(REPO, sha, "new.txt") == b"new\n"
    assert sim.branch_sha(REPO, "main") == sha


async def test_merge_commit_has_base_and_head_as_parents(world):
    api, sim = world.api, world.sim
    number, base, (_, head) = await _diverged_pull(world)
    got = await api.get(f"/repos/{REPO}/pulls/{number}")
    assert got.body["mergeable"] is True and got.body["mergeable_state"] == "clean"
    reply = await api.put(f"/repos/{REPO}/pulls/{number}/merge", {"sha": head})
    assert reply.status == 200 and reply.body["merged"] is True
    sha = reply.body["sha"]
    assert reply.body["message"] == "Pull Request successfully merged"
    assert _git(sim, "rev-list", "--parents", "-n1", sha).split() == [sha, base, head]
    assert _git(sim, "log", "-1", "--format=%s%n%b", sha) == (
        f"Merge pull request #{number} from octo-org/topic\nBump nginx"
    )
    assert _git(sim, "log", "-1", "--format=%an|%cn|%ce", sha) == (
        "image-automation[bot]|GitHub|noreply@github.com"
    )
    _merged_tree_ok(sim, sha)
    _git(sim, "fsck", "--strict")
    pr = (await api.get(f"/repos/{REPO}/pulls/{number}")).body
    assert (pr["state"], pr["merged"], pr["merge_commit_sha"]) == ("closed", True, sha)
    assert pr["merged_at"] and pr["closed_at"] and pr["mergeable"] is None
    assert pr["merged_by"]["login"] == "image-automation[bot]" and pr["head"]["sha"] == head
    listed = (await api.get(f"/repos/{REPO}/pulls?state=closed")).body
    assert listed[0]["merged_at"] == pr["merged_at"] and listed[0]["merge_commit_sha"] == sha
    issues = (await api.get(f"/repos/{REPO}/issues?state=closed")).body
    assert issues[0]["pull_request"]["merged_at"] == pr["merged_at"]
    again = await api.put(f"/repos/{REPO}/pulls/{number}/merge", {})
    assert again.status == 405 and again.body["message"] == "Pull Request is not mergeable"
    reopen = await api.patch(f"/repos/{REPO}/pulls/{number}", {"state": "open"})
    assert reopen.status == 422


async def test_squash_merge_is_one_commit_on_the_base(world):
    api, sim = world.api, world.sim
    number, base, _ = await _diverged_pull(world)
    reply = await api.put(f"/repos/{REPO}/pulls/{number}/merge", {"merge_method": "squash"})
    sha = reply.body["sha"]
    assert _git(sim, "rev-list", "--parents", "-n1", sha).split() == [sha, base]
    assert _git(sim, "log", "-1", "--format=%B", sha) == (
        f"Bump nginx (#{number})\n\n* one\n\n* two\n\nbody"
    )
    _merged_tree_ok(sim, sha)
    titled = await _second_pull(world)
    reply = await api.put(f"/repos/{REPO}/pulls/{titled}/merge", {
        "merge_method": "squash", "commit_title": "Title", "commit_message": "Message"})  # fmt: skip
    assert _git(sim, "log", "-1", "--format=%B", reply.body["sha"]) == "Title\n\nMessage"


async def _second_pull(world: World) -> int:
    world.sim.push(REPO, "second", {"second.txt": b"2\n"})
    pr = await world.api.post(f"/repos/{REPO}/pulls", {"title": "Second", "head": "octo-org:second",
                                                       "base": "main"})  # fmt: skip
    return pr.body["number"]


async def test_rebase_merge_replays_each_commit(world):
    api, sim = world.api, world.sim
    number, base, originals = await _diverged_pull(world)
    reply = await api.put(f"/repos/{REPO}/pulls/{number}/merge", {"merge_method": "rebase"})
    sha = reply.body["sha"]
    replayed = _git(sim, "rev-list", "--reverse", f"{base}..{sha}").split()
    assert len(replayed) == 2 and not set(replayed) & set(originals)
    assert _git(sim, "rev-list", "--parents", "-n1", replayed[0]).split() == [replayed[0], base]
    assert [_git(sim, "log", "-1", "--format=%s|%an|%cn", c) for c in replayed] == [
        "one|Alice|GitHub",
        "two|Alice|GitHub",
    ]
    _merged_tree_ok(sim, sha)
    assert (await api.get(f"/repos/{REPO}/pulls/{number}")).body["merge_commit_sha"] == sha


async def test_merge_refusals(world):
    api, sim = world.api, world.sim
    sim.push(REPO, "topic", {"README.md": b"theirs\n"})
    pr = await api.post(f"/repos/{REPO}/pulls", {"title": "T", "head": "octo-org:topic",
                                                 "base": "main"})  # fmt: skip
    number, head = pr.body["number"], pr.body["head"]["sha"]
    url = f"/repos/{REPO}/pulls/{number}/merge"
    stale = await api.put(url, {"sha": world.main_sha})
    assert stale.status == 409
    assert stale.body["message"] == "Head branch was modified. Review and try the merge again."
    assert (await api.put(url, {"merge_method": "fast-forward"})).status == 422
    sim.push(REPO, "main", {"README.md": b"ours\n"})  # same file, different change: conflict
    assert (await api.get(f"/repos/{REPO}/pulls/{number}")).body["mergeable"] is False
    for method in ("merge", "squash", "rebase"):
        refused = await api.put(url, {"merge_method": method, "sha": head})
        assert refused.status == 405 and refused.body["message"] == "Pull Request is not mergeable"
    assert sim.pulls(REPO)[0]["state"] == "open"
    await api.patch(f"/repos/{REPO}/pulls/{number}", {"state": "closed"})
    assert (await api.put(url, {})).status == 405
    sim.create_installation(world.app_id, "octo-org", [REPO], permissions={"contents": "read"},
                            installation_id=4242)  # fmt: skip
    assert (await api.put(url, {}, token=sim.issue_token(4242))).status == 403
