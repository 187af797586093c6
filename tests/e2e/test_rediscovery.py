"""A new database converges without webhooks (issue 10 §3), through `python -m bot serve`:
an installation made while the bot was not listening is found at start-up."""

from __future__ import annotations

import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import REPOSITORY, config, manifest
from tests.e2e.served import Served

pytestmark = pytest.mark.e2e


async def test_an_installation_no_webhook_told_of_is_found_at_start_up(
    tmp_path, github_sim, app_key, image
):
    bot = Served(tmp_path, github_sim, app_key)
    # Installed before the bot listens: no delivery reaches it, as with a lost database.
    bot.sim.create_repository(
        REPOSITORY,
        files={CONFIG_PATH: config(image).encode(), "deploy/app.yaml": manifest(image, "5.0.0")},
    )
    bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])
    assert bot.sim.deliveries == []
    await bot.start()
    try:
        (pr,) = await bot.pull_opened(REPOSITORY)
        assert f"{image}:5.0.0 -> {image}:5.0.3" in pr["body"]
        await bot.log_line("rediscovered 1 installation(s): 1 repository(ies) added")
    finally:
        assert await bot.stop() == 0, bot.text()[-4000:]


async def test_an_all_repositories_installation_whose_delivery_lists_none_is_listed(
    tmp_path, github_sim, app_key, image
):
    """GitHub may send `installation created` for "all repositories" without the list:
    the bot pages ``GET /installation/repositories`` itself and runs each at once."""
    bot = Served(tmp_path, github_sim, app_key)
    sim = bot.sim
    sim.all_repositories_unlisted = True
    await bot.start()
    try:
        names = [f"octo-org/svc-{i}" for i in range(35)]
        for name in names:
            sim.create_repository(name, files={"README.md": b"no config\n"})
        sim.create_repository(
            REPOSITORY,
            files={
                CONFIG_PATH: config(image).encode(),
                "deploy/app.yaml": manifest(image, "5.0.0"),
            },
        )
        sim.create_installation(bot.app_id, account="octo-org", repositories=None)
        (pr,) = await bot.pull_opened(REPOSITORY)
        assert f"{image}:5.0.0 -> {image}:5.0.3" in pr["body"]
        (delivery,) = [d for d in sim.deliveries if d.event == "installation"]
        assert delivery.payload["repositories"] == []  # the bot was told of none
        await bot.log_line("36 repository(ies) listed and due")
    finally:
        assert await bot.stop() == 0, bot.text()[-4000:]
