"""Pick files out of a GitHub repository tarball, trusting only what the tree says.

GitHub's tarball (`GET /repos/{o}/{r}/tarball/{ref}`) is a gzip tar whose
single top-level directory is named after the repository and commit. Each
wanted file is checked against the blob SHA the tree gave for its path, so a
tarball from another commit, or a member that differs (line-ending filters,
export-subst), is never taken for the file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
from collections.abc import Mapping

log = logging.getLogger(__name__)


def git_blob_sha(data: bytes) -> str:
    """The SHA-1 git gives a blob with this content."""
    header = b"blob %d\0" % len(data)
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


class TarballError(Exception):
    """The download is not a readable gzip tar."""


def extract_blobs(archive: bytes, wanted: Mapping[str, str]) -> dict[str, bytes]:
    """Contents of the `wanted` paths ({path: blob sha}) found in `archive`.

    Paths are relative to the repository root (the top-level directory is
    stripped). Regular files give their bytes, symlinks their target (as git
    stores them). Paths missing from the archive or whose content does not
    hash to the wanted SHA are left out; the caller reads those another way.
    """
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r|gz") as tar:
            for member in tar:
                path = _repo_path(member.name)
                if path is None or path not in wanted or path in found:
                    continue
                if member.issym():
                    data = member.linkname.encode("utf-8", "surrogateescape")
                elif member.isfile():
                    handle = tar.extractfile(member)
                    if handle is None:
                        continue
                    data = handle.read()
                else:
                    continue
                if git_blob_sha(data) != wanted[path]:
                    log.info(
                        "tarball member %s does not match its tree blob; reading it alone", path
                    )
                    continue
                found[path] = data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TarballError(f"the repository archive is not a readable gzip tar: {exc}") from None
    return found


def _repo_path(name: str) -> str | None:
    # "owner-repo-sha/dir/file" → "dir/file"; the top directory itself → None.
    _, sep, rest = name.removeprefix("./").partition("/")
    if not sep or not rest or rest.endswith("/"):
        return None
    return rest
