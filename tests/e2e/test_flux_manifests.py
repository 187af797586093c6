"""`serve` with Flux manifests as the config (issue 11 §1): a repository holding only Flux's
objects and a marked Deployment gets its pull request, and a changed manifest is read again."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import REPOSITORY, install, manifest

pytestmark = pytest.mark.e2e

IMAGES = "clusters/prod/flux-system/images.yaml"


def flux_objects(image: str, semver_range: str) -> bytes:
    return f"""\
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: {image}
  interval: 1s
  provider: generic
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: "{semver_range}"
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: podinfo-update
  namespace: flux-system
spec:
  interval: 1s
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: |
        Automated image update

        Files:
        {{{{ range $filename, $_ := .Changed.FileChanges -}}}}
        - {{{{ $filename }}}}
        {{{{ end -}}}}
    push:
      branch: flux-image-updates
  update:
    path: ./deploy
    strategy: Setters
""".encode()


async def test_serve_takes_its_config_from_flux_manifests_found_in_the_tree(bot, image):
    image.push("5.0.9")
    head = install(
        bot,
        {IMAGES: flux_objects(image, "5.0.x <5.0.5"), "deploy/app.yaml": manifest(image, "5.0.0")},
    )
    (pr,) = await bot.pull_opened(REPOSITORY)
    assert pr["head"] == "flux-image-updates" and pr["base"] == "main"
    deploy = bot.sim.read_file(REPOSITORY, "flux-image-updates", "deploy/app.yaml").decode()
    assert f"{image}:5.0.3" in deploy
    commit = bot.sim.repo(REPOSITORY).git.commit_info(pr["head_sha"])
    assert commit.message == b"Automated image update\n\nFiles:\n- app.yaml\n"
    assert commit.author == b"fluxcdbot <fluxcdbot@users.noreply.github.com>"
    # The cluster-only field is a notice on the check run, at its line.
    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    assert check["conclusion"] == "success"
    (notice,) = check["annotations"]
    assert (notice["path"], notice["start_line"], notice["annotation_level"]) == (
        IMAGES,
        9,
        "notice",
    )
    assert "provider" in notice["message"]

    # The manifest changes on the default branch: it is read again, and the PR follows.
    bot.sim.push(REPOSITORY, "main", {IMAGES: flux_objects(image, "5.0.x")}, as_user="alice")

    async def moved() -> bool:
        pulls = bot.open_pulls(REPOSITORY)
        return bool(pulls) and pulls[0]["head_sha"] != pr["head_sha"]

    await bot.wait_until(moved, what="the PR to follow the changed policy")
    deploy = bot.sim.read_file(REPOSITORY, "flux-image-updates", "deploy/app.yaml").decode()
    assert f"{image}:5.0.9" in deploy
