"""`bot.localtree`: the walk `plan` makes over a directory, and its safety rules."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bot import localtree

MARKED = b'image: app:v1 # {"$imagepolicy": "ns:app"}\n'
PLAIN = b"image: app:v1\n"


def everything(_path: str) -> bool:
    return True


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    files = {
        "a.yaml": MARKED,
        "plain.yaml": PLAIN,
        ".github/hidden.yaml": MARKED,  # hidden directories are walked (Flux)
        ".git/config.yaml": MARKED,  # the repository's own git data is not
        "sub/.git/x.yaml": MARKED,  # nor a nested one's
        "sub/deep/b.yml": MARKED,
        "notes.txt": MARKED,
    }
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    (tmp_path / "outside.yaml").write_bytes(MARKED)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "c.yaml").write_bytes(MARKED)
    (root / "link-inside.yaml").symlink_to("a.yaml")  # read through, under its own name
    (root / "link-outside.yaml").symlink_to(tmp_path / "outside.yaml")
    (root / "dangling.yaml").symlink_to("nowhere.yaml")
    (root / "linked-dir").symlink_to("sub")  # never descended
    (root / "linked-outside-dir").symlink_to(tmp_path / "outside")
    os.mkfifo(root / "fifo.yaml")
    return root


EXPECTED = [
    ".github/hidden.yaml",
    "a.yaml",
    "link-inside.yaml",
    "notes.txt",
    "plain.yaml",
    "sub/deep/b.yml",
]


def test_list_files_follows_flux_s_walk_and_stays_inside(tree: Path) -> None:
    assert localtree.list_files(tree) == EXPECTED


def test_scan_offers_the_same_files_and_keeps_only_the_marked(tree: Path) -> None:
    offered: list[str] = []

    def select(path: str) -> bool:
        offered.append(path)
        return path.endswith(".yaml") or path.endswith(".yml")

    files, warnings = localtree.scan(tree, select)
    assert sorted(offered) == EXPECTED
    assert list(files) == [".github/hidden.yaml", "a.yaml", "link-inside.yaml", "sub/deep/b.yml"]
    assert files["link-inside.yaml"] == MARKED
    assert warnings == []


def test_scan_reads_nothing_that_is_not_selected(tree: Path) -> None:
    files, _ = localtree.scan(tree, lambda path: path == "a.yaml")
    assert list(files) == ["a.yaml"]


def test_scan_does_not_list_directories_it_is_told_to_skip(tree: Path) -> None:
    asked: list[str] = []
    offered: list[str] = []

    def descend(directory: str) -> bool:
        asked.append(directory)
        return directory == "sub" or directory.startswith("sub/")

    def select(path: str) -> bool:
        offered.append(path)
        return True

    files, _ = localtree.scan(tree, select, descend=descend)
    assert sorted(asked) == [".github", "sub", "sub/deep"]  # never .git, never a link
    assert list(files) == ["a.yaml", "link-inside.yaml", "notes.txt", "sub/deep/b.yml"]
    assert ".github/hidden.yaml" not in offered


def test_a_path_through_a_linked_directory_is_never_offered(tree: Path) -> None:
    offered: list[str] = []
    localtree.scan(tree, lambda path: offered.append(path) or True)
    assert not any(path.startswith(("linked-dir/", "linked-outside-dir/")) for path in offered)


def test_a_file_over_the_size_cap_is_a_warning_and_not_read(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localtree, "MAX_READ_BYTES", len(MARKED) - 1)
    (tree / "small.yaml").write_bytes(b'"$imagepolicy"')
    files, warnings = localtree.scan(tree, everything)
    assert list(files) == ["small.yaml"]
    assert [w.path for w in warnings] == [
        ".github/hidden.yaml",
        "a.yaml",
        "link-inside.yaml",
        "notes.txt",
        "sub/deep/b.yml",
    ]
    first = warnings[0]
    assert not first.is_error and first.line == 0
    assert first.message == f"skipped, {len(MARKED)} bytes is larger than {len(MARKED) - 1}"


def test_a_file_that_cannot_be_opened_is_a_warning(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests run as root, who may read any mode: make the system refuse instead.
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if os.fspath(path) == "a.yaml":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(localtree.os, "open", refusing_open)
    files, warnings = localtree.scan(tree, everything)
    assert "a.yaml" not in files and "sub/deep/b.yml" in files
    (warning,) = warnings
    assert (warning.path, warning.is_error) == ("a.yaml", False)
    assert warning.message == "skipped, cannot be read: Permission denied"


def test_files_without_the_marker_bytes_are_not_kept(tmp_path: Path) -> None:
    (tmp_path / "single-quoted.yaml").write_bytes(b"a: 1 # {'$imagepolicy': 'ns:app'}\n")
    (tmp_path / "empty.yaml").write_bytes(b"")
    (tmp_path / "marked.yaml").write_bytes(MARKED)
    files, warnings = localtree.scan(tmp_path, everything)
    assert files == {"marked.yaml": MARKED}
    assert warnings == []


def test_large_files_are_read_whole(tmp_path: Path) -> None:
    content = b"x: " + b"y" * (3 << 20) + b'\n# "$imagepolicy"\n'
    (tmp_path / "big.yaml").write_bytes(content)
    files, _ = localtree.scan(tmp_path, everything)
    assert files["big.yaml"] == content


def test_read_candidates_reads_the_given_paths(tree: Path) -> None:
    files, warnings = localtree.read_candidates(tree, ["a.yaml", "plain.yaml", "gone.yaml"])
    assert files == {"a.yaml": MARKED}
    assert [(w.path, w.message) for w in warnings] == [
        ("gone.yaml", "skipped, cannot be read: No such file or directory")
    ]


def test_write_files_replaces_through_links_inside_and_keeps_the_mode(tree: Path) -> None:
    (tree / "a.yaml").chmod(0o640)
    localtree.write_files(tree, {"link-inside.yaml": b"new\n"})
    assert (tree / "a.yaml").read_bytes() == b"new\n"
    assert (tree / "link-inside.yaml").is_symlink()
    assert (tree / "a.yaml").stat().st_mode & 0o777 == 0o640


def test_write_files_refuses_a_path_outside_the_tree(tree: Path) -> None:
    with pytest.raises(OSError, match="refusing to write outside"):
        localtree.write_files(tree, {"link-outside.yaml": b"new\n"})
    assert (tree.parent / "outside.yaml").read_bytes() == MARKED
