"""No silent no-ops (issue 11 §4): `plan` and `check-config` warn at file:line:col when a
marker names no policy of the config, when its value can't be what its setter writes,
and when update.path holds nothing to update."""

from __future__ import annotations

import json

from tests.cli.runner import run_bot
from tests.cli.test_cli import CONFIG, TAGS, make_repo, write_tags

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  template:
    spec:
      containers:
        - name: wrong-namespace
          image: ghcr.io/stefanprodan/podinfo:4.0.6 # {"$imagepolicy": "apps:podinfo"}
        - name: misspelt-policy
          image: nginx:1.25 # {"$imagepolicy": "flux-system:ngnix"}
        - name: tag-on-a-whole-image
          image: nginx:1.25 # {"$imagepolicy": "flux-system:nginx:tag"}
        - name: fine
          image: nginx:1.25 # {"$imagepolicy": "flux-system:nginx"}
"""
WARNINGS = {
    # (line, column): what the warning says
    (10, 18): "is in namespace 'apps', but the config's namespace is 'flux-system'",
    (12, 18): "names policy 'ngnix', which the config does not define",
    (14, 18): "a ':tag' marker on 'nginx:1.25', which is not a bare tag",
}


def test_plan_and_check_config_warn_where_a_marker_would_change_nothing(tmp_path):
    repo = make_repo(tmp_path / "repo", files={"apps/podinfo.yaml": MANIFEST})
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})

    proc = run_bot("plan", repo, "--tags", tags, "--json")
    assert proc.returncode == 0, proc.stderr
    problems = json.loads(proc.stdout)["problems"]
    found = {(p["line"], p["column"]): p for p in problems if p["path"] == "apps/podinfo.yaml"}
    assert set(found) == set(WARNINGS)
    for where, text in WARNINGS.items():
        assert text in found[where]["message"] and found[where]["severity"] == "warning"
    assert "did you mean `namespace: apps` in the config?" in found[(10, 18)]["message"]
    assert "did you mean 'nginx'?" in found[(12, 18)]["message"]

    text = run_bot("plan", repo, "--tags", tags)
    for line, column in WARNINGS:
        assert f"warning: apps/podinfo.yaml:{line}:{column}: " in text.stderr

    check = run_bot("check-config", repo)
    assert check.returncode == 0, check.stderr
    for (line, column), message in WARNINGS.items():
        assert f"warning: apps/podinfo.yaml:{line}:{column}: " in check.stderr
        assert message in check.stderr


def test_an_update_path_that_holds_nothing_is_a_warning(tmp_path):
    config = CONFIG.replace("update: {path: ./apps,", "update: {path: ./aps,")
    repo = make_repo(tmp_path / "repo", config=config)
    line = config.splitlines().index("    update: {path: ./aps, strategy: Setters}") + 1
    config_path = repo / ".github/image-automation.yml"

    check = run_bot("check-config", repo)
    assert check.returncode == 0, check.stderr
    assert f"warning: {config_path}:{line}:1: automation 'apps': update.path 'aps' holds no file" in (
        check.stderr
    )
    tags = write_tags(tmp_path / "tags.json", {**TAGS, "nginx": ["1.25", "1.27"]})
    plan = run_bot("plan", repo, "--tags", tags)
    assert plan.returncode == 0, plan.stderr
    assert f"warning: {config_path}:{line}:1: " in plan.stderr


def test_a_tree_without_mistakes_gets_no_warning(tmp_path):
    repo = make_repo(tmp_path / "repo")
    check = run_bot("check-config", repo)
    assert check.returncode == 0 and check.stderr == ""
