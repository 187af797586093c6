"""A repository's files as values: tree entries, the blob cache, and path rules.

No I/O. `Tree`/`TreeEntry` describe one commit's blobs, `BlobCache` holds
blob contents by SHA, and the helpers normalise paths, spot workflow files
and resolve symlink targets inside the repository. `bot.github.repo.Repo`
fills and uses them over the REST API.
"""

from __future__ import annotations

import posixpath
from collections import OrderedDict
from dataclasses import dataclass, field

SYMLINK_MODE = "120000"
FILE_MODE = "100644"
WORKFLOWS_DIR = ".github/workflows/"


@dataclass
class TreeEntry:
    path: str
    mode: str
    type: str
    sha: str
    size: int | None


@dataclass
class Tree:
    """The files of one commit: blobs only (regular files and symlinks, no submodules)."""

    commit_sha: str
    tree_sha: str
    entries: dict[str, TreeEntry]
    #: symlink path → the path it resolves to, filled as `Repo.read_blobs` follows links
    links: dict[str, str] = field(default_factory=dict)


class BlobCache:
    """Blob contents by SHA, least recently used dropped past `max_bytes`.

    A blob SHA names its content forever, so entries never go stale. Share
    one cache between the repositories of ONE installation only: content one
    installation may read must not be served to another.
    """

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    def get(self, sha: str) -> bytes | None:
        data = self._blobs.get(sha)
        if data is not None:
            self._blobs.move_to_end(sha)
        return data

    def put(self, sha: str, data: bytes) -> None:
        if sha in self._blobs or len(data) > self.max_bytes:
            return
        self._blobs[sha] = data
        self._size += len(data)
        while self._size > self.max_bytes:
            _, dropped = self._blobs.popitem(last=False)
            self._size -= len(dropped)

    def __contains__(self, sha: object) -> bool:
        return sha in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)


class BlobIds:
    """A bounded set of blob ids (oldest forgotten first)."""

    def __init__(self, size: int) -> None:
        self._ids: dict[str, None] = {}
        self._size = size

    def __contains__(self, sha: object) -> bool:
        return sha in self._ids

    def add(self, sha: str) -> None:
        self._ids[sha] = None
        if len(self._ids) > self._size:
            del self._ids[next(iter(self._ids))]


class TreeCache:
    """Trees by commit SHA, least recently used dropped past `max_entries` files in all.

    A commit's tree never changes, so a run that finds the default branch where
    it was (a 304) but has a new tag to write reuses the tree it read before:
    one request fewer per tag bump. Bounded by files, not trees, so a few huge
    repositories can't hold the memory. Per installation, like `BlobCache`.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._trees: OrderedDict[str, Tree] = OrderedDict()
        self._entries = 0

    def get(self, commit_sha: str) -> Tree | None:
        tree = self._trees.get(commit_sha)
        if tree is not None:
            self._trees.move_to_end(commit_sha)
        return tree

    def put(self, tree: Tree) -> None:
        size = len(tree.entries)
        if tree.commit_sha in self._trees or size > self.max_entries:
            return
        self._trees[tree.commit_sha] = tree
        self._entries += size
        while self._entries > self.max_entries:
            _, dropped = self._trees.popitem(last=False)
            self._entries -= len(dropped.entries)

    def __len__(self) -> int:
        return len(self._trees)


def normalise_path(path: str) -> str:
    return posixpath.normpath(path.removeprefix("./")).lstrip("/")


def is_workflow_file(path: str) -> bool:
    return normalise_path(path).startswith(WORKFLOWS_DIR)


def link_target(link_path: str, target: bytes | None) -> str | None:
    """Where a symlink points, as a repository path; None if it leaves the repository."""
    if not target:
        return None
    try:
        text = target.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), text))
    if joined == ".." or joined.startswith("../") or joined == ".":
        return None
    return joined
