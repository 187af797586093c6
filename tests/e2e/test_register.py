"""`python -m bot register` against the simulator (issue 11 §7): GitHub's App manifest flow
from app.yml, as a user's browser goes through it, to a .env that `serve` starts from."""

from __future__ import annotations

import asyncio
import html
import os
import re
import stat
import sys

import aiohttp
import pytest
from dotenv import dotenv_values

from tests.datapaths import REPO as CHECKOUT
from tests.registryharness.registry_proc import free_port

pytestmark = pytest.mark.e2e


async def _read_line_with(stream: asyncio.StreamReader, text: str) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), timeout=30)).decode()
        if not line:
            raise AssertionError(f"the process ended before printing {text!r}")
        if text in line:
            return line


async def test_register_creates_the_app_and_serve_starts_from_its_env_file(tmp_path, github_sim):
    sim = github_sim.sim
    (tmp_path / "app.yml").write_text((CHECKOUT / "app.yml").read_text())
    hooks = f"http://127.0.0.1:{free_port()}/api/github/webhooks"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "register", "--org", "octo-org", "--webhook-url", hooks,
        "--github-url", github_sim.url, "--api-url", github_sim.url, "--no-browser",
        cwd=tmp_path, env={**env, "PYTHONPATH": str(CHECKOUT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = await _read_line_with(process.stdout, "in a browser")
        page = re.search(r"(http://127\.0\.0\.1:\d+/)", line).group(1)
        async with aiohttp.ClientSession() as browser:
            async with browser.get(page) as answer:
                form = await answer.text()
            action = html.unescape(re.search(r'action="([^"]+)"', form).group(1))
            manifest = html.unescape(re.search(r'name="manifest" value="([^"]+)"', form).group(1))
            assert action.startswith(f"{github_sim.url}/organizations/octo-org/settings/apps/new?state=")
            # The person confirms on GitHub; GitHub sends the browser back with a code.
            async with browser.post(action, data={"manifest": manifest}) as answer:
                done = await answer.text()
                assert answer.status == 200, done
        assert "is registered" in done and "/installations/new" in done
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, err.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    (app,) = [a for a in sim.apps.values() if a.slug == "image-automation"]
    assert app.owner == "octo-org" and app.webhook_url == hooks
    assert app.permissions["contents"] == "write" and "push" in app.events
    values = dotenv_values(tmp_path / ".env")
    assert values["APP_ID"] == str(app.id)
    assert values["WEBHOOK_SECRET"] == app.webhook_secret
    assert values["GITHUB_API_URL"] == github_sim.url
    key = tmp_path / "image-automation.private-key.pem"
    assert values["PRIVATE_KEY_PATH"] == str(key)
    for path in (key, tmp_path / ".env"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in out.decode() + err.decode()  # the key is never printed

    # `serve` in that directory starts from .env alone: GitHub accepts the new key (GET /app).
    port = free_port()
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", cwd=tmp_path,
        env={**env, "PYTHONPATH": str(CHECKOUT), "PORT": str(port), "HOST": "127.0.0.1",
             "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = await _read_line_with(serve.stderr, "listening on")
        assert github_sim.url in line
    finally:
        serve.terminate()
        await serve.wait()
    assert serve.returncode == 0


async def test_register_refuses_a_placeholder_webhook_url(tmp_path):
    (tmp_path / "app.yml").write_text((CHECKOUT / "app.yml").read_text())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "register", "--no-browser", cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(CHECKOUT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert "pass --webhook-url https://YOUR-HOST/api/github/webhooks" in err.decode()
