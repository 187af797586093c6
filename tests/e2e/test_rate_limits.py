"""Rate limits respected before they bite (issue 10 §5), through `python -m bot serve`.

The simulator's knobs make an installation's window small: 50 requests per 6 s.
Ten repositories need more than that for their first runs. The bot spreads its
requests over the window, then postpones the rest until the reset, and so it
never receives a rate-limited answer, and no run fails: every repository gets
its PR, each write made once.
"""

from __future__ import annotations

import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import config, manifest
from tests.e2e.served import serving

pytestmark = pytest.mark.e2e

REPOSITORIES = [f"octo-org/service-{i}" for i in range(10)]


async def test_a_small_window_postpones_work_and_nothing_is_refused_or_failed(
    tmp_path, github_sim, app_key, image
):
    sim = github_sim.sim
    sim.rate_limit = 50
    sim.rate_window = 6.0
    # At most 4 runs at once, each with 5 writes: within the reserve of 20, so no run is
    # stopped between its writes (the reserve is sized for CONCURRENCY; see ratelimit.py).
    async with serving(tmp_path, github_sim, app_key, CONCURRENCY="4") as bot:
        for name in REPOSITORIES:
            sim.create_repository(
                name,
                files={
                    CONFIG_PATH: config(image).encode(),
                    "deploy/app.yaml": manifest(image, "5.0.0"),
                },
            )
        sim.create_installation(bot.app_id, account="octo-org", repositories=REPOSITORIES)

        async def all_opened() -> bool:
            return all(len(bot.open_pulls(name)) == 1 for name in REPOSITORIES)

        await bot.wait_until(all_opened, what="a PR in every repository", timeout=90)
        text = bot.text()

    assert sim.counters["rate limited"] == 0  # never ran out: no 403/429 for the limit
    assert "postponed by" in text  # the window was spent, so work moved to the reset
    assert "retrying in" not in text and "reconcile failed" not in text  # and nothing failed
    # Runs stop only before their reads: no write was made twice by a run cut short.
    for write in ("git/trees", "git/commits", "git/refs", "pulls"):
        assert sim.counters[f"POST /repos/{{owner}}/{{repo}}/{write}"] == len(REPOSITORIES)
    for name in REPOSITORIES:
        (pull,) = bot.open_pulls(name)
        assert f"{image}:5.0.0 -> {image}:5.0.3" in pull["body"]
