"""Which files of a tree an automation reads (flux-behaviour §4.4).

Pure path arithmetic on repo-relative POSIX paths, as listed by a git tree or
a directory walk; reading the files (and skipping dangling symlinks) is the
caller's job.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from bot.update.setters import UpdateError

YAML_SUFFIXES = (".yaml", ".yml")  # case-sensitive, as Flux: ".YAML" is ignored
KUSTOMIZATION_NAME = "Kustomization"


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
    name = posixpath.basename(path)
    return name.endswith(YAML_SUFFIXES) or name == KUSTOMIZATION_NAME


def candidate_paths(paths: Iterable[str], update_path: str = ".") -> list[tuple[str, str]]:
    """``[(repo_path, path relative to update_path)]`` of the files to scan, sorted.

    ``update_path`` may name a directory (every YAML file below it, hidden
    directories included) or a single file, which is then read whatever its
    name, under its base name.
    """
    root = normalise_update_path(update_path)
    selected: dict[str, str] = {}
    for raw in paths:
        path = posixpath.normpath(raw)
        if path.startswith(("/", "../")) or path in (".", ".."):
            continue  # not a path inside the tree
        if root and path == root:
            return [(path, posixpath.basename(path))]
        if root and not path.startswith(root + "/"):
            continue
        if is_candidate_name(path):
            selected[path] = path[len(root) + 1 :] if root else path
    return sorted(selected.items())
