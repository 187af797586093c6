"""Release notes end to end (issue 12 §1): images pushed to the real registry carry OCI
annotations; `serve` reads them and the source repository's releases into the PR body."""

from __future__ import annotations

import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import REPOSITORY, config, install, manifest
from tests.registryharness.push import Pusher

pytestmark = pytest.mark.e2e

OCI = "org.opencontainers.image."
SOURCE = "octo-org/podinfo-src"


async def test_the_pr_says_what_changed_in_the_image(bot, registry, image):
    path = image.split("/", 1)[1]
    pusher = Pusher(registry.host)
    for tag, revision in (("5.0.0", "1a2b3c4"), ("5.0.3", "5d6e7f8")):
        pusher.image(path, tag, salt=f"{path}-{tag}-described", annotations={
            OCI + "source": f"https://github.com/{SOURCE}", OCI + "revision": revision,
            OCI + "version": tag, OCI + "title": "podinfo"})  # fmt: skip
    sim = bot.sim
    sim.create_repository(SOURCE, files={"README.md": b"podinfo\n"}, private=False)
    sim.create_release(SOURCE, "v5.0.2", name="v5.0.2", body="- Fix the readiness probe (#41)")
    sim.create_release(SOURCE, "v5.0.3", name="v5.0.3", body="- Update Go to 1.23\n- Thanks @mona!")
    install(bot, {CONFIG_PATH: config(image).encode(), "deploy/app.yaml": manifest(image, "5.0.0")})
    (pr,) = await bot.pull_opened(REPOSITORY)
    body = pr["body"]
    assert "### What changed" in body
    assert f"https://github.com/{SOURCE}/compare/1a2b3c4...5d6e7f8" in body
    assert "<details><summary>v5.0.3</summary>" in body and "Update Go to 1.23" in body
    assert "<details><summary>v5.0.2</summary>" in body
    assert "@mona" not in body  # nobody is pinged from a release's text
