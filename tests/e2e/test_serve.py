"""End to end: ``python -m bot serve`` as a real process, a real registry, the simulator.

The bot only ever sees what production gives it: environment variables, webhook
deliveries the simulator signs and sends itself, GitHub's REST API (the
simulator) and an OCI registry (Debian's docker-registry with basic auth).
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
import pytest

from bot.config import CONFIG_PATH
from tests.datapaths import REPO as CHECKOUT
from tests.e2e.served import Served, run_serve
from tests.manifests import deployment, podinfo_config
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import (
    REGISTRY_BINARY,
    free_port,
    start_basic_auth_registry,
)

pytestmark = pytest.mark.e2e

USER = ("robot", "e2e-Registry-pa55")
REPOSITORY = "octo-org/app"
BRANCH = "image-automation/podinfo-update"


@pytest.fixture(scope="module")
def registry():
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.fail(f"{REGISTRY_BINARY} is missing: apt-get install docker-registry")
    process, authorization = start_basic_auth_registry(*USER, prefix="e2e-registry-")
    try:
        pusher = Pusher(process.host, authorization=authorization)
        pusher.image("team/podinfo", ["5.0.0", "5.0.3", "6.0.0"], salt="podinfo")
        yield process
    finally:
        process.stop()


async def test_installing_the_app_opens_the_pr_with_a_private_registry(
    tmp_path, github_sim, app_key, registry
):
    image = f"{registry.host}/team/podinfo"
    config = podinfo_config(image=image, credentials="local", update_path="./deploy", labels=())
    manifest = deployment("5.0.0", image=image)
    credentials = tmp_path / "registry-credentials.yml"
    credentials.write_text(
        f"local:\n  registry: {registry.host}\n  username: {USER[0]}\n"
        f"  passwordEnv: E2E_REGISTRY_PASSWORD\n  allowed: ['octo-org/*']\n"
    )
    bot = Served(
        tmp_path,
        github_sim,
        app_key,
        extra_env={
            "REGISTRY_CREDENTIALS": str(credentials),
            "E2E_REGISTRY_PASSWORD": USER[1],
        },
    )
    await bot.start()
    try:
        async with aiohttp.ClientSession() as session:
            unsigned = await session.post(f"{bot.url}/api/github/webhooks", data=b"{}")
            assert unsigned.status == 401

        sim = bot.sim
        head = sim.create_repository(
            REPOSITORY,
            files={CONFIG_PATH: config.encode(), "deploy/podinfo.yaml": manifest},
        )
        # The simulator tells the bot: `installation created`, signed with the App's secret.
        sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])

        (pr,) = await bot.pull_opened(REPOSITORY)
        assert pr["head"] == BRANCH and pr["base"] == "main"
        assert f"{image}:5.0.0 -> {image}:5.0.3" in pr["body"]
        assert sim.read_file(REPOSITORY, BRANCH, "deploy/podinfo.yaml") == deployment(
            "5.0.3", image=image
        )
        check = await bot.check_run(REPOSITORY)
        assert check["conclusion"] == "success" and check["head_sha"] == head
        (installed,) = [d for d in sim.deliveries if d.event == "installation"]
        assert installed.status == 202
    finally:
        code = await bot.stop()
    text = bot.text()
    assert code == 0, text
    assert USER[1] not in text and "BEGIN" not in text  # no secrets in the logs


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEBHOOK_SECRET", None),
        ("DATABASE_URL", "postgres://db/bot"),
        ("REGISTRY_MAX_PAGES", "0"),
        ("AUTOMATION_MAX_SECONDS", "soon"),
        ("WORKERS", "-1"),
    ],
)
def test_an_unusable_environment_is_a_clear_error(tmp_path, github_sim, app_key, variable, value):
    """No WEBHOOK_SECRET, or a DATABASE_URL it cannot use: exit 2 and say which."""
    env = Served(tmp_path, github_sim, app_key).env
    env["PORT"] = str(free_port())
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    result = run_serve(env)
    assert result.returncode == 2
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


def test_every_missing_variable_is_reported_at_once(tmp_path, github_sim, app_key):
    env = Served(tmp_path, github_sim, app_key).env
    for name in ("APP_ID", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET"):
        del env[name]
    result = run_serve(env)
    assert result.returncode == 2
    assert (
        "APP_ID, PRIVATE_KEY or PRIVATE_KEY_PATH, WEBHOOK_SECRET are not set; "
        "`python -m bot serve --help` lists every variable"
    ) in result.stderr
    assert "Traceback" not in result.stderr


async def test_credentials_github_refuses_stop_the_start_before_it_listens(
    tmp_path, github_sim, app_key
):
    """A wrong APP_ID is found by asking GitHub (`GET /app`) before listening."""
    env = Served(tmp_path, github_sim, app_key, extra_env={"APP_ID": "424242"}).env
    # The simulator answers on this test's event loop: wait for the bot without blocking it.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", cwd=CHECKOUT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    stderr = err.decode()
    assert process.returncode == 2, stderr
    assert "refuses the App's credentials" in stderr
    assert "check that APP_ID is the App's id" in stderr
    assert "listening on" not in stderr
    assert "BEGIN" not in stderr  # the key stays out of the message
