"""Which files an automation reads (flux-behaviour §4.4), one path at a time and as a list."""

from __future__ import annotations

import pytest

from bot.update import UpdateError, candidate_paths
from bot.update.files import candidate_filter, ignored_single_file, is_candidate_name

TREE = [
    "README.md",
    "a.yaml",
    "b.yml",
    "c.YAML",
    ".yaml",
    "Kustomization",
    "kustomization.yaml",
    "sub/Kustomization",
    "sub/notKustomization",
    "sub/Kustomization.bak",
    ".github/workflows/ci.yml",
    "apps/deploy.yaml.bak",
    "apps/x.YAML",
    "apps/x.yaml~",
    "apps/podinfo.yaml",
    "apps/kustomization",
    "dir.yaml/inner.yaml",
    "dir.yaml/notes.txt",
]


@pytest.mark.parametrize(
    ("path", "read"),
    [
        ("a.yaml", True),
        ("b.yml", True),
        (".yaml", True),
        ("Kustomization", True),
        ("sub/Kustomization", True),
        ("dir.yaml/inner.yaml", True),
        ("c.YAML", False),
        ("x.Yml", False),
        ("sub/notKustomization", False),
        ("sub/Kustomization.bak", False),
        ("apps/kustomization", False),
        ("apps/deploy.yaml.bak", False),
        ("apps/x.yaml~", False),
        ("README.md", False),
        ("yaml", False),
    ],
)
def test_name_filter_is_flux_s(path: str, read: bool) -> None:
    assert is_candidate_name(path) is read


@pytest.mark.parametrize(
    "update_path", ["./apps/deploy.yaml.bak", "apps/x.YAML", "apps/x.yaml~", "sub/notKustomization"]
)
def test_a_single_file_with_a_name_flux_skips_is_not_read(update_path: str) -> None:
    # Flux difference 4 (issue 9): the name filter applies to a named file too.
    assert candidate_paths(TREE, update_path) == []
    assert candidate_filter(update_path)(update_path.removeprefix("./")) is None


@pytest.mark.parametrize(
    ("update_path", "expected"),
    [
        ("./apps/podinfo.yaml", [("apps/podinfo.yaml", "podinfo.yaml")]),
        ("sub/Kustomization", [("sub/Kustomization", "Kustomization")]),
        ("a.yaml", [("a.yaml", "a.yaml")]),
    ],
)
def test_a_single_file_with_a_yaml_name_is_read_under_its_base_name(
    update_path: str, expected: list[tuple[str, str]]
) -> None:
    assert candidate_paths(TREE, update_path) == expected


def test_a_directory_with_a_yaml_like_name_is_still_a_directory() -> None:
    assert candidate_paths(TREE, "dir.yaml") == [("dir.yaml/inner.yaml", "inner.yaml")]
    assert ignored_single_file(set(TREE), "dir.yaml") is None


@pytest.mark.parametrize("update_path", [".", "./", "apps", "./sub/", "dir.yaml", "nowhere"])
def test_the_one_path_filter_agrees_with_the_list(update_path: str) -> None:
    relative = candidate_filter(update_path)
    one_by_one = sorted((p, r) for p in TREE if (r := relative(p)) is not None)
    assert one_by_one == candidate_paths(TREE, update_path)


def test_the_filter_refuses_an_update_path_outside_the_tree() -> None:
    with pytest.raises(UpdateError):
        candidate_filter("../elsewhere")


@pytest.mark.parametrize("update_path", ["./apps/deploy.yaml.bak", "apps/x.YAML"])
def test_a_skipped_single_file_is_explained(update_path: str) -> None:
    message = ignored_single_file(set(TREE), update_path)
    assert message is not None
    assert message.startswith(f'update.path "{update_path}" names a file that is never updated')
    assert "*.yaml, *.yml (case-sensitive) or Kustomization" in message


@pytest.mark.parametrize(
    "update_path",
    [
        ".",  # the whole tree
        "apps",  # a directory
        "apps/podinfo.yaml",  # a file that is read
        "apps/missing.bak",  # no such file: nothing to say about its name
        "../outside",  # reported where the files are selected
    ],
)
def test_nothing_to_explain(update_path: str) -> None:
    assert ignored_single_file(set(TREE), update_path) is None
