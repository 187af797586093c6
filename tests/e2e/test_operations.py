"""What operators see of `python -m bot serve` (issue 10 §4): /metrics, JSON logs with
their context, and readiness that asks GitHub."""

from __future__ import annotations

import json

import aiohttp
import pytest

from bot.config import CONFIG_PATH
from tests.conftest import generate_app_key
from tests.e2e.conftest import REPOSITORY, config, manifest
from tests.e2e.served import serving

pytestmark = pytest.mark.e2e


async def get_text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


async def get_status(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in exposition.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        metric, _, rest = key.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if metric == name and got == want:
            return float(value)
    return 0.0


async def test_metrics_and_json_logs_tell_what_happened(tmp_path, github_sim, app_key, image):
    async with serving(tmp_path, github_sim, app_key, LOG_FORMAT="json") as bot:
        bot.sim.create_repository(
            REPOSITORY,
            files={
                CONFIG_PATH: config(image).encode(),
                "deploy/app.yaml": manifest(image, "5.0.0"),
            },
        )
        installation = bot.sim.create_installation(
            bot.app_id, account="octo-org", repositories=[REPOSITORY]
        )
        await bot.pull_opened(REPOSITORY)

        async def short_circuited():
            text = await get_text(f"{bot.url}/metrics")
            done = sample(text, "image_automation_short_circuits_total")
            return text if done >= 1 else None

        # The config's interval is 1 s: a later run finds nothing changed.
        metrics = await bot.wait_until(short_circuited, what="a short-circuited run")
        assert await get_status(f"{bot.url}/readyz") == 200

    assert sample(metrics, "image_automation_reconciles_total", outcome="completed") >= 1
    assert sample(metrics, "image_automation_reconciles_total", outcome="short_circuit") >= 1
    assert sample(metrics, "image_automation_reconcile_duration_seconds_count") >= 2
    pulls = sample(
        metrics,
        "image_automation_github_requests_total",
        route="/repos/{owner}/{repo}/pulls",
        status="201",
    )
    assert pulls == 1  # the PR, opened once
    assert sample(
        metrics, "image_automation_github_requests_total",
        route="/repos/{owner}/{repo}/commits/{ref}", status="304",
    ) >= 1  # fmt: skip
    assert (
        0
        < sample(
            metrics, "image_automation_github_rate_limit_remaining", installation=str(installation)
        )
        <= 5000
    )
    registry = image.split("/", 1)[0]
    assert (
        sample(metrics, "image_automation_registry_requests_total", registry=registry, status="200")
        >= 1
    )
    assert REPOSITORY not in metrics  # labels are templates, never a repository's name

    lines = [json.loads(line) for line in bot.text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message", "replica"} <= set(line) for line in lines)
    opened = [line for line in lines if "opened #" in line["message"]]
    assert opened and opened[0]["repository"] == REPOSITORY
    assert opened[0]["installation"] == installation
    delivered = [line for line in lines if "installation created" in line["message"]]
    assert delivered and delivered[0].get("delivery")


async def test_readyz_is_503_while_github_refuses_the_apps_key(tmp_path, github_sim, app_key):
    """The App's key is replaced on GitHub after start-up: the process is alive, but
    GitHub refuses its JWT, so it is not ready."""
    async with serving(tmp_path, github_sim, app_key) as bot:
        _other_private, other_public = generate_app_key()
        github_sim.sim.apps[bot.app_id].public_key_pem = other_public
        assert await get_status(f"{bot.url}/healthz") == 200
        assert await get_status(f"{bot.url}/readyz") == 503
        assert "JWT" in json.loads(await get_text(f"{bot.url}/readyz"))["reason"]
