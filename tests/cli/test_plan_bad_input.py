"""Every hostile input of issue 2 in ONE `plan` run: each is reported, the rest still works."""

from __future__ import annotations

import json

from tests.cli.runner import run_bot
from tests.cli.test_cli import DEPLOYMENT, make_repo, write_tags

CONFIG = """\
version: 1
namespace: flux-system
imageRepositories:
  - name: podinfo
    image: ghcr.io/stefanprodan/podinfo
imagePolicies:
  - name: podinfo
    imageRepositoryRef: podinfo
    policy: {semver: {range: '>=5.0.0 <6'}}
  - name: backref
    imageRepositoryRef: podinfo
    filterTags: {pattern: '^(a)\\1$'}
    policy: {alphabetical: {order: asc}}
  - name: star-range
    imageRepositoryRef: podinfo
    policy: {semver: {range: '*-*'}}
imageUpdateAutomations:
  - name: healthy
    update: {path: ./apps, strategy: Setters}
  - name: evil-template
    update: {path: ./other, strategy: Setters}
    git: {commit: {messageTemplate: "{{ ''.__class__ }}"}}
"""

MARKER = b'# {"$imagepolicy": "flux-system:podinfo"}'
LAUGHS = (
    b"a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n"
    + b"".join(
        b"%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n"
        % ((ord("a") + i + 1,) * 2 + (ord("a") + i,) * 9)
        for i in range(9)
    )
    + b"image: ghcr.io/stefanprodan/podinfo:4.0.6 "
    + MARKER
    + b"\n"
)


def test_every_hostile_input_is_reported_and_the_healthy_file_updates(tmp_path):
    repo = make_repo(
        tmp_path / "repo",
        config=CONFIG,
        files={"apps/podinfo.yaml": DEPLOYMENT.replace("flux-system:nginx", "flux-system:podinfo")},
    )
    apps = repo / "apps"
    (apps / "laughs.yaml").write_bytes(LAUGHS)
    with (apps / "huge.yaml").open("wb") as out:  # 50 MB, with the marker bytes
        out.write(b"image: ghcr.io/stefanprodan/podinfo:4.0.6 " + MARKER + b"\n")
        out.write(b"# padding " * (50 * 1024 * 1024 // 10))
    (apps / "garbage.yaml").write_bytes(bytes(range(256)) * 64 + b'"$imagepolicy"')
    (apps / "latin1.yaml").write_bytes(
        b"name: caf\xe9\nimage: ghcr.io/stefanprodan/podinfo:4.0.6 " + MARKER + b"\n"
    )
    (apps / "dupes.yaml").write_bytes(
        b"image: ghcr.io/stefanprodan/podinfo:4.0.6 " + MARKER + b"\n"
        b"image: ghcr.io/stefanprodan/podinfo:4.0.6 " + MARKER + b"\n"
    )
    (apps / "trailing.yaml").write_bytes(
        b"image: ghcr.io/stefanprodan/podinfo:4.0.6 " + MARKER + b" keep me\n"
    )
    (repo / "other").mkdir()
    (repo / "other/app.yaml").write_bytes(
        b"image: ghcr.io/stefanprodan/podinfo:4.0.6 " + MARKER + b"\n"
    )
    tags = write_tags(tmp_path / "tags.json", {"ghcr.io/stefanprodan/podinfo": ["4.0.6", "5.0.3"]})

    proc = run_bot("plan", repo, "--tags", tags, "--json", "--write", timeout=300)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2  # config errors win
    out = json.loads(proc.stdout)
    errors, warnings = "\n".join(out["errors"]), "\n".join(out["warnings"])

    # config: the backreference and the `*-*` range, each with its line
    assert ".github/image-automation.yml:12:" in errors and "RE2" in errors
    assert ".github/image-automation.yml:16:" in errors and "*-*" in errors
    # the template cannot reach Python internals
    assert "messageTemplate" in errors
    assert "<class" not in proc.stdout
    # each bad file is a warning naming it
    for name in ("huge.yaml", "garbage.yaml", "latin1.yaml"):
        assert name in warnings, name
    # aliases are never expanded: the billion laughs file is just a file with one marker
    assert (apps / "laughs.yaml").read_bytes() == LAUGHS.replace(b"podinfo:4.0.6", b"podinfo:5.0.3")
    # the healthy automation still did its work, and only on the files it could read
    healthy = out["automations"]["healthy"]["result"]["files"]
    assert "podinfo.yaml" in healthy and "trailing.yaml" not in healthy
    assert "podinfo:5.0.3" in (apps / "podinfo.yaml").read_text()
    # duplicate keys: only the first is visited (Flux), and nothing crashes
    assert (apps / "dupes.yaml").read_bytes().count(b"podinfo:5.0.3") <= 1
    assert (apps / "trailing.yaml").read_bytes().endswith(b"4.0.6 " + MARKER + b" keep me\n")
    # the automation whose template failed wrote nothing
    assert b"4.0.6" in (repo / "other/app.yaml").read_bytes()
