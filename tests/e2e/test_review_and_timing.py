"""`serve` as a process (issue 12 §4, §5): review routing, minimumReleaseAge judged by the
images' own created times in the real registry, and a schedule that holds a PR back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import REPOSITORY, install, manifest
from tests.registryharness.push import Pusher

pytestmark = pytest.mark.e2e


def config(image: str, automation_extra: str, policy_extra: str = "") -> str:
    return (
        f"version: 1\nnamespace: flux-system\nimageRepositories:\n"
        f"  - {{name: podinfo, image: {image}, interval: 1s}}\n"
        "imagePolicies:\n  - name: podinfo\n    imageRepositoryRef: podinfo\n"
        f"    policy: {{semver: {{range: '5.x'}}}}\n{policy_extra}"
        "imageUpdateAutomations:\n  - name: podinfo-update\n    interval: 1s\n"
        f"    update: {{path: ./deploy}}\n{automation_extra}"
    )


async def test_reviewers_are_asked_and_a_too_young_image_waits(bot, registry, image):
    path = image.split("/", 1)[1]
    now = datetime.now(UTC)
    Pusher(registry.host).image(path, "5.0.4", salt=f"{path}-young",
                                created=now.isoformat().replace("+00:00", "Z"))  # fmt: skip
    bot.sim.create_repository(REPOSITORY, files={
        CONFIG_PATH: config(image, "    pullRequest: {reviewers: [mona, ghost], assignees: [mona]}\n",
                            "    minimumReleaseAge: 3d\n").encode(),
        "deploy/app.yaml": manifest(image, "5.0.0")})  # fmt: skip
    bot.sim.add_collaborator(REPOSITORY, "mona")
    bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])
    (pr,) = await bot.pull_opened(REPOSITORY)
    # 5.0.4 was created a moment ago: the older 5.0.3 is proposed.
    assert f"{image}:5.0.3" in pr["body"] and f"{image}:5.0.4" not in pr["body"]
    (pull,) = bot.open_pulls(REPOSITORY)
    assert pull["requested_reviewers"] == ["mona"] and pull["assignees"] == ["mona"]
    check = await bot.check_run(REPOSITORY, lambda c: c["annotations"])
    assert any("did not ask ghost to review" in a["message"] for a in check["annotations"])


async def test_outside_its_schedule_no_pr_and_the_check_run_says_when(bot, image):
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%A").lower()  # never today
    head = install(bot, {
        CONFIG_PATH: config(image, f"    schedule: ['on {later}']\n").encode(),
        "deploy/app.yaml": manifest(image, "5.0.0")})  # fmt: skip
    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head and c["annotations"])
    (notice,) = check["annotations"]
    assert notice["annotation_level"] == "notice"
    assert "outside its schedule: the next window opens at" in notice["message"]
    assert bot.open_pulls(REPOSITORY) == []
