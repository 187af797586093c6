"""Reading and writing manifests in a local directory (the `plan` command's edge).

Follows Flux's walk: hidden directories are included, symlinked directories
are not descended, symlinked files are read through, dangling links are
skipped. Unlike Flux, a link that points outside the tree is skipped too, so
`plan --write` can never touch a file outside PATH.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from bot.problems import Problem, warning
from bot.update import has_marker

#: Files larger than this are not even read for screening; the setters report them.
MAX_READ_BYTES = 64 << 20

# Not blocking on a FIFO that replaced a listed file; not leaking descriptors to children.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def scan(
    root: Path,
    select: Callable[[str], bool],
    *,
    descend: Callable[[str], bool] | None = None,
) -> tuple[dict[str, bytes], list[Problem]]:
    """Walk ``root`` once, reading each selected file and keeping those with the marker bytes.

    ``select`` is asked about every file's repo-relative POSIX path (the walk's
    rules above decide which files there are); ``descend``, if given, about
    every directory's, so whole subtrees that hold nothing selected are never
    listed. Returns (marked files by path, warnings), both in path order; a
    file that cannot be read or is over `MAX_READ_BYTES` is a warning.
    """
    files: dict[str, bytes] = {}
    warnings: list[Problem] = []
    for rel, name, directory in _walk(root.resolve(), descend):
        if not select(rel):
            continue
        content, problem = _read(name, rel, directory)
        if problem is not None:
            warnings.append(problem)
        elif content is not None and has_marker(content):
            files[rel] = content
    warnings.sort(key=lambda problem: problem.path)
    return dict(sorted(files.items())), warnings


def list_files(root: Path) -> list[str]:
    """Repo-relative POSIX paths of the regular files (or links to files) under ``root``."""
    return sorted(rel for rel, _name, _directory in _walk(root.resolve(), None))


def read_candidates(
    root: Path, paths: Iterable[str], *, keep: Callable[[bytes], bool] = has_marker
) -> tuple[dict[str, bytes], list[Problem]]:
    """Read the files whose bytes ``keep`` accepts (the marker's); returns (files, warnings)."""
    files: dict[str, bytes] = {}
    warnings: list[Problem] = []
    for rel in paths:
        content, problem = _read(os.path.join(root, rel), rel, None)
        if problem is not None:
            warnings.append(problem)
        elif content is not None and keep(content):
            files[rel] = content
    return files, warnings


def _walk(root: Path, descend: Callable[[str], bool] | None) -> Iterator[tuple[str, str, int]]:
    """(repo-relative path, name, descriptor of its directory) of every file under ``root``.

    ``root`` is resolved; the files come in no particular order. The directory's
    descriptor is valid until the next file is asked for: opening a file by its
    name relative to it spares the kernel the walk down the whole path.
    """
    pending = [(str(root), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            directory_fd = os.open(directory, _DIRECTORY_FLAGS)
        except OSError:
            continue  # an unreadable directory is passed over, as os.walk does
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    rel = prefix + entry.name
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            # The repository's own git data is not part of the tree a user edits.
                            if entry.name != ".git" and (descend is None or descend(rel)):
                                pending.append((entry.path, rel + "/"))
                            continue
                        if entry.is_symlink():
                            # Read through, if it stays inside the tree and ends at a file
                            # (False for a dangling link and for a link to a directory).
                            if not (_inside(root, Path(entry.path)) and entry.is_file()):
                                continue
                        elif not entry.is_file(follow_symlinks=False):
                            continue  # a FIFO, socket or device
                    except OSError:
                        continue
                    yield rel, entry.name, directory_fd
        except OSError:
            continue
        finally:
            os.close(directory_fd)


def _read(path: str, rel: str, directory_fd: int | None) -> tuple[bytes | None, Problem | None]:
    """A file's bytes (None: not a regular file any more), or the warning why it was skipped.

    ``path`` is relative to ``directory_fd`` when that is given.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS, dir_fd=directory_fd)
    except OSError as exc:
        return None, _unreadable(rel, exc)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, None  # replaced since it was listed
        if info.st_size > MAX_READ_BYTES:
            return None, _too_large(rel, info.st_size)
        parts = []
        total = 0
        want = info.st_size + 1  # one more byte than expected: a short read is the end
        while True:
            chunk = os.read(fd, want)
            parts.append(chunk)
            total += len(chunk)
            if total > MAX_READ_BYTES:
                return None, _too_large(rel, total)  # it grew while being read
            if len(chunk) < want:
                break
            want = 1 << 16
    except OSError as exc:
        return None, _unreadable(rel, exc)
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts), None


def _unreadable(rel: str, exc: OSError) -> Problem:
    return warning(rel, 0, 0, f"skipped, cannot be read: {exc.strerror or exc}")


def _too_large(rel: str, size: int) -> Problem:
    return warning(rel, 0, 0, f"skipped, {size} bytes is larger than {MAX_READ_BYTES}")


def write_files(root: Path, edited: dict[str, bytes]) -> None:
    """Replace each file atomically (through links inside the tree), keeping its mode."""
    import tempfile  # only a plan that writes needs it

    top = os.path.realpath(root)
    for rel, content in sorted(edited.items()):
        target = os.path.realpath(os.path.join(top, rel))
        if os.path.commonpath([top, target]) != top:
            raise OSError(f"{rel}: refusing to write outside {top}")
        mode = os.stat(target).st_mode & 0o7777
        directory, name = os.path.split(target)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):
        return False
    return True
