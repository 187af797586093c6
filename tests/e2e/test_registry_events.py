"""Updates seconds after a push (issue 12 §3): Debian's docker-registry sends its push
notifications to `POST /registry/events`, and the PR follows with no timer involved: the
repository's and the image's intervals are an hour."""

from __future__ import annotations

import aiohttp
import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import REPOSITORY, install, manifest
from tests.e2e.served import Served
from tests.manifests import podinfo_config
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import start_registry

pytestmark = pytest.mark.e2e

TOKEN = "e2e-distribution-notifications-token"
PATH = "team/pushed"


async def test_a_push_updates_the_pr_within_seconds(tmp_path, github_sim, app_key):
    bot = Served(tmp_path, github_sim, app_key,
                 extra_env={"REGISTRY_EVENTS_DISTRIBUTION_TOKEN": TOKEN})  # fmt: skip
    registry = start_registry(notify=(f"{bot.url}/registry/events", TOKEN))
    try:
        await bot.start()
        image = f"{registry.host}/{PATH}"
        pusher = Pusher(registry.host)
        pusher.image(PATH, ["5.0.0", "5.0.3"], salt="first")
        config = podinfo_config(image=image, update_path="./deploy", labels=(), interval="1h")
        install(bot, {CONFIG_PATH: config.encode(), "deploy/app.yaml": manifest(image, "5.0.0")})
        (pr,) = await bot.pull_opened(REPOSITORY)
        assert f"{image}:5.0.3" in pr["body"]

        pusher.image(PATH, "5.0.4", salt="second")

        async def updated() -> bool:
            pulls = bot.open_pulls(REPOSITORY)
            return bool(pulls) and f"{image}:5.0.4" in (pulls[0]["body"] or "")

        await bot.wait_until(updated, what="the PR to follow the pushed tag", timeout=30)
        deploy = bot.sim.read_file(REPOSITORY, pr["head"], "deploy/app.yaml").decode()
        assert f"{image}:5.0.4" in deploy

        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with session.post(f"{bot.url}/registry/events", json={"events": []},
                                        headers=headers) as answer:  # fmt: skip
                    assert answer.status == 401
    finally:
        registry.stop()
        code = await bot.stop()
    text = bot.text()
    assert code == 0, text[-3000:]
    assert TOKEN not in text
    assert "pushed: " in text and f"{registry.host}/{PATH}" in text
