"""Real git storage for simulated repositories (bare repositories written with dulwich).

Every SHA the simulator hands out is a real git object id, so the bot's blob cache and
any `git hash-object` cross-check see exactly what GitHub would send.
"""

from __future__ import annotations

import io
import stat
from dataclasses import dataclass
from pathlib import Path

from dulwich.archive import tar_stream
from dulwich.diff_tree import tree_changes
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

WORKFLOWS_DIR = ".github/workflows"
MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_DIR = 0o040000
MODE_SYMLINK = 0o120000
MODE_SUBMODULE = 0o160000
VALID_MODES = {"100644": MODE_FILE, "100755": MODE_EXEC, "040000": MODE_DIR,
               "120000": MODE_SYMLINK, "160000": MODE_SUBMODULE}  # fmt: skip


class TreeEditError(ValueError):
    """A create-tree request GitHub would reject with 422 (message says why)."""


@dataclass(frozen=True)
class Entry:
    """One entry of a (possibly recursive) tree listing."""

    path: str
    mode: str  # GitHub spelling: "100644", "040000", ...
    type: str  # "blob", "tree" or "commit"
    sha: str
    size: int | None


def mode_str(mode: int) -> str:
    return f"{mode:06o}"


def entry_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "tree"
    if mode == MODE_SUBMODULE:
        return "commit"
    return "blob"


class GitRepo:
    """One bare repository; all methods take and return hex SHAs as `str`."""

    def __init__(self, path: Path, default_branch: str = "main") -> None:
        path.mkdir(parents=True, exist_ok=True)
        if (path / "HEAD").exists():
            self._repo = Repo(str(path))
        else:
            self._repo = Repo.init_bare(str(path), default_branch=default_branch.encode())
        self._repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/" + default_branch.encode())
        self.path = path

    # -- objects ---------------------------------------------------------------------------
    def _get(self, sha: str):
        try:
            return self._repo.object_store[sha.encode()]
        except (KeyError, ValueError, AssertionError):
            return None

    def has_object(self, sha: str, kind: type | None = None) -> bool:
        obj = self._get(sha) if is_hex_sha(sha) else None
        return obj is not None and (kind is None or isinstance(obj, kind))

    def add_blob(self, data: bytes) -> str:
        blob = Blob.from_string(data)
        self._repo.object_store.add_object(blob)
        return blob.id.decode()

    def blob(self, sha: str) -> bytes | None:
        obj = self._get(sha) if is_hex_sha(sha) else None
        return obj.as_raw_string() if isinstance(obj, Blob) else None

    def is_tree(self, sha: str) -> bool:
        return self.has_object(sha, Tree)

    def is_commit(self, sha: str) -> bool:
        return self.has_object(sha, Commit)

    def commit_info(self, sha: str) -> Commit | None:
        obj = self._get(sha) if is_hex_sha(sha) else None
        return obj if isinstance(obj, Commit) else None

    def commit_tree(self, sha: str) -> str:
        return self._repo.object_store[sha.encode()].tree.decode()

    def list_tree(self, tree_sha: str, *, recursive: bool) -> list[Entry]:
        """Entries of a tree, depth-first like GitHub (a directory precedes its contents)."""
        out: list[Entry] = []
        self._walk(tree_sha, "", recursive, out)
        return out

    def tree_items(self, tree_sha: str) -> dict[str, tuple[int, str]]:
        """name → (mode, sha) of one tree's own entries (no sizes read: cheap)."""
        tree = self._repo.object_store[tree_sha.encode()]
        return {
            item.path.decode("utf-8", "surrogateescape"): (item.mode, item.sha.decode())
            for item in tree.iteritems()
        }

    def _walk(self, tree_sha: str, prefix: str, recursive: bool, out: list[Entry]) -> None:
        tree = self._repo.object_store[tree_sha.encode()]
        for item in tree.iteritems():
            name = item.path.decode("utf-8", "surrogateescape")
            path = prefix + name
            kind = entry_type(item.mode)
            size = None
            if kind == "blob":
                size = self._repo.object_store[item.sha].raw_length()
            out.append(Entry(path, mode_str(item.mode), kind, item.sha.decode(), size))
            if recursive and kind == "tree":
                self._walk(item.sha.decode(), path + "/", recursive, out)

    def lookup(self, tree_sha: str, path: str) -> tuple[int, str] | None:
        """(mode, sha) of `path` inside a tree, or None."""
        node_mode, node_sha = MODE_DIR, tree_sha
        for part in [p for p in path.split("/") if p]:
            if not stat.S_ISDIR(node_mode):
                return None
            tree = self._repo.object_store[node_sha.encode()]
            try:
                node_mode, raw = tree[part.encode()]
            except KeyError:
                return None
            node_sha = raw.decode()
        return node_mode, node_sha

    def subtree_sha(self, tree_sha: str | None, path: str) -> str | None:
        if tree_sha is None:
            return None
        found = self.lookup(tree_sha, path)
        return found[1] if found else None

    # -- building trees and commits --------------------------------------------------------
    def build_tree(
        self, base_tree: str | None, edits: list[tuple[str, int | None, str | None]]
    ) -> str:
        """Apply (path, mode, sha-or-None-to-delete) edits on top of `base_tree`."""
        root = _MutableTree(self, base_tree)
        for path, mode, sha in edits:
            parts = [p for p in path.split("/") if p]
            if not parts:
                raise TreeEditError(f"tree.path {path!r} is empty")
            if sha is None:
                if not root.delete(parts):
                    # GitHub answers 422 when asked to delete a path that does not exist.
                    raise TreeEditError(f"tree.path {path!r} does not exist and cannot be deleted")
            else:
                root.set(parts, mode if mode is not None else MODE_FILE, sha)
        return root.write()

    def make_commit(self, *, tree: str, parents: list[str], message: str,
                    author: tuple[str, str, int], committer: tuple[str, str, int]) -> str:  # fmt: skip
        commit = Commit()
        commit.tree = tree.encode()
        commit.parents = [p.encode() for p in parents]
        commit.message = message.encode()
        commit.author = f"{author[0]} <{author[1]}>".encode()
        commit.author_time = int(author[2])
        commit.author_timezone = 0
        commit.committer = f"{committer[0]} <{committer[1]}>".encode()
        commit.commit_time = int(committer[2])
        commit.commit_timezone = 0
        self._repo.object_store.add_object(commit)
        return commit.id.decode()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        seen: set[str] = set()
        todo = [descendant]
        while todo:
            sha = todo.pop()
            if sha == ancestor:
                return True
            if sha in seen:
                continue
            seen.add(sha)
            commit = self.commit_info(sha)
            if commit is not None:
                todo.extend(p.decode() for p in commit.parents)
        return False

    def new_commits(self, tip: str) -> list[str]:
        """Commits reachable from `tip` but from no ref: what a ref update would add."""
        known: set[str] = set()
        todo = list(self.refs().values())
        while todo:
            sha = todo.pop()
            if sha in known:
                continue
            known.add(sha)
            commit = self.commit_info(sha)
            if commit is not None:
                todo.extend(p.decode() for p in commit.parents)
        out, todo = [], [tip]
        while todo:
            sha = todo.pop()
            if sha in known or sha in out:
                continue
            out.append(sha)
            commit = self.commit_info(sha)
            if commit is not None:
                todo.extend(p.decode() for p in commit.parents)
        return out

    # -- refs --------------------------------------------------------------------------------
    def refs(self, prefix: str = "refs/") -> dict[str, str]:
        out = {}
        for name in self._repo.refs.allkeys():
            text = name.decode()
            if text.startswith(prefix) and text != "HEAD":
                sha = self._repo.refs[name]
                out[text] = sha.decode()
        return dict(sorted(out.items()))

    def ref(self, name: str) -> str | None:
        try:
            return self._repo.refs[name.encode()].decode()
        except KeyError:
            return None

    def set_ref(self, name: str, sha: str) -> None:
        self._repo.refs[name.encode()] = sha.encode()

    def delete_ref(self, name: str) -> bool:
        if self.ref(name) is None:
            return False
        del self._repo.refs[name.encode()]
        return True

    def is_empty(self) -> bool:
        return not self.refs("refs/heads/")

    def resolve_commit(self, ref: str) -> str | None:
        """Commit SHA for a branch/tag name, `heads/x`, `refs/heads/x` or a (full) commit SHA."""
        ref = ref.strip()
        for name in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if name.startswith("refs/"):
                sha = self.ref(name)
                if sha is not None:
                    return sha
        if is_hex_sha(ref) and self.is_commit(ref):
            return ref
        return None

    def changed_paths(
        self, old_tree: str | None, new_tree: str
    ) -> list[tuple[str, str, str | None]]:
        """(status, path, new blob sha) for files differing between two trees."""
        out = []
        store = self._repo.object_store
        old = old_tree.encode() if old_tree else None
        for change in tree_changes(store, old, new_tree.encode()):
            if change.type == "delete":
                out.append(("removed", change.old.path.decode(), None))
            else:
                status = "added" if change.type == "add" else "modified"
                out.append((status, change.new.path.decode(), change.new.sha.decode()))
        return out

    def tarball(self, commit_sha: str, prefix: str, mtime: int) -> bytes:
        tree = self._repo.object_store[self.commit_tree(commit_sha).encode()]
        buf = io.BytesIO()
        for chunk in tar_stream(self._repo.object_store, tree, mtime, prefix.encode(), "gz"):
            buf.write(chunk)
        return buf.getvalue()

    def close(self) -> None:
        self._repo.close()


class _MutableTree:
    """A tree being edited; unchanged subtrees stay as their SHA and are never re-read."""

    def __init__(self, repo: GitRepo, sha: str | None) -> None:
        self._repo = repo
        self.entries: dict[bytes, tuple[int, str | _MutableTree]] = {}
        if sha is not None:
            for item in repo._repo.object_store[sha.encode()].iteritems():
                self.entries[item.path] = (item.mode, item.sha.decode())

    def _child(self, name: bytes, create: bool) -> _MutableTree | None:
        found = self.entries.get(name)
        if found is None or not stat.S_ISDIR(found[0]):
            if not create:
                return None
            child = _MutableTree(self._repo, None)
        elif isinstance(found[1], _MutableTree):
            return found[1]
        else:
            child = _MutableTree(self._repo, found[1])
        self.entries[name] = (MODE_DIR, child)
        return child

    def set(self, parts: list[str], mode: int, sha: str) -> None:
        node = self
        for part in parts[:-1]:
            node = node._child(part.encode(), create=True)
        node.entries[parts[-1].encode()] = (mode, sha)

    def delete(self, parts: list[str]) -> bool:
        node: _MutableTree | None = self
        for part in parts[:-1]:
            node = node._child(part.encode(), create=False)
            if node is None:
                return False
        return node.entries.pop(parts[-1].encode(), None) is not None

    def write(self) -> str:
        tree = Tree()
        for name, (mode, value) in self.entries.items():
            if isinstance(value, _MutableTree):
                if not value.entries:
                    continue  # git has no empty directories
                value = value.write()
            tree.add(name, mode, value.encode())
        self._repo._repo.object_store.add_object(tree)
        return tree.id.decode()


def is_hex_sha(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)
