"""Flux's own setter fixtures, run through the real `python -m bot plan` command.

Done-when of issue 2: the same changed files and change lists as Flux's
expected results, each changed file means the same YAML as Flux's expected
file, and the byte diff touches only the lines of the changed values.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.cli.runner import run_bot
from tests.datapaths import FLUX_FIXTURES

FLUX = FLUX_FIXTURES
EXPECTED = json.loads((FLUX / "expected-results.json").read_text())["tests"]
DIGEST = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be"

SETTERS_CONFIG = """\
version: 1
namespace: automation-ns
imageRepositories:
  - name: updated
    image: index.repo.fake/updated
  - name: image
    image: image
imagePolicies:
  - name: policy
    imageRepositoryRef: updated
    policy: {semver: {range: '>=1.0.0'}}
  - name: unchanged
    imageRepositoryRef: image
    policy: {semver: {range: '1.0.0'}}
  - name: policy-with-digest
    imageRepositoryRef: image
    policy: {semver: {range: '>=1.0.0'}}
    digestReflectionPolicy: IfNotPresent
imageUpdateAutomations:
  - name: update
    update: {path: ., strategy: Setters}
"""
SETTERS_TAGS = {
    "index.repo.fake/updated": ["v1.0.0", "v1.0.1", "v0.9.0", "latest"],
    "image": {"tags": ["v1.0.0", "v0.1.0", "v0.9.0"], "digests": {"v1.0.0": DIGEST}},
}


def _copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for path in dst.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dst


def _changes_from_plan(plan: dict, automation: str) -> list[dict]:
    changes = []
    for file, entry in plan["automations"][automation]["result"]["files"].items():
        for obj in entry["objects"]:
            identity = {k: obj[k] for k in ("apiVersion", "kind", "namespace", "name")}
            for change in obj["changes"]:
                changes.append(
                    {
                        "file": file,
                        "object": identity,
                        "old": change["oldValue"],
                        "new": change["newValue"],
                        "setter": change["setter"],
                    }
                )
    return changes


def _assert_minimal_diff(before: bytes, after: bytes, olds: list[str]) -> None:
    """Every line that differs held one of the changed values; nothing else moved."""
    lines_before, lines_after = before.splitlines(True), after.splitlines(True)
    assert len(lines_before) == len(lines_after)
    for old_line, new_line in zip(lines_before, lines_after, strict=True):
        if old_line != new_line:
            assert any(old.encode() in old_line for old in olds), (old_line, new_line)


def _same_yaml(a: bytes, b: bytes) -> bool:
    yaml = YAML(typ="safe", pure=True)
    return list(yaml.load_all(a)) == list(yaml.load_all(b))


@pytest.fixture
def setters_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    tree = _copy_tree(FLUX / "internal/update/testdata/setters/original", tmp_path / "tree")
    # The stored copy cannot hold the fixture's dangling symlink; put it back.
    (tree / "test.yaml").unlink()
    (tree / "test.yaml").symlink_to("testing.yaml")
    config = tmp_path / "config.yml"
    config.write_text(SETTERS_CONFIG)
    tags = tmp_path / "tags.json"
    tags.write_text(json.dumps(SETTERS_TAGS))
    return tree, config, tags


def test_setters_fixture_change_list_matches_flux(setters_tree):
    tree, config, tags = setters_tree
    proc = run_bot("plan", tree, "--config", config, "--tags", tags, "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    expected = next(t for t in EXPECTED if t["id"] == "TestUpdateWithSetters")

    assert _changes_from_plan(plan, "update") == expected["expected_changes"]
    assert plan["observedPolicies"] == {
        "policy": {"name": "index.repo.fake/updated", "tag": "v1.0.1", "digest": ""},
        "policy-with-digest": {"name": "image", "tag": "v1.0.0", "digest": DIGEST},
        "unchanged": {"name": "image", "tag": "v1.0.0", "digest": ""},
    }
    assert plan["policyErrors"] == {} and plan["errors"] == []


def test_setters_fixture_write_gives_flux_expected_files(setters_tree):
    tree, config, tags = setters_tree
    original = {p.name: p.read_bytes() for p in tree.iterdir() if not p.is_symlink()}

    proc = run_bot("plan", tree, "--config", config, "--tags", tags, "--write")
    assert proc.returncode == 0, proc.stderr

    expected_dir = FLUX / "internal/update/testdata/setters/expected"
    changed = {
        p.name for p in tree.iterdir() if not p.is_symlink() and p.read_bytes() != original[p.name]
    }
    assert changed == {p.name for p in expected_dir.iterdir()}
    expected = next(t for t in EXPECTED if t["id"] == "TestUpdateWithSetters")
    for name in changed:
        after = (tree / name).read_bytes()
        want = (expected_dir / name).read_bytes()
        assert _same_yaml(after, want)
        assert after == want  # in-place edits happen to be byte-identical here
        olds = [c["old"] for c in expected["expected_changes"] if c["file"] == name]
        _assert_minimal_diff(original[name], after, olds)
    assert (tree / "test.yaml").is_symlink()  # the dangling link was skipped, not replaced


def test_setters_fixture_text_output_is_the_pr_body(setters_tree):
    tree, config, tags = setters_tree
    proc = run_bot("plan", tree, "--config", config, "--tags", tags)
    assert proc.returncode == 0, proc.stderr
    assert "Automation: automation-ns/update" in proc.stdout
    assert "- File: marked.yaml" in proc.stdout
    assert "  - Object: CronJob/bar/foo" in proc.stdout
    assert "    - image:v1.0.0 -> index.repo.fake/updated:v1.0.1" in proc.stdout
    # nothing was written without --write
    assert b"index.repo.fake" not in (tree / "marked.yaml").read_bytes()


POLICY_CONFIG = """\
version: 1
namespace: test-ns
imageRepositories:
  - {{name: foo, image: foo}}
  - {{name: helloworld, image: helloworld}}
  - {{name: bar, image: bar}}
imagePolicies:
  - {{name: policy1, imageRepositoryRef: foo, policy: {{semver: {{range: '1.x'}}}}}}
  - {{name: policy2, imageRepositoryRef: helloworld, policy: {{semver: {{range: '1.x'}}}}}}
  - {{name: policy3, imageRepositoryRef: bar, policy: {{semver: {{range: '2.x'}}}}}}
imageUpdateAutomations:
  - name: update
    update: {{path: '{path}', strategy: Setters}}
"""
POLICY_TAGS = {
    "foo": ["1.1.1", "1.0.0"],
    "helloworld": ["1.0.0", "1.0.1", "0.9.0"],
    "bar": ["2.2.2", "1.0.0"],
}


@pytest.mark.parametrize(
    ("input_dir", "expected_dir", "update_path", "marked"),
    [
        (
            "internal/policy/testdata/appconfig",
            "internal/policy/testdata/appconfig-setters-expected",
            ".",
            ["deploy.yaml"],
        ),
        (
            "internal/policy/testdata/pathconfig",
            "internal/policy/testdata/pathconfig-expected",
            "./yes",
            ["yes/deploy.yaml", "no/deploy.yaml"],
        ),
        (
            "internal/controller/testdata/appconfig",
            "internal/controller/testdata/appconfig-setters-expected",
            ".",
            ["deploy.yaml"],
        ),
    ],
)
def test_apply_policies_fixtures(tmp_path, input_dir, expected_dir, update_path, marked):
    marker = '{"$imagepolicy": "test-ns:policy2"}'
    tree = _copy_tree(FLUX / input_dir, tmp_path / "tree")
    want = _copy_tree(FLUX / expected_dir, tmp_path / "want")
    for root in (tree, want):
        for rel in marked:
            path = root / rel
            path.write_text(path.read_text().replace("SETTER_SITE", marker))
    config = tmp_path / "config.yml"
    config.write_text(POLICY_CONFIG.format(path=update_path))
    tags = tmp_path / "tags.json"
    tags.write_text(json.dumps(POLICY_TAGS))

    proc = run_bot("plan", tree, "--config", config, "--tags", tags, "--write", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    changes = _changes_from_plan(plan, "update")
    assert [(c["old"], c["new"], c["setter"]) for c in changes] == [
        ("helloworld:1.0.0", "helloworld:1.0.1", "test-ns:policy2")
    ]
    assert changes[0]["object"]["kind"] == "Deployment"
    for rel in marked:
        assert (tree / rel).read_bytes() == (want / rel).read_bytes(), rel
