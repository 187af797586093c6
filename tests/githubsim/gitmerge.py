"""Git history walks and pull-request merges on a `GitRepo`: merge base, commit ranges, a
path-level three-way tree merge and GitHub's three merge methods (merge, squash, rebase).

The three-way merge works per **file path**, not per line: a path changed on only one side
takes that side's version; a path changed on both sides to different results is a
conflict (git would sometimes merge such edits line by line; the simulator is stricter).
"""

from __future__ import annotations

import heapq
import stat

from .gitstore import GitRepo

Person = tuple[str, str, int]  # (name, email, epoch seconds)


class MergeConflict(Exception):
    """The trees cannot be merged: `paths` were changed differently on both sides."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__("conflicting changes in " + ", ".join(paths))
        self.paths = paths


def _parents(git: GitRepo, sha: str) -> list[str]:
    commit = git.commit_info(sha)
    return [p.decode() for p in commit.parents] if commit is not None else []


def ancestors(git: GitRepo, sha: str) -> set[str]:
    """`sha` and every commit reachable from it."""
    seen: set[str] = set()
    todo = [sha]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(_parents(git, current))
    return seen


def merge_base(git: GitRepo, a: str, b: str) -> str | None:
    """The newest common ancestor of `a` and `b` (walking `b`'s history newest first)."""
    reachable = ancestors(git, a)
    queue = [(-git.commit_info(b).commit_time, b)]
    seen: set[str] = set()
    while queue:
        _, sha = heapq.heappop(queue)
        if sha in reachable:
            return sha
        if sha in seen:
            continue
        seen.add(sha)
        for parent in _parents(git, sha):
            heapq.heappush(queue, (-git.commit_info(parent).commit_time, parent))
    return None


def rev_list(git: GitRepo, tip: str, exclude: list[str]) -> list[str]:
    """Commits reachable from `tip` but from none of `exclude`, parents before children."""
    hidden: set[str] = set()
    for sha in exclude:
        hidden |= ancestors(git, sha)
    out: list[str] = []
    done: set[str] = set()
    stack: list[tuple[str, bool]] = [(tip, False)]
    while stack:
        sha, expanded = stack.pop()
        if sha in hidden or (sha in done and not expanded):
            continue
        if expanded:
            if sha not in done:
                done.add(sha)
                out.append(sha)
            continue
        stack.append((sha, True))
        stack.extend((p, False) for p in reversed(_parents(git, sha)) if p not in done)
    return out


def _flat(git: GitRepo, tree: str | None) -> dict[str, tuple[int, str]]:
    """path → (mode, sha) for every non-directory entry of a tree."""
    if tree is None:
        return {}
    return {e.path: (int(e.mode, 8), e.sha) for e in git.list_tree(tree, recursive=True)
            if e.type != "tree"}  # fmt: skip


def merge_trees(git: GitRepo, ancestor: str | None, ours: str, theirs: str) -> str:
    """Tree with both sides' changes since `ancestor`; `MergeConflict` if they collide."""
    base, mine, other = _flat(git, ancestor), _flat(git, ours), _flat(git, theirs)
    deletes, sets, conflicts = [], [], []
    for path in sorted(set(base) | set(mine) | set(other)):
        a, o, t = base.get(path), mine.get(path), other.get(path)
        if o == t or t == a:
            continue  # same result, or only our side changed it
        if o != a:
            conflicts.append(path)
        elif t is None:
            deletes.append((path, None, None))
        else:
            sets.append((path, t[0], t[1]))
    if conflicts:
        raise MergeConflict(conflicts)
    return git.build_tree(ours, deletes + sets)  # deletions first: a file may become a dir


def can_merge(git: GitRepo, base_sha: str, head_sha: str) -> bool:
    """Would `merge_trees` succeed? Walks only the subtrees both sides changed (no writes)."""
    ancestor = _tree(git, merge_base(git, base_sha, head_sha))
    return _mergeable(git, ancestor, git.commit_tree(base_sha), git.commit_tree(head_sha))


def _mergeable(git: GitRepo, base: str | None, ours: str, theirs: str) -> bool:
    a = git.tree_items(base) if base else {}
    o, t = git.tree_items(ours), git.tree_items(theirs)
    for name in set(a) | set(o) | set(t):
        ea, eo, et = a.get(name), o.get(name), t.get(name)
        if eo in (et, ea) or et == ea:
            continue  # same result, or only one side changed it
        dirs = [e for e in (eo, et) if e is not None and stat.S_ISDIR(e[0])]
        if len(dirs) < 2:
            return False  # both sides changed one file differently
        under = ea[1] if ea is not None and stat.S_ISDIR(ea[0]) else None
        if not _mergeable(git, under, eo[1], et[1]):  # type: ignore[index]
            return False
    return True


def _tree(git: GitRepo, sha: str | None) -> str | None:
    return git.commit_tree(sha) if sha else None


def merge_commit(git: GitRepo, base_sha: str, head_sha: str, message: str, author: Person,
                 committer: Person) -> str:  # fmt: skip
    """A merge commit with parents (base, head)."""
    ancestor = merge_base(git, base_sha, head_sha)
    tree = merge_trees(git, _tree(git, ancestor), git.commit_tree(base_sha),
                       git.commit_tree(head_sha))  # fmt: skip
    return git.make_commit(tree=tree, parents=[base_sha, head_sha], message=message,
                           author=author, committer=committer)  # fmt: skip


def squash_commit(git: GitRepo, base_sha: str, head_sha: str, message: str, author: Person,
                  committer: Person) -> str:  # fmt: skip
    """One commit on top of base with the whole pull request's change."""
    ancestor = merge_base(git, base_sha, head_sha)
    tree = merge_trees(git, _tree(git, ancestor), git.commit_tree(base_sha),
                       git.commit_tree(head_sha))  # fmt: skip
    return git.make_commit(tree=tree, parents=[base_sha], message=message, author=author,
                           committer=committer)  # fmt: skip


def rebase_commits(git: GitRepo, base_sha: str, head_sha: str, committer: Person) -> str:
    """Replay the pull request's non-merge commits on base (authors kept, new committer)."""
    tip = base_sha
    for sha in rev_list(git, head_sha, [base_sha]):
        commit = git.commit_info(sha)
        if len(commit.parents) > 1:
            continue  # like `git rebase`: merge commits are dropped, their parents replayed
        parent_tree = _tree(git, commit.parents[0].decode() if commit.parents else None)
        tree = merge_trees(git, parent_tree, git.commit_tree(tip), commit.tree.decode())
        if tree == git.commit_tree(tip):
            continue  # already in base: nothing to replay
        name, _, email = commit.author.decode("utf-8", "replace").partition(" <")
        tip = git.make_commit(tree=tree, parents=[tip], message=commit.message.decode(),
                              author=(name, email.rstrip(">"), commit.author_time),
                              committer=committer)  # fmt: skip
    if tip == base_sha:
        raise MergeConflict([])  # nothing to merge
    return tip


def commit_messages(git: GitRepo, base_sha: str, head_sha: str) -> list[str]:
    return [git.commit_info(s).message.decode("utf-8", "replace")
            for s in rev_list(git, head_sha, [base_sha])]  # fmt: skip
