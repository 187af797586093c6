"""Replays Flux's own setter fixtures (peer-fixtures/flux): same change list, byte-identical files."""

import json
import os
import shutil
from pathlib import Path

import pytest

from bot.policy.model import LatestRef
from bot.update import build_setters, candidate_paths, update_files
from tests.datapaths import FLUX_FIXTURES

FLUX = FLUX_FIXTURES
SETTERS_DIR = FLUX / "internal/update/testdata/setters"


def latest_ref(image: str) -> LatestRef:
    # Split as the upstream tests do: digest after the last "@", tag after the last ":".
    rest, _, digest = image.rpartition("@") if "@" in image else (image, "", "")
    name, _, tag = rest.rpartition(":")
    return LatestRef(name, tag, digest)


def read_tree(root: Path, update_path: str = ".") -> dict[str, bytes]:
    """What a caller does: list the tree, select candidates, read them (dangling links skipped)."""
    listed = [p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()]
    files = {}
    for repo_path, rel in candidate_paths(listed, update_path):
        try:
            files[rel] = (root / repo_path).read_bytes()
        except FileNotFoundError:
            continue  # a dangling symlink, as Flux
    return files


def expected_test(test_id: str) -> dict:
    tests = json.loads((FLUX / "expected-results.json").read_text())["tests"]
    return next(t for t in tests if t["id"] == test_id)


def setters_for(policies_latest: dict[str, str]) -> dict[str, str]:
    namespaces = {key.split(":")[0] for key in policies_latest}
    (namespace,) = namespaces
    return build_setters(
        namespace, {key.split(":")[1]: latest_ref(image) for key, image in policies_latest.items()}
    )


def flat_changes(result) -> list[dict]:
    return [
        {
            "file": path,
            "object": obj.to_json(),
            "old": c.old_value,
            "new": c.new_value,
            "setter": c.setter,
        }
        for path, objects in result.sorted_files()
        for obj, changes in objects
        for c in changes
    ]


def run_setters_fixture(root: Path):
    test = expected_test("TestUpdateWithSetters")
    return test, update_files(read_tree(root), setters_for(test["policies_latest"]))


def test_update_with_setters_change_list_and_bytes() -> None:
    test, outcome = run_setters_fixture(SETTERS_DIR / "original")
    assert flat_changes(outcome.result) == test["expected_changes"]
    assert sorted(outcome.edited) == ["Kustomization", "kustomization.yml", "marked.yaml"]
    for name, content in outcome.edited.items():
        assert content == (SETTERS_DIR / "expected" / name).read_bytes(), name
    assert outcome.warnings == []  # test.yaml ("testing.yaml") has no marker: never parsed


def test_screening_reads_exactly_the_marked_files() -> None:
    test = expected_test("ScreeningLocalReader")
    files = read_tree(SETTERS_DIR / "original")
    marked = [
        name for name, content in files.items() if b'"' + test["token"].encode() + b'"' in content
    ]
    assert sorted(marked) == sorted(test["expected_files_read"])


def test_dangling_symlink_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "original"
    shutil.copytree(SETTERS_DIR / "original", root)
    (root / "test.yaml").unlink()
    os.symlink("testing.yaml", root / "test.yaml")  # as upstream: a link to nothing
    test, outcome = run_setters_fixture(root)
    assert flat_changes(outcome.result) == test["expected_changes"]
    assert outcome.warnings == []
    assert "otherns.yaml" not in outcome.edited and "unmarked.yaml" not in outcome.edited


def marker_tree(src: Path, dest: Path, marker: str) -> Path:
    shutil.copytree(src, dest)
    for path in dest.rglob("*.yaml"):
        path.write_text(path.read_text().replace("SETTER_SITE", marker))
    return dest


@pytest.mark.parametrize("case", [0, 3])  # "one policy" and "multiple policies"
def test_apply_policies_appconfig(tmp_path: Path, case: int) -> None:
    spec = expected_test("Test_applyPolicies")["cases"][case]
    marker = json.dumps({"$imagepolicy": f"test-ns:{spec['target_policy']}"})
    original = marker_tree(FLUX / spec["input_dir"], tmp_path / "in", marker)
    expected = marker_tree(FLUX / spec["expected_dir"], tmp_path / "out", marker)
    outcome = update_files(read_tree(original), setters_for(spec["policies_latest"]))
    assert outcome.edited == {"deploy.yaml": (expected / "deploy.yaml").read_bytes()}
    assert flat_changes(outcome.result) == [
        {
            "file": "deploy.yaml",
            "object": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": "",
                "name": "test",
            },
            "old": "helloworld:1.0.0",
            "new": "helloworld:1.0.1",
            "setter": f"test-ns:{spec['target_policy']}",
        }
    ]


def test_apply_policies_pathconfig(tmp_path: Path) -> None:
    spec = expected_test("Test_applyPolicies")["cases"][4]
    marker = json.dumps({"$imagepolicy": f"test-ns:{spec['target_policy']}"})
    original = marker_tree(FLUX / spec["input_dir"], tmp_path / "in", marker)
    expected = marker_tree(FLUX / spec["expected_dir"], tmp_path / "out", marker)
    files = read_tree(original, spec["update"]["path"])
    assert sorted(files) == ["deploy.yaml"]  # keys relative to ./yes; no/ not even read
    outcome = update_files(files, setters_for(spec["policies_latest"]))
    assert outcome.edited == {"deploy.yaml": (expected / "yes/deploy.yaml").read_bytes()}
    assert (expected / "no/deploy.yaml").read_bytes() == (original / "no/deploy.yaml").read_bytes()


def test_controller_appconfig(tmp_path: Path) -> None:
    spec = expected_test("controller/source fixtures")
    marker = json.dumps({"$imagepolicy": "flux-system:app"})
    base = FLUX / "internal/controller/testdata"
    original = marker_tree(base / "appconfig", tmp_path / "in", marker)
    expected = marker_tree(base / "appconfig-setters-expected", tmp_path / "out", marker)
    outcome = update_files(
        read_tree(original), setters_for({"flux-system:app": "helloworld:1.0.1"})
    )
    assert outcome.edited == {"deploy.yaml": (expected / "deploy.yaml").read_bytes()}
    (change,) = flat_changes(outcome.result)
    want = {**spec["expected_changes"][0], "setter": "flux-system:app"}
    assert change == want
