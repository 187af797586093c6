"""Reading and writing manifests in a local directory (the `plan` command's edge).

Follows Flux's walk: hidden directories are included, symlinked directories
are not descended, symlinked files are read through, dangling links are
skipped. Unlike Flux, a link that points outside the tree is skipped too, so
`plan --write` can never touch a file outside PATH.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bot.problems import Problem, warning
from bot.update import has_marker

#: Files larger than this are not even read for screening; the setters report them.
MAX_READ_BYTES = 64 << 20


def list_files(root: Path) -> list[str]:
    """Repo-relative POSIX paths of the regular files (or links to files) under ``root``."""
    root = root.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        # The repository's own git data is not part of the tree a user edits.
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in filenames:
            full = Path(dirpath, name)
            if full.is_symlink() and not _inside(root, full):
                continue
            if full.is_file():  # follows links: False for dangling ones
                found.append(full.relative_to(root).as_posix())
    return sorted(found)


def read_candidates(root: Path, paths: Iterable[str]) -> tuple[dict[str, bytes], list[Problem]]:
    """Read the files that carry the marker bytes; returns (files, warnings)."""
    files: dict[str, bytes] = {}
    warnings: list[Problem] = []
    for rel in paths:
        full = root / rel
        try:
            size = full.stat().st_size
            if size > MAX_READ_BYTES:
                warnings.append(
                    warning(rel, 0, 0, f"skipped, {size} bytes is larger than {MAX_READ_BYTES}")
                )
                continue
            content = full.read_bytes()
        except OSError as exc:
            warnings.append(warning(rel, 0, 0, f"skipped, cannot be read: {exc.strerror or exc}"))
            continue
        if has_marker(content):
            files[rel] = content
    return files, warnings


def write_files(root: Path, edited: dict[str, bytes]) -> None:
    """Replace each file atomically (through links inside the tree), keeping its mode."""
    root = root.resolve()
    for rel, content in sorted(edited.items()):
        target = (root / rel).resolve()
        if not _inside(root, target):
            raise OSError(f"{rel}: refusing to write outside {root}")
        mode = target.stat().st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):
        return False
    return True
