"""A single-file update.path that Flux's name filter skips (issue 9, Flux difference 4)."""

from __future__ import annotations

import json

import pytest

from tests.cli.runner import run_bot
from tests.cli.test_cli import CONFIG, DEPLOYMENT, TAGS, make_repo, write_tags

UPDATE_PATH_LINE = CONFIG.splitlines().index("    update: {path: ./apps, strategy: Setters}") + 1


def _config(update_path: str) -> str:
    return CONFIG.replace("update: {path: ./apps,", f"update: {{path: {update_path},")


@pytest.mark.parametrize("name", ["deploy.yaml.bak", "x.YAML", "kustomization"])
def test_a_named_file_flux_skips_is_left_alone_with_a_warning(tmp_path, name):
    repo = make_repo(
        tmp_path / "repo", config=_config(f"./apps/{name}"), files={f"apps/{name}": DEPLOYMENT}
    )
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    proc = run_bot("plan", repo, "--tags", tags, "--json", "--write")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["automations"]["apps"]["result"] == {"files": {}}
    assert (repo / "apps" / name).read_text() == DEPLOYMENT
    (problem,) = out["problems"]
    assert problem["path"] == str(repo / ".github/image-automation.yml")
    assert (problem["line"], problem["severity"]) == (UPDATE_PATH_LINE, "warning")
    assert problem["message"].startswith(
        f"automation 'apps': update.path \"apps/{name}\" names a file that is never updated"
    )
    assert out["warnings"] == [f"{problem['path']}:{UPDATE_PATH_LINE}:1: {problem['message']}"]

    text = run_bot("plan", repo, "--tags", tags)
    assert text.returncode == 0
    assert "== apps: nothing to change" in text.stdout
    assert f"warning: {problem['path']}:{UPDATE_PATH_LINE}:1: " in text.stderr

    check = run_bot("check-config", repo)
    assert check.returncode == 0, check.stderr
    assert "ok" in check.stdout
    assert f'update.path "apps/{name}" names a file that is never updated' in check.stderr


def test_a_named_yaml_file_is_updated_without_a_warning(tmp_path):
    repo = make_repo(tmp_path / "repo", config=_config("./apps/podinfo.yaml"))
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    proc = run_bot("plan", repo, "--tags", tags, "--json", "--write")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out["automations"]["apps"]["result"]["files"]) == ["podinfo.yaml"]
    assert out["problems"] == []
    assert "podinfo:5.0.3" in (repo / "apps/podinfo.yaml").read_text()


def test_a_directory_with_a_file_like_name_is_walked(tmp_path):
    repo = make_repo(
        tmp_path / "repo",
        config=_config("./deploy.yaml.bak"),
        files={"deploy.yaml.bak/podinfo.yaml": DEPLOYMENT},
    )
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    proc = run_bot("plan", repo, "--tags", tags, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out["automations"]["apps"]["result"]["files"]) == ["podinfo.yaml"]
    assert out["problems"] == []
    assert "warning" not in run_bot("check-config", repo).stderr
