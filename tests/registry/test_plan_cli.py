"""Issue 3 done-when: `python -m bot plan` against a real local registry.

Semver, rolling and aliasOf policies pick the right tags and digests, and a
`latest` re-pointed between two runs is followed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.runner import run_bot

pytestmark = pytest.mark.registry

CONFIG = """\
version: 1
namespace: apps
imageRepositories:
  - name: app
    image: {image}
imagePolicies:
  - name: stable
    imageRepositoryRef: app
    policy: {{semver: {{range: '>=1.0.0 <2'}}}}
    digestReflectionPolicy: IfNotPresent
  - name: rolling
    imageRepositoryRef: app
    policy: {{rolling: {{tag: latest}}}}
  - name: released
    imageRepositoryRef: app
    policy: {{semver: {{range: '>=1.0.0'}}}}
    aliasOf: latest
imageUpdateAutomations:
  - name: apps
    update: {{path: ., strategy: Setters}}
"""
MANIFEST = """\
stable: {image}:0.9.0@sha256:{zeros} # {{"$imagepolicy": "apps:stable"}}
rolling:
  repository: {image} # {{"$imagepolicy": "apps:rolling:name"}}
  tag: latest # {{"$imagepolicy": "apps:rolling:tag"}}
  digest: sha256:{zeros} # {{"$imagepolicy": "apps:rolling:digest"}}
released: {image}:0.9.0 # {{"$imagepolicy": "apps:released"}}
"""


def _plan(checkout: Path) -> dict:
    proc = run_bot("plan", checkout, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_plan_scans_the_registry_for_semver_rolling_and_alias(plain_registry, tmp_path):
    pusher = plain_registry.pusher
    image = plain_registry.image("cli/app")
    d100 = pusher.image("cli/app", "1.0.0", salt="cli-100")
    d110 = pusher.image("cli/app", ["1.1.0", "latest"], salt="cli-110")
    d200 = pusher.image("cli/app", "2.0.0", salt="cli-200")
    pusher.image("cli/app", "sha256-abc.sig", salt="cli-sig")  # excluded by default
    assert len({d100, d110, d200}) == 3

    checkout = tmp_path / "repo"
    (checkout / ".github").mkdir(parents=True)
    (checkout / ".github/image-automation.yml").write_text(CONFIG.format(image=image))
    (checkout / "app.yaml").write_text(MANIFEST.format(image=image, zeros="0" * 64))

    plan = _plan(checkout)
    assert plan["policyErrors"] == {}
    assert plan["observedPolicies"] == {
        "stable": {"name": image, "tag": "1.1.0", "digest": d110},
        "rolling": {"name": image, "tag": "latest", "digest": d110},
        # 2.0.0 is the highest, but only 1.1.0 shares latest's digest
        "released": {"name": image, "tag": "1.1.0", "digest": ""},
    }
    changes = [
        (c["setter"], c["newValue"])
        for obj in plan["automations"]["apps"]["result"]["files"]["app.yaml"]["objects"]
        for c in obj["changes"]
    ]
    assert changes == [
        ("apps:stable", f"{image}:1.1.0@{d110}"),
        ("apps:rolling:digest", d110),
        ("apps:released", f"{image}:1.1.0"),
    ]

    # latest moves to 2.0.0: rolling sees the new digest, aliasOf follows it
    pusher.image("cli/app", "latest", salt="cli-200")
    plan = _plan(checkout)
    assert plan["observedPolicies"]["rolling"] == {"name": image, "tag": "latest", "digest": d200}
    assert plan["observedPolicies"]["released"]["tag"] == "2.0.0"
    assert plan["observedPolicies"]["stable"]["tag"] == "1.1.0"


def test_plan_reports_an_unreachable_registry_clearly(tmp_path):
    checkout = tmp_path / "repo"
    (checkout / ".github").mkdir(parents=True)
    image = "127.0.0.1:9/nothing/here"  # port 9 (discard): nothing listens
    (checkout / ".github/image-automation.yml").write_text(CONFIG.format(image=image))
    (checkout / "app.yaml").write_text(MANIFEST.format(image=image, zeros="0" * 64))
    proc = run_bot("plan", checkout, "--json")
    assert proc.returncode == 1
    errors = json.loads(proc.stdout)["policyErrors"]
    assert set(errors) == {"stable", "rolling", "released"}
    assert all(image in message for message in errors.values()), errors
    assert "Traceback" not in proc.stderr
