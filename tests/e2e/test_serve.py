"""End to end: ``python -m bot serve`` as a real process, a real registry, the simulator.

The bot only ever sees what production gives it: environment variables, signed
webhook deliveries on its port, GitHub's REST API (the simulator) and an OCI
registry (Debian's docker-registry with basic auth).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from bot.config import CONFIG_PATH
from tests.datapaths import REPO as CHECKOUT
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import (
    REGISTRY_BINARY,
    free_port,
    start_basic_auth_registry,
)

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret"
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


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def deliver(session: aiohttp.ClientSession, url: str, event: str, payload: dict) -> int:
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body),
        "Content-Type": "application/json",
    }
    async with session.post(url, data=body, headers=headers) as response:
        return response.status


def bot_env(tmp_path: Path, *, app_id: int, private_pem: str, api_url: str, port: int) -> dict:
    key = tmp_path / "app.pem"
    key.write_text(private_pem)
    return {
        "PATH": os.environ.get("PATH", ""),
        "APP_ID": str(app_id),
        "PRIVATE_KEY_PATH": str(key),
        "WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WRITE_INTERVAL": "0",
        "LOG_LEVEL": "info",
    }


def start_bot(env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=CHECKOUT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_until(predicate, *, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; bot log:\n{log.read_text()[-4000:]}")


async def test_installation_and_push_deliveries_open_the_pr(
    tmp_path, github_sim, app_key, registry
):
    sim = github_sim.sim
    app_id, private_pem, public_pem = app_key
    sim.register_app(app_id=app_id, public_key_pem=public_pem)
    image = f"{registry.host}/team/podinfo"
    config = f"""\
version: 1
namespace: flux-system
imageRepositories:
  - name: podinfo
    image: {image}
    credentials: local
imagePolicies:
  - name: podinfo
    imageRepositoryRef: podinfo
    policy:
      semver: {{range: '>=5.0.0 <6'}}
imageUpdateAutomations:
  - name: podinfo-update
    update: {{path: ./deploy, strategy: Setters}}
"""
    manifest = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: podinfo, namespace: default}\n"
        "spec:\n  template:\n    spec:\n      containers:\n        - name: podinfo\n"
        f'          image: {image}:5.0.0 # {{"$imagepolicy": "flux-system:podinfo"}}\n'
    )
    head = sim.create_repository(
        REPOSITORY,
        files={CONFIG_PATH: config.encode(), "deploy/podinfo.yaml": manifest.encode()},
    )
    installation = sim.create_installation(app_id, account="octo-org", repositories=[REPOSITORY])

    credentials = tmp_path / "registry-credentials.yml"
    credentials.write_text(
        f"local:\n  registry: {registry.host}\n  username: {USER[0]}\n"
        f"  passwordEnv: E2E_REGISTRY_PASSWORD\n  allowed: ['octo-org/*']\n"
    )
    port = free_port()
    env = bot_env(
        tmp_path, app_id=app_id, private_pem=private_pem, api_url=github_sim.url, port=port
    )
    env["REGISTRY_CREDENTIALS"] = str(credentials)
    env["E2E_REGISTRY_PASSWORD"] = USER[1]
    log = tmp_path / "bot.log"
    bot = start_bot(env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def healthy():
                if bot.poll() is not None:
                    raise AssertionError(f"bot exited {bot.returncode}:\n{log.read_text()}")
                try:
                    async with session.get(f"{url}/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(healthy, timeout=30, what="the bot to listen", log=log)

            unsigned = await session.post(f"{url}/api/github/webhooks", data=b"{}")
            assert unsigned.status == 401

            repo_entry = {"id": 1, "name": "app", "full_name": REPOSITORY, "private": True}
            status = await deliver(
                session,
                f"{url}/api/github/webhooks",
                "installation",
                {
                    "action": "created",
                    "installation": {"id": installation, "account": {"login": "octo-org"}},
                    "repositories": [repo_entry],
                    "sender": {"login": "octocat", "type": "User"},
                },
            )
            assert status == 202
            status = await deliver(
                session,
                f"{url}/",
                "push",
                {
                    "ref": "refs/heads/main",
                    "before": "0" * 40,
                    "after": head,
                    "repository": {"full_name": REPOSITORY, "default_branch": "main"},
                    "installation": {"id": installation},
                    "sender": {"login": "octocat", "type": "User"},
                },
            )
            assert status == 202

            async def pr_opened():
                return [p for p in sim.pulls(REPOSITORY) if p["state"] == "open"]

            (pr,) = await wait_until(pr_opened, timeout=60, what="the pull request", log=log)
            assert pr["head"] == BRANCH and pr["base"] == "main"
            assert f"{image}:5.0.0 -> {image}:5.0.3" in pr["body"]
            assert (
                sim.read_file(REPOSITORY, BRANCH, "deploy/podinfo.yaml")
                == manifest.replace("5.0.0", "5.0.3").encode()
            )

            async def checked():
                return sim.check_runs(REPOSITORY)

            (check,) = await wait_until(checked, timeout=30, what="the check run", log=log)
            assert check["conclusion"] == "success" and check["head_sha"] == head
    finally:
        bot.send_signal(signal.SIGTERM)
        try:
            code = bot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()
            raise
    assert code == 0, log.read_text()
    text = log.read_text()
    assert USER[1] not in text and "BEGIN" not in text  # no secrets in the logs


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WEBHOOK_SECRET", None), ("DATABASE_URL", "postgres://db/bot")],
)
def test_an_unusable_environment_is_a_clear_error(tmp_path, app_key, variable, value):
    """No WEBHOOK_SECRET, or a DATABASE_URL it cannot use: exit 2 and say which."""
    app_id, private_pem, _ = app_key
    env = bot_env(
        tmp_path,
        app_id=app_id,
        private_pem=private_pem,
        api_url="http://127.0.0.1:9",
        port=free_port(),
    )
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert variable.encode() in result.stderr
    assert b"Traceback" not in result.stderr
