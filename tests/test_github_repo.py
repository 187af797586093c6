"""Repo against the GitHub simulator: head checks, trees, blobs, tarballs, commits, branches,
and the request budgets of issue 4."""

from __future__ import annotations

import contextlib
import io
import logging
import tarfile
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from gidgethub import sansio

from bot import metrics
from bot.github.auth import AppCredentials
from bot.github.client import AppClient, GitHubClient
from bot.github.errors import (
    BranchMoved,
    EmptyRepository,
    GitHubError,
    NotFastForward,
    NotFound,
    WorkflowFilesRefused,
)
from bot.github.repo import Repo
from bot.github.tarball import extract_blobs, git_blob_sha
from bot.github.trees import BlobCache
from tests.githubsim import GitHubSim
from tests.githubsim.gitstore import MODE_EXEC, MODE_SUBMODULE, MODE_SYMLINK
from tests.test_github_client import answer, make_client

REPO = "octo-org/app"


@dataclass
class Env:
    sim: GitHubSim
    gh: GitHubClient
    installation_id: int
    sleeps: list[float]

    def repo(self, name: str = REPO, blobs: BlobCache | None = None) -> Repo:
        return Repo(self.gh, name, blobs=blobs if blobs is not None else BlobCache())

    def cost(self) -> int:
        """Requests GitHub would count: everything but 304s and token minting."""
        counters = self.sim.counters
        total = sum(v for k, v in counters.items() if not k.endswith(" 304"))
        total -= sum(v for k, v in counters.items() if k.endswith(" 304"))
        return total - counters["POST /app/installations/{installation_id}/access_tokens"]

    def requests(self) -> int:
        return (
            sum(v for k, v in self.sim.counters.items() if not k.endswith(" 304"))
            - (self.sim.counters["POST /app/installations/{installation_id}/access_tokens"])
        )


@contextlib.asynccontextmanager
async def open_env(github_sim, app_key) -> AsyncIterator[Env]:
    """An installation of the app on octo-org/app (and octo-org/empty) with its client."""
    sim = github_sim.sim
    app_id, private_pem, public_pem = app_key
    sim.register_app(app_id=app_id, public_key_pem=public_pem)
    inst = sim.create_installation(
        app_id, account="octo-org", repositories=[REPO, "octo-org/empty"]
    )
    creds = AppCredentials(app_id=str(app_id), private_key=private_pem, base_url=github_sim.url)
    async with aiohttp.ClientSession() as session:
        tokens = AppClient(session, creds=creds).token_cache()
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:  # retries are asserted, not waited for
            sleeps.append(seconds)

        gh = GitHubClient(
            session,
            creds=creds,
            tokens=tokens,
            installation_id=inst,
            write_interval=0.0,
            sleep=sleep,
        )
        yield Env(sim=sim, gh=gh, installation_id=inst, sleeps=sleeps)


@pytest.fixture
async def env(github_sim, app_key):
    async with open_env(github_sim, app_key) as opened:
        yield opened


def set_tree_entry(sim: GitHubSim, branch: str, path: str, mode: int, data: bytes | str) -> str:
    """Commit one entry with a special mode (symlink, executable, submodule) as a person."""
    git = sim.repo(REPO).git
    parent = git.ref(f"refs/heads/{branch}")
    sha = data if isinstance(data, str) else git.add_blob(data)
    tree = git.build_tree(git.commit_tree(parent), [(path, mode, sha)])
    person = ("Alice", "alice@example.com", 1_700_000_000)
    commit = git.make_commit(tree=tree, parents=[parent], message="m", author=person,
                             committer=person)  # fmt: skip
    git.set_ref(f"refs/heads/{branch}", commit)
    return commit


# -- head check ------------------------------------------------------------------------


async def test_head_returns_the_branch_sha_and_none_when_unchanged(env):
    first = env.sim.create_repository(REPO, files={"a.yaml": b"a: 1\n"})
    repo = env.repo()
    assert await repo.head("main") == first
    env.sim.reset_counters()
    assert await repo.head("main", known_sha=first) is None
    assert env.sim.counters["GET /repos/{owner}/{repo}/commits/{ref} 304"] == 1
    assert env.cost() == 0
    second = env.sim.push(REPO, "main", {"a.yaml": b"a: 2\n"})
    assert await repo.head("main", known_sha=first) == second


@pytest.mark.parametrize(
    ("full_name", "branch"),
    [
        ("o/r", "main"),
        ("octo-org/my.repo_x", "feature/a+b"),
        ("o/r", "release/1.0 x%20y#?&"),
        ("o/r", "ünï{c}ode"),
        ("o/r", "a:b@c!$&'()*,;="),
    ],
)
async def test_the_head_check_url_is_the_template_expansion(full_name: str, branch: str):
    """The conditional head check puts its path together by hand (it is on every run's
    path); it must be byte for byte what the URL template gives, and keep its route label."""
    client, _minter, _sleeps = make_client(lambda *_: answer(304))
    repo = Repo(client, full_name, blobs=BlobCache())
    before = metrics_value(client, "/repos/{owner}/{repo}/commits/{ref}")
    assert await repo.head(branch, known_sha="a" * 40) is None
    owner, name = full_name.split("/")
    expected = sansio.format_url(
        "/repos/{owner}/{repo}/commits/{+ref}",
        {"owner": owner, "repo": name, "ref": urllib.parse.quote(branch, safe="/")},
        base_url=client.base_url,
    )
    assert [sent.url for sent in client.sent] == [expected]
    assert client.sent[0].headers["if-none-match"] == f'"{"a" * 40}"'
    assert metrics_value(client, "/repos/{owner}/{repo}/commits/{ref}") == before + 1


def metrics_value(client: GitHubClient, route: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "image_automation_github_requests_total", {"route": route, "status": "304"}
    )
    return value or 0.0


async def test_head_of_branch_with_slash(env):
    env.sim.create_repository(REPO, files={"a": b"a"})
    sha = env.sim.push(REPO, "image-automation/podinfo", {"b": b"b"})
    assert await env.repo().head("image-automation/podinfo") == sha


async def test_head_of_empty_repository_and_missing_branch(env):
    env.sim.create_repository("octo-org/empty")
    with pytest.raises(EmptyRepository):
        await env.repo("octo-org/empty").head("main")
    env.sim.create_repository(REPO, files={"a": b"a"})
    with pytest.raises(NotFound):
        await env.repo().head("no-such-branch")


async def test_repository_outside_the_installation_is_not_found(env):
    env.sim.create_repository("octo-org/secret", files={"a": b"a"})
    with pytest.raises(NotFound):
        await env.repo("octo-org/secret").head("main")


async def test_default_branch(env):
    env.sim.create_repository(REPO, files={"a": b"a"}, default_branch="trunk")
    assert await env.repo().default_branch() == "trunk"


# -- trees -----------------------------------------------------------------------------


async def test_tree_lists_blobs_with_modes_and_skips_submodules(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a", "dir/b.yaml": b"bb"})
    set_tree_entry(env.sim, "main", "run.sh", MODE_EXEC, b"#!/bin/sh\n")
    set_tree_entry(env.sim, "main", "vendor/lib", MODE_SUBMODULE, "1" * 40)
    head = set_tree_entry(env.sim, "main", "link.yaml", MODE_SYMLINK, b"dir/b.yaml")
    tree = await env.repo().tree(head)
    assert set(tree.entries) == {"a.yaml", "dir/b.yaml", "run.sh", "link.yaml"}
    assert tree.entries["run.sh"].mode == "100755"
    assert tree.entries["link.yaml"].mode == "120000"
    assert tree.entries["dir/b.yaml"].sha == git_blob_sha(b"bb")
    assert tree.entries["dir/b.yaml"].size == 2
    assert tree.commit_sha == head


async def test_truncated_tree_is_walked_by_subtree(env):
    files = {f"d{i}/e{j}/f{k}.yaml": b"%d%d%d" % (i, j, k) for i in range(3) for j in range(3)
             for k in range(3)}  # fmt: skip
    head = env.sim.create_repository(REPO, files=files)
    full = await env.repo().tree(head)
    env.sim.tree_entry_limit = 10  # every recursive listing of more than 10 entries truncates
    env.sim.reset_counters()
    walked = await env.repo().tree(head)
    assert env.sim.counters["GET /repos/{owner}/{repo}/git/trees/{tree_sha}"] > 1
    assert {p: e.sha for p, e in walked.entries.items()} == {
        p: e.sha for p, e in full.entries.items()
    }
    assert set(walked.entries) == set(files)
    assert walked.tree_sha == full.tree_sha


async def test_tree_of_empty_repository(env):
    env.sim.create_repository("octo-org/empty")
    with pytest.raises(EmptyRepository):
        await env.repo("octo-org/empty").tree("main")


# -- reading blobs ---------------------------------------------------------------------


async def test_few_unknown_blobs_are_read_one_by_one_then_served_from_cache(env):
    files = {"a.yaml": b"a: 1\n", "b.yaml": b"b: 2\n", "same.yaml": b"a: 1\n"}
    head = env.sim.create_repository(REPO, files=files)
    repo = env.repo()
    tree = await repo.tree(head)
    env.sim.reset_counters()
    assert await repo.read_blobs(tree, files) == files
    assert env.sim.counters["GET /repos/{owner}/{repo}/git/blobs/{file_sha}"] == 2  # 2 distinct
    env.sim.reset_counters()
    assert await repo.read_blobs(tree, ["a.yaml", "missing.yaml"]) == {"a.yaml": b"a: 1\n"}
    assert env.requests() == 0


async def test_many_unknown_blobs_come_from_one_tarball(env):
    files = {f"apps/app{i}.yaml": f"image: app:{i}\n".encode() for i in range(20)}
    files["other.txt"] = b"not wanted"
    head = env.sim.create_repository(REPO, files=files)
    repo = env.repo()
    tree = await repo.tree(head)
    env.sim.reset_counters()
    wanted = [p for p in files if p.startswith("apps/")]
    assert await repo.read_blobs(tree, wanted) == {p: files[p] for p in wanted}
    assert env.sim.counters["GET /repos/{owner}/{repo}/git/blobs/{file_sha}"] == 0
    assert env.sim.counters["GET /repos/{owner}/{repo}/tarball/{ref}"] == 1
    assert git_blob_sha(b"not wanted") not in repo.blobs  # only wanted paths are kept


async def test_failed_tarball_falls_back_to_blob_reads(env):
    files = {f"f{i}.yaml": b"%d" % i for i in range(10)}
    head = env.sim.create_repository(REPO, files=files)
    repo = env.repo()
    tree = await repo.tree(head)
    env.sim.inject(method="GET", route="/repos/{owner}/{repo}/tarball/{ref}", status=404,
                   body={"message": "Not Found"})  # fmt: skip
    assert await repo.read_blobs(tree, files) == files
    assert env.sim.counters["GET /repos/{owner}/{repo}/git/blobs/{file_sha}"] == 10


async def test_symlinks_resolve_inside_the_tree_or_are_skipped(env):
    env.sim.create_repository(REPO, files={"real/app.yaml": b"image: a:1\n", "dir/x": b"x"})
    set_tree_entry(env.sim, "main", "link.yaml", MODE_SYMLINK, b"real/app.yaml")
    set_tree_entry(env.sim, "main", "real/rel.yaml", MODE_SYMLINK, b"../link.yaml")
    set_tree_entry(env.sim, "main", "escape.yaml", MODE_SYMLINK, b"../../etc/passwd")
    set_tree_entry(env.sim, "main", "absolute.yaml", MODE_SYMLINK, b"/etc/passwd")
    set_tree_entry(env.sim, "main", "to-dir.yaml", MODE_SYMLINK, b"dir")
    set_tree_entry(env.sim, "main", "loop1", MODE_SYMLINK, b"loop2")
    head = set_tree_entry(env.sim, "main", "loop2", MODE_SYMLINK, b"loop1")
    repo = env.repo()
    tree = await repo.tree(head)
    paths = ["link.yaml", "real/rel.yaml", "escape.yaml", "absolute.yaml", "to-dir.yaml", "loop1"]
    got = await repo.read_blobs(tree, paths)
    assert got == {"link.yaml": b"image: a:1\n", "real/rel.yaml": b"image: a:1\n"}
    assert tree.links == {"link.yaml": "real/app.yaml", "real/rel.yaml": "real/app.yaml"}


async def test_files_over_the_size_limit_are_not_read(env):
    head = env.sim.create_repository(REPO, files={"big.yaml": b"x" * 1000, "small.yaml": b"y"})
    repo = env.repo()
    tree = await repo.tree(head)
    env.sim.reset_counters()
    assert await repo.read_blobs(tree, ["big.yaml", "small.yaml"], max_bytes=100) == {
        "small.yaml": b"y"
    }
    assert env.sim.counters["GET /repos/{owner}/{repo}/git/blobs/{file_sha}"] == 1


def _tar(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def test_tarball_extraction_strips_top_dir_and_verifies_blob_shas():
    archive = _tar(
        {"o-r-abc/a.yaml": b"a", "o-r-abc/b.yaml": b"tampered", "o-r-abc/c.yaml": b"c"},
        symlinks={"o-r-abc/l.yaml": "a.yaml"},
    )
    wanted = {
        "a.yaml": git_blob_sha(b"a"),
        "b.yaml": git_blob_sha(b"original"),
        "l.yaml": git_blob_sha(b"a.yaml"),
        "gone.yaml": git_blob_sha(b"x"),
    }
    assert extract_blobs(archive, wanted) == {"a.yaml": b"a", "l.yaml": b"a.yaml"}


def test_git_blob_sha_matches_git():
    assert git_blob_sha(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


# -- writing ---------------------------------------------------------------------------


async def test_commit_writes_all_files_in_one_commit_keeping_modes(env):
    env.sim.create_repository(REPO, files={"a.yaml": b"a: 1\r\n", "keep.yaml": b"k"})
    head = set_tree_entry(env.sim, "main", "run.sh", MODE_EXEC, b"#!/bin/sh\necho 1\n")
    repo = env.repo()
    base = await repo.tree(head)
    env.sim.reset_counters()
    sha = await repo.commit(
        base=base,
        files={
            "a.yaml": b"\xef\xbb\xbfa: 2\r\n",
            "run.sh": b"#!/bin/sh\necho 2\n",
            "new/dir/c.yaml": b"c",
            "binary.bin": b"\x00\xff\xfe binary",
        },
        message="Update images",
        author=("image-automation", "bot@example.com"),
    )
    assert env.sim.counters["POST /repos/{owner}/{repo}/git/trees"] == 1
    assert env.sim.counters["POST /repos/{owner}/{repo}/git/commits"] == 1
    assert env.sim.counters["POST /repos/{owner}/{repo}/git/blobs"] == 1  # only the binary
    assert env.sim.read_file(REPO, sha, "a.yaml") == b"\xef\xbb\xbfa: 2\r\n"
    assert env.sim.read_file(REPO, sha, "binary.bin") == b"\x00\xff\xfe binary"
    assert env.sim.read_file(REPO, sha, "keep.yaml") == b"k"
    assert env.sim.read_file(REPO, sha, "new/dir/c.yaml") == b"c"
    after = await repo.tree(sha)
    assert after.entries["run.sh"].mode == "100755"
    info = env.sim.repo(REPO).git.commit_info(sha)
    assert [p.decode() for p in info.parents] == [head]
    assert info.author.startswith(b"image-automation <bot@example.com>")
    assert env.sim.branch_sha(REPO, "main") == head  # committing moves no branch


async def test_commit_refuses_workflow_files_before_any_request(env):
    head = env.sim.create_repository(REPO, files={".github/workflows/ci.yml": b"on: push\n"})
    repo = env.repo()
    base = await repo.tree(head)
    env.sim.reset_counters()
    with pytest.raises(WorkflowFilesRefused) as info:
        await repo.commit(
            base=base,
            files={"./.github/workflows/ci.yml": b"x", "ok.yaml": b"y"},
            message="m",
            author=None,
        )
    assert info.value.paths == [".github/workflows/ci.yml"]
    assert ".github/workflows/ci.yml" in str(info.value)
    assert env.requests() == 0


async def test_commit_through_a_symlink_writes_its_target(env):
    env.sim.create_repository(REPO, files={"real.yaml": b"v: 1\n"})
    head = set_tree_entry(env.sim, "main", "link.yaml", MODE_SYMLINK, b"real.yaml")
    repo = env.repo()
    base = await repo.tree(head)
    await repo.read_blobs(base, ["link.yaml"])
    sha = await repo.commit(base=base, files={"link.yaml": b"v: 2\n"}, message="m", author=None)
    assert env.sim.read_file(REPO, sha, "real.yaml") == b"v: 2\n"
    assert (await repo.tree(sha)).entries["link.yaml"].mode == "120000"


async def test_commit_with_unchanged_content_sends_nothing(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    repo = env.repo()
    base = await repo.tree(head)
    env.sim.reset_counters()
    assert await repo.commit(base=base, files={"a.yaml": b"a"}, message="m", author=None) == head
    assert env.requests() == 0


# -- branches --------------------------------------------------------------------------


async def _bot_commit(repo: Repo, head: str, content: bytes) -> str:
    base = await repo.tree(head)
    return await repo.commit(base=base, files={"a.yaml": content}, message="m", author=None)


async def test_create_branch_then_force_move_while_it_is_ours(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    repo = env.repo()
    assert await repo.branch_sha("bot") is None
    c1 = await _bot_commit(repo, head, b"1")
    await repo.set_branch("bot", c1, expected=None, force=True)
    assert env.sim.branch_sha(REPO, "bot") == c1
    assert await repo.branch_sha("bot") == c1
    new_base = env.sim.push(REPO, "main", {"other": b"o"})
    c2 = await _bot_commit(repo, new_base, b"2")
    env.sim.reset_counters()
    await repo.set_branch("bot", c2, expected=c1, force=True)  # rebuilt, not a descendant
    assert env.sim.branch_sha(REPO, "bot") == c2
    assert env.sim.counters["GET /repos/{owner}/{repo}/commits/{ref} 304"] == 1
    assert env.cost() == 1  # the compare is free, only the move counts


async def test_branch_someone_pushed_to_is_left_alone(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    repo = env.repo()
    c1 = await _bot_commit(repo, head, b"1")
    await repo.set_branch("bot", c1, expected=None, force=True)
    human = env.sim.push(REPO, "bot", {"human.txt": b"mine"})
    c2 = await _bot_commit(repo, head, b"2")
    with pytest.raises(BranchMoved) as info:
        await repo.set_branch("bot", c2, expected=c1, force=True)
    assert info.value.actual == human and info.value.expected == c1
    assert env.sim.branch_sha(REPO, "bot") == human


async def test_creating_an_existing_branch_reports_where_it_is(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    env.sim.push(REPO, "bot", {"x": b"x"})
    existing = env.sim.branch_sha(REPO, "bot")
    repo = env.repo()
    with pytest.raises(BranchMoved) as info:
        await repo.set_branch("bot", head, expected=None, force=False)
    assert info.value.actual == existing


async def test_deleted_branch_counts_as_moved(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    repo = env.repo()
    c1 = await _bot_commit(repo, head, b"1")
    await repo.set_branch("bot", c1, expected=None, force=True)
    env.sim.delete_branch(REPO, "bot")
    with pytest.raises(BranchMoved) as info:
        await repo.set_branch("bot", c1, expected=c1, force=True)
    assert info.value.actual is None


async def test_fast_forward_moves_only_forward(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    repo = env.repo()
    ahead = await _bot_commit(repo, head, b"1")
    await repo.fast_forward("main", ahead)
    assert env.sim.branch_sha(REPO, "main") == ahead
    sideways = await _bot_commit(repo, head, b"2")  # parent is the old head
    with pytest.raises(NotFastForward):
        await repo.fast_forward("main", sideways)
    assert env.sim.branch_sha(REPO, "main") == ahead


async def test_set_branch_without_force_reports_not_fast_forward(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    repo = env.repo()
    c1 = await _bot_commit(repo, head, b"1")
    await repo.set_branch("bot", c1, expected=None, force=False)
    c2 = await _bot_commit(repo, head, b"2")
    with pytest.raises(NotFastForward):
        await repo.set_branch("bot", c2, expected=c1, force=False)


# -- retries against the simulator -----------------------------------------------------


async def test_injected_faults_are_retried_transparently(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    env.sim.inject(method="GET", route="/repos/{owner}/{repo}/git/trees/{tree_sha}", status=502)
    env.sim.inject(method="POST", route="/repos/{owner}/{repo}/git/trees", status=403,
                   headers={"retry-after": "3"})  # fmt: skip
    repo = env.repo()
    base = await repo.tree(head)
    sha = await repo.commit(base=base, files={"a.yaml": b"b"}, message="m", author=None)
    assert env.sim.read_file(REPO, sha, "a.yaml") == b"b"
    assert env.sleeps == [1.0, 3.0]


async def test_expired_token_is_refreshed(env):
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    repo = env.repo()
    await repo.head("main")
    env.sim.tokens.clear()  # GitHub forgot the token (revoked / expired early)
    assert await repo.head("main") == head
    assert env.sim.counters["POST /app/installations/{installation_id}/access_tokens"] == 2


# -- request budgets (issue 4) ---------------------------------------------------------


def _big_repo_files(n: int = 2000) -> dict[str, bytes]:
    files = {f"clusters/c{i // 100}/app{i}.yaml": f"name: app{i}\n".encode() for i in range(n)}
    files["clusters/c0/app0.yaml"] = b'image: ghcr.io/x/app:1.0.0 # {"$imagepolicy": "ns:p"}\n'
    return files


async def _run_once(repo: Repo, known_head: str | None, bot_head: str | None) -> tuple:
    """Read everything, change one file, commit, move the bot branch: one reconcile's I/O."""
    head = await repo.head("main", known_sha=known_head)
    if head is None:
        return known_head, bot_head
    tree = await repo.tree(head)
    contents = await repo.read_blobs(tree, [p for p in tree.entries if p.endswith(".yaml")])
    old = contents["clusters/c0/app0.yaml"]
    new = old.replace(b"app:1.0.0", b"app:1.0.%d" % (old.count(b"1") + 1))
    commit = await repo.commit(
        base=tree, files={"clusters/c0/app0.yaml": new}, message="bump", author=None
    )
    await repo.set_branch("bot", commit, expected=bot_head, force=True)
    return head, commit


async def test_budget_cold_cache_first_run(env):
    env.sim.create_repository(REPO, files=_big_repo_files())
    repo = env.repo()
    await env.gh._tokens.token(env.installation_id)
    env.sim.reset_counters()
    await _run_once(repo, None, None)
    # head + tree + tarball (redirect + download) + tree + commit + ref create
    assert env.requests() <= 7, env.sim.counters
    assert env.sim.counters["GET /repos/{owner}/{repo}/git/blobs/{file_sha}"] == 0


async def test_budget_warm_cache_one_file_changed(env):
    env.sim.create_repository(REPO, files=_big_repo_files())
    repo = env.repo(blobs=BlobCache())
    known, bot = await _run_once(repo, None, None)
    env.sim.push(REPO, "main", {"clusters/c5/app500.yaml": b"name: changed\n"})
    env.sim.reset_counters()
    await _run_once(repo, known, bot)
    # head + tree + 1 blob + tree + commit + (free 304 compare) + ref update
    assert env.cost() <= 6, env.sim.counters
    assert env.requests() <= 7, env.sim.counters
    assert env.sim.counters["GET /repos/{owner}/{repo}/git/blobs/{file_sha}"] == 1
    assert env.sim.counters["GET /repos/{owner}/{repo}/tarball/{ref}"] == 0


async def test_budget_nothing_changed_is_one_304(env):
    env.sim.create_repository(REPO, files=_big_repo_files(50))
    repo = env.repo()
    known, bot = await _run_once(repo, None, None)
    env.sim.reset_counters()
    assert await _run_once(repo, known, bot) == (known, bot)
    assert env.requests() == 1
    assert env.sim.counters["GET /repos/{owner}/{repo}/commits/{ref} 304"] == 1
    assert env.cost() == 0


# -- secrets ---------------------------------------------------------------------------


async def test_secrets_stay_out_of_logs_errors_and_reprs(env, app_key, caplog):
    caplog.set_level(logging.DEBUG)
    _, private_pem, _ = app_key
    head = env.sim.create_repository(REPO, files={"a.yaml": b"a"})
    repo = env.repo()
    await repo.head("main")
    tokens = set(env.sim.tokens)
    env.sim.tokens.clear()  # forces a 401 and a refresh
    env.sim.inject(method="GET", route="/repos/{owner}/{repo}/git/trees/{tree_sha}", status=502)
    await repo.tree(head)
    tokens |= set(env.sim.tokens)
    errors = []
    for call in (repo.head("missing"), env.repo("octo-org/other").tree(head)):
        with pytest.raises(GitHubError) as info:
            await call
        errors += [str(info.value), repr(info.value)]
    texts = [caplog.text, *errors, repr(env.gh), repr(env.gh._tokens), repr(repo)]
    texts.append(repr(AppCredentials(app_id="1", private_key=private_pem)))
    key_lines = [line for line in private_pem.splitlines() if "PRIVATE KEY" not in line]
    assert len(tokens) == 2
    for text in texts:
        assert not any(token in text for token in tokens)
        assert not any(line in text for line in key_lines)


def test_the_tree_cache_is_bounded_by_files_and_drops_the_least_recently_used():
    from bot.github.trees import Tree, TreeCache, TreeEntry

    def tree(commit: str, files: int) -> Tree:
        entries = {
            f"f{i}": TreeEntry(f"f{i}", "100644", "blob", f"{i:040x}", 1) for i in range(files)
        }
        return Tree(commit_sha=commit, tree_sha="t" + commit, entries=entries)

    cache = TreeCache(max_entries=10)
    cache.put(tree("a", 4))
    cache.put(tree("b", 4))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put(tree("c", 4))  # 12 files: b, the least recently used, goes
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    cache.put(tree("huge", 11))  # larger than the whole cache: not kept
    assert cache.get("huge") is None and len(cache) == 2
