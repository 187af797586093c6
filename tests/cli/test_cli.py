"""`python -m bot plan` and `check-config`: output, JSON and exit codes (design §6)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.runner import REPO, run_bot

CONFIG = """\
version: 1
namespace: flux-system
imageRepositories:
  - name: podinfo
    image: ghcr.io/stefanprodan/podinfo
  - name: nginx
    image: nginx
imagePolicies:
  - name: podinfo
    imageRepositoryRef: podinfo
    policy: {semver: {range: '>=5.0.0 <6'}}
  - name: nginx
    imageRepositoryRef: nginx
    policy: {numerical: {order: asc}}
imageUpdateAutomations:
  - name: apps
    update: {path: ./apps, strategy: Setters}
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: default
spec:
  template:
    spec:
      containers:
        - name: podinfod
          image: ghcr.io/stefanprodan/podinfo:4.0.6 # {"$imagepolicy": "flux-system:podinfo"}
        - name: proxy
          image: nginx:1.25 # {"$imagepolicy": "flux-system:nginx"}
"""
TAGS = {
    "ghcr.io/stefanprodan/podinfo": ["4.0.6", "5.0.3", "5.0.0", "6.1.0", "5.1.0-rc.1"],
    "nginx": ["1.25", "1.27", "latest"],
}


def make_repo(root: Path, *, config: str = CONFIG, files: dict[str, str] | None = None) -> Path:
    (root / ".github").mkdir(parents=True)
    (root / ".github" / "image-automation.yml").write_text(config)
    for rel, text in (files or {"apps/podinfo.yaml": DEPLOYMENT}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def write_tags(path: Path, tags: dict = TAGS) -> Path:
    path.write_text(json.dumps(tags))
    return path


def test_plan_prints_the_pull_request_body(tmp_path):
    repo = make_repo(tmp_path / "repo")
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    proc = run_bot("plan", repo, "--tags", tags)
    assert proc.returncode == 0, proc.stderr
    assert "Automation: flux-system/apps" in proc.stdout
    assert "- File: podinfo.yaml" in proc.stdout
    assert "  - Object: Deployment/default/podinfo" in proc.stdout
    assert (
        "    - ghcr.io/stefanprodan/podinfo:4.0.6 -> ghcr.io/stefanprodan/podinfo:5.0.3"
        in proc.stdout
    )
    assert "    - nginx:1.25 -> nginx:1.27" in proc.stdout


def test_plan_json_contract_and_policy_error_exit_1(tmp_path):
    repo = make_repo(tmp_path / "repo")
    tags = write_tags(tmp_path / "tags.json")  # "latest" breaks the numerical policy
    proc = run_bot("plan", repo, "--tags", tags, "--json")
    assert proc.returncode == 1, proc.stderr
    plan = json.loads(proc.stdout)
    assert set(plan) >= {"observedPolicies", "policyErrors", "automations", "errors"}
    assert plan["observedPolicies"] == {
        "podinfo": {"name": "ghcr.io/stefanprodan/podinfo", "tag": "5.0.3", "digest": ""}
    }
    assert plan["policyErrors"] == {"nginx": "failed to parse invalid numeric value 'latest'"}
    apps = plan["automations"]["apps"]
    assert set(apps) == {"result", "commitMessage", "title", "body"}
    assert apps["commitMessage"] == "Update from image update automation"
    assert apps["result"] == {
        "files": {
            "podinfo.yaml": {
                "objects": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "namespace": "default",
                        "name": "podinfo",
                        "changes": [
                            {
                                "oldValue": "ghcr.io/stefanprodan/podinfo:4.0.6",
                                "newValue": "ghcr.io/stefanprodan/podinfo:5.0.3",
                                "setter": "flux-system:podinfo",
                            }
                        ],
                    }
                ]
            }
        }
    }
    # the other policy still updated its file
    assert (repo / "apps/podinfo.yaml").read_text() == DEPLOYMENT


def test_plan_write_edits_only_the_marked_bytes(tmp_path):
    repo = make_repo(tmp_path / "repo")
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    before = (repo / "apps/podinfo.yaml").read_text()
    proc = run_bot("plan", repo, "--tags", tags, "--write")
    assert proc.returncode == 0, proc.stderr
    after = (repo / "apps/podinfo.yaml").read_text()
    assert after == before.replace("podinfo:4.0.6", "podinfo:5.0.3").replace(
        "nginx:1.25", "nginx:1.27"
    )
    # a second run finds nothing to change
    proc = run_bot("plan", repo, "--tags", tags, "--json")
    assert json.loads(proc.stdout)["automations"]["apps"]["result"] == {"files": {}}


def test_config_errors_exit_2_with_line_and_column(tmp_path):
    bad = CONFIG.replace("order: asc", "order: upwards")
    repo = make_repo(tmp_path / "repo", config=bad)
    tags = write_tags(tmp_path / "tags.json")
    proc = run_bot("plan", repo, "--tags", tags, "--json")
    assert proc.returncode == 2
    errors = json.loads(proc.stdout)["errors"]
    assert len(errors) == 1
    assert errors[0].startswith(f"{repo / '.github/image-automation.yml'}:14:")
    assert "'upwards' is not allowed; expected one of asc, desc" in errors[0]
    # the valid policy still ran
    assert json.loads(proc.stdout)["observedPolicies"]["podinfo"]["tag"] == "5.0.3"


def test_check_config(tmp_path):
    good = make_repo(tmp_path / "good")
    proc = run_bot("check-config", good)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout

    bad = make_repo(tmp_path / "bad", config=CONFIG.replace("range: '>=5.0.0 <6'", "range: '*-*'"))
    proc = run_bot("check-config", bad)
    assert proc.returncode == 2
    assert ".github/image-automation.yml:11:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_config_and_bad_tags_file_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_bot("plan", tmp_path / "empty", "--tags", tmp_path / "nope.json")
    assert proc.returncode == 2
    assert "image-automation.yml" in proc.stderr and "no config file" in proc.stderr

    repo = make_repo(tmp_path / "repo")
    broken = tmp_path / "tags.json"
    broken.write_text('{"nginx": ["1.0", }')
    proc = run_bot("plan", repo, "--tags", broken)
    assert proc.returncode == 2
    assert f"{broken}:1:" in proc.stderr and "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_template_cannot_reach_python_internals(tmp_path):
    config = CONFIG.replace(
        "    update: {path: ./apps, strategy: Setters}",
        "    update: {path: ./apps, strategy: Setters}\n"
        "    git: {commit: {messageTemplate: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"}}",
    )
    repo = make_repo(tmp_path / "repo", config=config)
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    proc = run_bot("plan", repo, "--tags", tags, "--json")
    out = json.loads(proc.stdout)
    assert "subclasses" not in out["automations"]["apps"]["commitMessage"]
    assert "<class" not in proc.stdout
    assert proc.returncode == 1
    assert any("messageTemplate" in e for e in out["errors"])


def test_bad_files_are_warnings_and_the_rest_still_updates(tmp_path):
    files = {
        "apps/podinfo.yaml": DEPLOYMENT,
        "apps/broken.yaml": 'a: [unclosed # {"$imagepolicy": "flux-system:podinfo"}\n',
    }
    repo = make_repo(tmp_path / "repo", files=files)
    (repo / "apps/garbage.yaml").write_bytes(b'\xff\xfe\x00"$imagepolicy"\x00\x9c' * 100)
    (repo / "apps/dangling.yaml").symlink_to("nowhere.yaml")
    (repo / "apps/escape.yaml").symlink_to("/etc/hostname")
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    proc = run_bot("plan", repo, "--tags", tags, "--json", "--write")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out["automations"]["apps"]["result"]["files"]) == ["podinfo.yaml"]
    warnings = "\n".join(out["warnings"])
    assert "broken.yaml" in warnings and "garbage.yaml" in warnings
    assert "podinfo:5.0.3" in (repo / "apps/podinfo.yaml").read_text()


@pytest.mark.parametrize("example", ["podinfo"])
def test_readme_example_runs(example):
    root = REPO / "examples" / example
    proc = run_bot("plan", root, "--tags", root / "tags.json")
    assert proc.returncode == 0, proc.stderr
    assert "ghcr.io/stefanprodan/podinfo:4.0.6 -> ghcr.io/stefanprodan/podinfo:5.0.3" in proc.stdout
    assert "4.0.6 -> 5.0.3" in proc.stdout


def test_problems_name_the_file_they_are_in_relative_to_the_repository(tmp_path):
    # A broken file deep under update.path, a failing policy, a template error in a config
    # given with --config: each problem names its own file and line, typed in --json.
    files = {
        "apps/podinfo.yaml": DEPLOYMENT,
        "apps/prod/broken.yaml": 'a: [unclosed\nb: 1 # {"$imagepolicy": "flux-system:podinfo"}\n',
    }
    repo = make_repo(tmp_path / "repo", files=files)
    mine = tmp_path / "my.yml"
    mine.write_text(CONFIG + "    git: {commit: {messageTemplate: '{{ Nope.x }}'}}\n")
    tags = write_tags(tmp_path / "tags.json")  # "latest" breaks the numerical policy
    proc = run_bot("plan", repo, "--config", mine, "--tags", tags, "--json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    problems = out["problems"]
    by_path = {}
    for p in problems:
        by_path.setdefault(p["path"], []).append(p)
    (broken,) = by_path["apps/prod/broken.yaml"]
    assert (broken["line"], broken["severity"]) == (2, "warning")
    template_line = len(CONFIG.splitlines()) + 1  # the messageTemplate line itself
    nginx_line = CONFIG.splitlines().index("  - name: nginx", 10) + 1
    lines = sorted((p["line"], p["severity"]) for p in by_path[str(mine)])
    assert lines == [(nginx_line, "error"), (template_line, "error")]
    assert not any(p["path"].endswith("image-automation.yml") for p in problems)
    (error,) = out["errors"]  # the policy's is under policyErrors
    assert error.startswith(f"{mine}:{template_line}:1: automation 'apps': messageTemplate:1:")


def test_a_config_that_is_not_utf8_says_so(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / ".github/image-automation.yml").write_bytes(b"version: 1\nnamespace: \xff\n")
    proc = run_bot("check-config", repo)
    assert proc.returncode == 2
    assert "image-automation.yml:2:" in proc.stderr and "UTF-8" in proc.stderr


def test_version_and_the_installed_script_name():
    proc = run_bot("--version")
    assert proc.returncode == 0
    assert re.fullmatch(r"image-automation-bot \d+\.\d+\.\d+\S*\n", proc.stdout)
    script = Path(sys.executable).with_name("image-automation-bot")
    installed = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0
    assert installed.stdout.startswith("usage: image-automation-bot ")
    assert run_bot("--help").stdout.startswith("usage: python -m bot ")


def _variables_serve_reads() -> set[str]:
    """The names `serve` reads from its environment, found in the source."""
    names: set[str] = set()
    for source in (REPO / "bot").rglob("*.py"):
        if source.name == "run.py":
            continue  # `python -m bot run` (the Action) reads its own: GITHUB_TOKEN and such
        text = source.read_text()
        names.update(re.findall(r'environ(?:\.get\(|\[)"([A-Z_]+)"', text))
        names.update(re.findall(r'(?:_number|positive)\(environ, "([A-Z_]+)"', text))
        names.update(re.findall(r'(?:positive|limit|whole)\("([A-Z_]+)"', text))
        names.update(re.findall(r'^[A-Z_]+_(?:SETTING|VARIABLE) = "([A-Z_]+)"', text, re.M))
    return names


def test_serve_help_lists_every_variable_with_its_default():
    from bot.scheduler import DEFAULT_CONCURRENCY
    from bot.store.database import DEFAULT_DATABASE_URL

    proc = run_bot("serve", "--help")
    assert proc.returncode == 0, proc.stderr
    listed = set(re.findall(r"^  ([A-Z_]+) ", proc.stdout, re.M))
    read = _variables_serve_reads()
    assert {"APP_ID", "CONCURRENCY", "DATABASE_URL", "LOG_FORMAT", "REGISTRY_MAX_TAGS"} <= read
    assert read <= listed, f"not in serve --help: {sorted(read - listed)}"
    line = {m[0]: m[1] for m in re.findall(r"^  ([A-Z_]+) .*\[(.*)\]$", proc.stdout, re.M)}
    assert line["CONCURRENCY"] == str(DEFAULT_CONCURRENCY)
    assert line["DATABASE_URL"] == DEFAULT_DATABASE_URL
    assert line["APP_ID"] == "required" and line["WEBHOOK_SECRET"] == "required"

