"""One repository over the REST API: read its files, write one commit, move branches.

No clone. Reading is: a head check (free when nothing changed), the tree in
one request, then only the blobs not already in the content-addressed
`BlobCache` (one tarball instead when many are unknown). Writing is one
commit for all files through the Git Data API, then a branch move whose
compare-and-swap check is itself a free conditional request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from bot import metrics
from bot.github.client import GitHubClient, uncached
from bot.github.errors import (
    BranchMoved,
    GitHubError,
    NotFastForward,
    NotFound,
    Unreachable,
    ValidationFailed,
    WorkflowFilesRefused,
)
from bot.github.tarball import TarballError, extract_blobs, git_blob_sha
from bot.github.trees import (
    FILE_MODE,
    SYMLINK_MODE,
    BlobCache,
    Tree,
    TreeCache,
    TreeEntry,
    is_workflow_file,
    link_target,
    normalise_path,
)

log = logging.getLogger(__name__)

SHA_MEDIA_TYPE = "application/vnd.github.sha"
#: More unknown blobs than this in one read → one tarball instead of per-blob reads.
TARBALL_THRESHOLD = 8
#: Symlink chains longer than this are treated as broken (git itself allows ~40).
MAX_SYMLINK_HOPS = 8
DEFAULT_MAX_BYTES = 5 << 20


_HEAD_TEMPLATE = "/repos/{owner}/{repo}/commits/{+ref}"
_HEAD_ROUTE = metrics.template_route(_HEAD_TEMPLATE)


def _quote(value: str) -> str:
    # Our own percent-encoding, then RFC 6570 reserved expansion ({+x}) keeps
    # the slashes of branch names and paths but nothing that would break the URL.
    return urllib.parse.quote(value, safe="/")


def split_full_name(full_name: str) -> tuple[str, str]:
    """``(owner, name)`` of a GitHub repository's ``owner/name``; ValueError if it is not one."""
    owner, sep, name = full_name.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValueError(f"repository name {full_name!r} is not of the form owner/name")
    return owner, name


class Repo:
    """Reading and writing one repository (`owner/name`) through an installation's client."""

    def __init__(
        self,
        gh: GitHubClient,
        full_name: str,
        *,
        blobs: BlobCache,
        trees: TreeCache | None = None,
        tarball_threshold: int = TARBALL_THRESHOLD,
        read_concurrency: int = 4,
    ) -> None:
        self.owner, self.name = split_full_name(full_name)
        #: ``/repos/{owner}/{repo}``, expanded as the URL templates expand it.
        self._prefix = f"/repos/{urllib.parse.quote(self.owner, safe='')}/" + urllib.parse.quote(
            self.name, safe=""
        )
        self.gh = gh
        self.full_name = full_name
        self.blobs = blobs
        self.trees = trees
        self.tarball_threshold = tarball_threshold
        self._read_slots = asyncio.Semaphore(read_concurrency)

    def __repr__(self) -> str:
        return f"Repo({self.full_name!r})"

    def _vars(self, **more: Any) -> dict[str, Any]:
        return {"owner": self.owner, "repo": self.name, **more}

    # -- reading ---------------------------------------------------------------------

    async def default_branch(self) -> str:
        with uncached():  # read once per repository: an ETag kept for it is memory for nothing
            data = await self.gh.getitem("/repos/{owner}/{repo}", self._vars())
        return str(data["default_branch"])

    async def head(self, branch: str, *, known_sha: str | None = None) -> str | None:
        """The branch's head commit SHA, or None when it is still `known_sha`.

        With `known_sha` the request carries ``If-None-Match`` and an unchanged
        branch costs a 304, which GitHub does not count against the rate limit.
        Raises EmptyRepository (409) or NotFound (no such branch).
        """
        try:
            if known_sha is not None:
                # The path is put together here, not expanded from the template: this
                # request is made for every repository on every tick. The same bytes
                # (tests/test_github_repo.py), without parsing the template each time.
                path = f"{self._prefix}/commits/{_quote(branch)}"
                body = await self.gh.get_if_none_match(
                    path, etag=f'"{known_sha}"', accept=SHA_MEDIA_TYPE, route=_HEAD_ROUTE
                )
                if body is None:
                    return None
            else:
                with uncached():
                    body = await self.gh.getitem(
                        _HEAD_TEMPLATE, self._vars(ref=_quote(branch)), accept=SHA_MEDIA_TYPE
                    )
        except ValidationFailed as exc:  # 422 "No commit found for SHA: <branch>"
            raise NotFound(
                f"{self.full_name}: no branch {branch!r} ({exc.message})", status=422
            ) from None
        sha = str(body or "").strip()
        if not sha or any(c not in "0123456789abcdef" for c in sha):
            raise GitHubError(
                f"{self.full_name}: unexpected answer to the head check of {branch!r}: {sha[:80]!r}"
            )
        return None if sha == known_sha else sha

    async def tree(self, commit_sha: str) -> Tree:
        """All blobs of the commit, in one request unless GitHub truncates the listing
        (none when the installation's `TreeCache` has it)."""
        cached = self.trees.get(commit_sha) if self.trees is not None else None
        if cached is not None:
            return cached
        entries: dict[str, TreeEntry] = {}
        with uncached():  # immutable by SHA: not worth cache space
            root = await self._get_tree(commit_sha, recursive=True)
            if root.get("truncated"):
                log.info(
                    "%s: tree of %s is truncated; walking subtrees", self.full_name, commit_sha
                )
                await self._walk(str(root["sha"]), "", entries)
            else:
                self._add_entries(root, "", entries)
        tree = Tree(commit_sha=commit_sha, tree_sha=str(root["sha"]), entries=entries)
        if self.trees is not None:
            self.trees.put(tree)
        return tree

    async def _get_tree(self, sha: str, *, recursive: bool) -> dict[str, Any]:
        url = "/repos/{owner}/{repo}/git/trees/{+sha}" + ("?recursive=1" if recursive else "")
        return await self.gh.getitem(url, self._vars(sha=_quote(sha)))

    async def _walk(self, tree_sha: str, prefix: str, entries: dict[str, TreeEntry]) -> None:
        listing = await self._get_tree(tree_sha, recursive=bool(prefix))
        if prefix and not listing.get("truncated"):
            self._add_entries(listing, prefix, entries)
            return
        if prefix:  # even this subtree is too big: one level at a time
            listing = await self._get_tree(tree_sha, recursive=False)
        for item in listing.get("tree", []):
            if item.get("type") == "tree":
                await self._walk(str(item["sha"]), f"{prefix}{item['path']}/", entries)
        self._add_entries(listing, prefix, entries)

    @staticmethod
    def _add_entries(
        listing: Mapping[str, Any], prefix: str, entries: dict[str, TreeEntry]
    ) -> None:
        for item in listing.get("tree", []):
            if item.get("type") != "blob":  # trees are walked; "commit" = submodule, skipped
                continue
            path = prefix + str(item["path"])
            entries[path] = TreeEntry(
                path=path,
                mode=str(item["mode"]),
                type="blob",
                sha=str(item["sha"]),
                size=item.get("size"),
            )

    async def read_blobs(
        self, tree: Tree, paths: Iterable[str], *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> dict[str, bytes]:
        """Contents of `paths` in `tree`, keyed by the requested path.

        Left out: paths not in the tree, files over `max_bytes`, symlinks that
        leave the repository, point at a directory or nothing, or loop.
        """
        pending = {normalise_path(p): normalise_path(p) for p in paths}
        found: dict[str, bytes] = {}
        for _ in range(MAX_SYMLINK_HOPS + 1):
            wanted: dict[str, str] = {}
            for request, current in list(pending.items()):
                entry = tree.entries.get(current)
                if entry is None:
                    del pending[request]
                elif entry.size is not None and entry.size > max_bytes:
                    log.info(
                        "%s: %s is %d bytes, over the %d-byte limit; not read",
                        self.full_name,
                        current,
                        entry.size,
                        max_bytes,
                    )
                    del pending[request]
                else:
                    wanted[current] = entry.sha
            if not pending:
                break
            await self._load(tree, wanted)
            following: dict[str, str] = {}
            for request, current in pending.items():
                entry = tree.entries[current]
                data = self.blobs.get(entry.sha)
                if data is None:
                    continue
                if entry.mode != SYMLINK_MODE:
                    found[request] = data
                    if request != current:
                        tree.links[request] = current
                    continue
                target = link_target(current, data)
                if target is None or target not in tree.entries:
                    log.info(
                        "%s: symlink %s does not resolve to a file in the repository; skipped",
                        self.full_name,
                        request,
                    )
                    continue
                following[request] = target
            pending = following
        return found

    async def _load(self, tree: Tree, wanted: Mapping[str, str]) -> None:
        """Put the blobs `wanted` ({path: sha}) into the cache, fetching only unknown ones."""
        unknown = {path: sha for path, sha in wanted.items() if sha not in self.blobs}
        if len({*unknown.values()}) > self.tarball_threshold:
            unknown = await self._load_from_tarball(tree.commit_sha, unknown)
        by_sha = {sha: path for path, sha in unknown.items()}
        await asyncio.gather(*(self._load_blob(sha) for sha in by_sha))

    async def _load_from_tarball(self, commit_sha: str, unknown: dict[str, str]) -> dict[str, str]:
        """Fill the cache from one tarball; return what is still unknown."""
        try:
            archive = await self.gh.get_bytes(
                "/repos/{owner}/{repo}/tarball/{+ref}", self._vars(ref=_quote(commit_sha))
            )
            contents = extract_blobs(archive, unknown)
        except (GitHubError, TarballError) as exc:
            log.warning(
                "%s: tarball download failed (%s); reading blobs one by one", self.full_name, exc
            )
            return unknown
        for path, data in contents.items():
            self.blobs.put(unknown[path], data)
        return {p: s for p, s in unknown.items() if s not in self.blobs and p not in contents}

    async def _load_blob(self, sha: str) -> None:
        async with self._read_slots:
            with uncached():
                data = await self.gh.getitem(
                    "/repos/{owner}/{repo}/git/blobs/{sha}", self._vars(sha=sha)
                )
        try:
            content = base64.b64decode(data.get("content") or "")
        except (binascii.Error, AttributeError):
            raise GitHubError(f"{self.full_name}: blob {sha} is not valid base64") from None
        if git_blob_sha(content) != sha:
            raise GitHubError(f"{self.full_name}: blob {sha} came back with other content")
        self.blobs.put(sha, content)

    # -- writing ---------------------------------------------------------------------

    async def commit(
        self,
        *,
        base: Tree,
        files: Mapping[str, bytes | None],
        message: str,
        author: tuple[str, str] | None,
    ) -> str:
        """One commit on top of `base` with `files` replaced (None deletes); its SHA.

        Modes of existing files are kept; a symlink that `read_blobs` resolved
        is written through to its target. Files already holding the given
        content are not rewritten; if nothing differs, `base.commit_sha` is
        returned and nothing is sent. Raises WorkflowFilesRefused before any
        request when a path is under `.github/workflows/`.
        """
        targets: dict[str, bytes | None] = {}
        for raw_path, content in files.items():
            path = normalise_path(raw_path)
            entry = base.entries.get(path)
            if entry is not None and entry.mode == SYMLINK_MODE and content is not None:
                if path not in base.links:
                    raise GitHubError(
                        f"{self.full_name}: {path} is a symlink that was not "
                        "resolved; read it with read_blobs before writing it"
                    )
                path = base.links[path]
            targets[path] = content
        # Checked on the written path and on the given one (a symlink may lead there).
        refused = {p for p in targets if is_workflow_file(p)}
        refused |= {normalise_path(p) for p in files if is_workflow_file(p)}
        if refused:
            raise WorkflowFilesRefused(refused)

        items: list[dict[str, Any]] = []
        for path, content in sorted(targets.items()):
            entry = base.entries.get(path)
            if content is None:
                if entry is not None:
                    items.append({"path": path, "mode": entry.mode, "type": "blob", "sha": None})
                continue
            if entry is not None and git_blob_sha(content) == entry.sha:
                continue
            item: dict[str, Any] = {
                "path": path,
                "mode": entry.mode if entry else FILE_MODE,
                "type": "blob",
            }
            try:
                item["content"] = content.decode("utf-8")
            except UnicodeDecodeError:
                item["sha"] = await self._create_blob(content)
            items.append(item)
        if not items:
            return base.commit_sha

        new_tree = await self.gh.post(
            "/repos/{owner}/{repo}/git/trees",
            self._vars(),
            data={"base_tree": base.tree_sha, "tree": items},
        )
        body: dict[str, Any] = {
            "message": message,
            "tree": new_tree["sha"],
            "parents": [base.commit_sha],
        }
        if author is not None:
            body["author"] = {"name": author[0], "email": author[1]}
        created = await self.gh.post("/repos/{owner}/{repo}/git/commits", self._vars(), data=body)
        return str(created["sha"])

    async def commit_parents(self, sha: str) -> list[str]:
        """The parents of commit `sha` (the base the bot built its one commit on)."""
        data = await self.gh.getitem("/repos/{owner}/{repo}/git/commits/{sha}", self._vars(sha=sha))
        return [str(parent["sha"]) for parent in data.get("parents") or []]

    async def _create_blob(self, content: bytes) -> str:
        created = await self.gh.post(
            "/repos/{owner}/{repo}/git/blobs",
            self._vars(),
            data={"content": base64.b64encode(content).decode("ascii"), "encoding": "base64"},
        )
        return str(created["sha"])

    # -- branches --------------------------------------------------------------------

    async def branch_sha(self, branch: str) -> str | None:
        """The branch's head SHA, None if there is no such branch."""
        try:
            data = await self.gh.getitem(
                "/repos/{owner}/{repo}/git/ref/{+ref}", self._vars(ref="heads/" + _quote(branch))
            )
        except NotFound:
            return None
        return str(data["object"]["sha"])

    async def set_branch(
        self,
        branch: str,
        sha: str,
        *,
        expected: str | None,
        force: bool,
        verified_head: str | None = None,
    ) -> None:
        """Point `branch` at `sha`, only if it is where the caller last saw it.

        `expected` None means "the branch must not exist yet" (it is created).
        Otherwise the branch must be at `expected`: that check is a
        conditional head request (a free 304 when it holds), skipped when the
        caller has just read the head some other way and passes it as
        `verified_head` (a pull request's ``head.sha``, say). Raises
        BranchMoved when it does not match, NotFastForward when `force` is
        False and `sha` does not descend from the branch.
        """
        if expected is None:
            try:
                await self.gh.post(
                    "/repos/{owner}/{repo}/git/refs",
                    self._vars(),
                    data={"ref": f"refs/heads/{branch}", "sha": sha},
                )
            except Unreachable:
                # No answer: it may have been created all the same. Look before failing.
                with uncached():
                    if await self.branch_sha(branch) != sha:
                        raise
            except ValidationFailed as exc:
                if "already exists" not in exc.message.lower():
                    raise
                with uncached():
                    actual = await self.branch_sha(branch)
                raise BranchMoved(branch, expected=None, actual=actual) from None
            return
        if verified_head is not None:
            if verified_head != expected:
                raise BranchMoved(branch, expected=expected, actual=verified_head)
        else:
            try:
                moved_to = await self.head(branch, known_sha=expected)
            except NotFound:
                raise BranchMoved(branch, expected=expected, actual=None) from None
            if moved_to is not None:
                raise BranchMoved(branch, expected=expected, actual=moved_to)
        await self._update_ref(branch, sha, force=force)

    async def fast_forward(self, branch: str, sha: str) -> None:
        """Move `branch` forward to `sha` (never forced); NotFastForward if it is not ahead."""
        await self._update_ref(branch, sha, force=False)

    async def _update_ref(self, branch: str, sha: str, *, force: bool) -> None:
        try:
            await self.gh.patch(
                "/repos/{owner}/{repo}/git/refs/{+ref}",
                self._vars(ref="heads/" + _quote(branch)),
                data={"sha": sha, "force": force},
            )
        except ValidationFailed as exc:
            text = exc.message.lower()
            if "does not exist" in text:
                raise NotFound(f"{self.full_name}: no branch {branch!r}", status=422) from None
            if "fast forward" in text or not force:
                raise NotFastForward(branch, sha) from None
            raise
