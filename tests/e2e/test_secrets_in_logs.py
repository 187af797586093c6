"""Nothing secret in the logs (issue 8 §7), through `python -m bot serve`: the signed
codeload URL of a tarball that fails to download shows without its ``?token=``."""

from __future__ import annotations

import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import REPOSITORY, config, install, manifest

pytestmark = pytest.mark.e2e

CODELOAD = "/_codeload/{owner}/{repo}/legacy.tar.gz/{sha}"


async def test_a_failed_tarball_download_logs_no_token(bot, image):
    # More unknown files than the tarball threshold: the bot asks for one archive.
    files = {f"deploy/app{n}.yaml": b"# %d\n" % n + manifest(image, "5.0.0") for n in range(12)}
    bot.sim.inject(method="GET", route=CODELOAD, status=500, times=None)
    install(bot, {CONFIG_PATH: config(image).encode(), **files})

    (pr,) = await bot.pull_opened(REPOSITORY)  # read blob by blob instead
    assert bot.sim.counters[f"GET {CODELOAD}"] >= 1
    log = bot.text()
    assert "tarball download failed" in log
    assert "token=" not in log
    assert pr["number"] == 1
