"""`check-config` and `plan` read Flux manifests as config (issue 11 §1): found in the
tree when there is no config file, or listed by `fluxManifests:`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.runner import run_bot
from tests.manifests import deployment
from tests.test_config_manifests import AUTOMATION, OBJECTS

FLUX_DIR = "clusters/prod/flux-system"
# What `flux install` writes beside them: the CRDs name the group, but hold no image object.
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: imagepolicies.image.toolkit.fluxcd.io
spec:
  group: image.toolkit.fluxcd.io
"""


def flux_repo(root: Path, config: str | None = None) -> Path:
    ns = "\n  namespace: flux-system"
    files = {
        f"{FLUX_DIR}/images.yaml": OBJECTS.format(api="v1beta2", ns=ns),
        f"{FLUX_DIR}/automation.yaml": AUTOMATION.format(api="v1", ns=ns),
        f"{FLUX_DIR}/gotk-components.yaml": CRD,
        "apps/podinfo.yaml": deployment("5.0.0").decode(),
    }
    if config is not None:
        files[".github/image-automation.yml"] = config
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "tags.json").write_text(
        json.dumps({"ghcr.io/stefanprodan/podinfo": {"tags": ["5.0.0", "5.0.3", "6.0.0"]}})
    )
    return root


def test_with_no_config_file_the_flux_objects_in_the_tree_are_the_config(tmp_path):
    repo = flux_repo(tmp_path)
    checked = run_bot("check-config", repo)
    assert checked.returncode == 0, checked.stderr
    assert (
        "2 Flux manifests: ok (1 image repositories, 1 policies, 1 automations)" in checked.stdout
    )
    written = (repo / FLUX_DIR / "automation.yaml").read_text().splitlines()
    suspend = written.index("  suspend: true") + 1
    assert (
        f"notice: {FLUX_DIR}/automation.yaml:{suspend}:3: "
        "ImageUpdateAutomation flux-system/flux-system.spec.suspend: cluster-only, not used"
    ) in checked.stderr

    planned = run_bot("plan", repo, "--tags", repo / "tags.json", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    automation = plan["automations"]["flux-system"]
    assert automation["title"].endswith("to ghcr.io/stefanprodan/podinfo:5.0.3")
    # Flux's Go template, as written in the manifest, made the commit message.
    assert automation["commitMessage"] == (
        "ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3\n"
    )
    assert "Automation: flux-system/flux-system" in automation["body"]
    notices = [p for p in plan["problems"] if p["severity"] == "notice"]
    assert {p["path"] for p in notices} == {
        f"{FLUX_DIR}/images.yaml",
        f"{FLUX_DIR}/automation.yaml",
    }
    assert plan["errors"] == []


def test_flux_manifests_in_the_config_file_mix_with_its_own_entries(tmp_path):
    config = (
        "version: 1\nnamespace: flux-system\nfluxManifests: [clusters/*/flux-system/images.yaml]\n"
        "imageUpdateAutomations:\n  - name: apps\n    update: {path: ./apps}\n"
    )
    repo = flux_repo(tmp_path, config)
    planned = run_bot("plan", repo, "--tags", repo / "tags.json", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    # Only the listed file is read: its policy, with the file's own automation.
    assert set(plan["automations"]) == {"apps"}
    assert plan["automations"]["apps"]["title"].endswith("podinfo:5.0.3")


def test_a_name_in_both_is_an_error_naming_both_places(tmp_path):
    config = (
        "version: 1\nnamespace: flux-system\nfluxManifests: [clusters/prod]\n"
        "imageRepositories:\n  - name: podinfo\n    image: ghcr.io/stefanprodan/podinfo\n"
    )
    repo = flux_repo(tmp_path, config)
    checked = run_bot("check-config", repo)
    assert checked.returncode == 2
    assert (
        f"{FLUX_DIR}/images.yaml:4:9: ImageRepository flux-system/podinfo.name: 'podinfo' is "
        f"defined twice: at {repo}/.github/image-automation.yml:5 and at {FLUX_DIR}/images.yaml:1"
    ) in checked.stderr


def test_no_config_and_no_flux_objects_says_what_to_do(tmp_path):
    (tmp_path / "app.yaml").write_text(CRD)
    checked = run_bot("check-config", tmp_path)
    assert checked.returncode == 2
    assert "no config file, and no Flux image objects under" in checked.stderr
