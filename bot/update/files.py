"""Which files of a tree an automation reads (flux-behaviour §4.4).

Pure path arithmetic on repo-relative POSIX paths, as listed by a git tree or
a directory walk; reading the files (and skipping dangling symlinks) is the
caller's job.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Container, Iterable

from bot.update.setters import UpdateError

YAML_SUFFIXES = (".yaml", ".yml")  # case-sensitive, as Flux: ".YAML" is ignored
KUSTOMIZATION_NAME = "Kustomization"
_CANDIDATE_ENDINGS = (*YAML_SUFFIXES, "/" + KUSTOMIZATION_NAME)


def normalise_update_path(update_path: str) -> str:
    """``update.path`` as a repo-relative path, ``""`` for the root; UpdateError if it escapes."""
    raw = update_path.strip() or "."
    if raw.startswith("/") or raw.startswith("\\"):
        raise UpdateError(f'update.path "{update_path}" must be relative to the repository root')
    path = posixpath.normpath(raw)
    if path == ".." or path.startswith("../"):
        raise UpdateError(f'update.path "{update_path}" points outside the repository')
    return "" if path == "." else path


def is_candidate_name(path: str) -> bool:
    """Flux's name filter: ``*.yaml``, ``*.yml`` (case-sensitive) or exactly ``Kustomization``."""
    # The same test on the base name, without splitting it off (a walk asks for every file).
    return path.endswith(_CANDIDATE_ENDINGS) or path == KUSTOMIZATION_NAME


def candidate_filter(update_path: str = ".") -> Callable[[str], str | None]:
    """A test of one repo path: its path relative to ``update_path`` if the file is read, else None.

    The one-path form of `candidate_paths`, for a walk that decides file by
    file. Paths are taken as already normal (``a/b.yaml``, as a directory walk
    or a git tree lists them). UpdateError if ``update_path`` escapes the tree.
    """
    root = normalise_update_path(update_path)
    if not root:
        return lambda path: path if is_candidate_name(path) else None
    prefix = root + "/"
    cut = len(prefix)

    def relative(path: str) -> str | None:
        if not is_candidate_name(path):
            return None
        if path.startswith(prefix):
            return path[cut:]
        if path == root:  # update.path names this very file
            return posixpath.basename(path)
        return None

    return relative


def candidate_paths(paths: Iterable[str], update_path: str = ".") -> list[tuple[str, str]]:
    """``[(repo_path, path relative to update_path)]`` of the files to scan, sorted.

    ``update_path`` may name a directory (every YAML file below it, hidden
    directories included) or a single file, which is then read under its base
    name if its name passes the same filter (Flux: ``deploy.yaml.bak`` or
    ``x.YAML`` is not updated even when named; `ignored_single_file` says why).
    """
    relative = candidate_filter(update_path)
    selected: dict[str, str] = {}
    for raw in paths:
        path = posixpath.normpath(raw)
        if path.startswith(("/", "../")) or path in (".", ".."):
            continue  # not a path inside the tree
        rel = relative(path)
        if rel is not None:
            selected[path] = rel
    return sorted(selected.items())


def ignored_single_file(files: Container[str], update_path: str) -> str | None:
    """Why nothing is updated when ``update_path`` names one file that the name filter skips.

    ``files`` holds (at least) the tree's file paths, e.g. a git tree's entries.
    None when ``update_path`` is a directory, a candidate file, or no file at
    all. Flux says nothing in this case; a warning spares the user the search.
    """
    try:
        root = normalise_update_path(update_path)
    except UpdateError:
        return None  # reported where the files are selected
    if not root or root not in files or is_candidate_name(root):
        return None
    return (
        f'update.path "{update_path}" names a file that is never updated: Flux updates only '
        "files named *.yaml, *.yml (case-sensitive) or Kustomization; rename the file, or "
        "set update.path to its directory"
    )
