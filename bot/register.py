"""``python -m bot register``: register the GitHub App from ``app.yml`` in one command.

GitHub's App manifest flow, run from this machine:

1. a page on ``http://127.0.0.1:PORT/`` holds a form that posts the manifest
   (``app.yml``, with this page's callback as ``redirect_url`` and the webhook URL)
   to GitHub's "new App" page, for the user or for ``--org``;
2. the user confirms on GitHub, which sends the browser back to ``/callback`` with a
   one-time code and the page's ``state``;
3. the code is converted (``POST /app-manifests/{code}/conversions``, no credential)
   into the App's id, private key and webhook secret;
4. those are written for `serve`: the key to ``<slug>.private-key.pem`` and
   ``APP_ID``, ``PRIVATE_KEY_PATH``, ``WEBHOOK_SECRET`` (and ``GITHUB_API_URL``
   for GitHub Enterprise Server) to ``.env``, both readable by their owner only.
   Other lines of an existing ``.env`` stay.

The private key and the secrets are never printed.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import os
import secrets
import webbrowser
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import gidgethub
import gidgethub.aiohttp
import yaml
from aiohttp import web
from dotenv import set_key

from bot.github.auth import DEFAULT_API_URL

DEFAULT_GITHUB_URL = "https://github.com"
#: The placeholder of this repository's app.yml: no webhook would ever arrive there.
PLACEHOLDER_HOST = "example.invalid"


class RegisterError(Exception):
    """Registration cannot go on; the message says what to do."""


def read_manifest(path: Path, *, webhook_url: str | None) -> dict[str, Any]:
    """The manifest from ``app.yml``, with the webhook URL to use."""
    try:
        manifest = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RegisterError(
            f"{path}: no such file; run this where app.yml is, or pass --manifest FILE"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise RegisterError(f"{path}: cannot be read as YAML: {exc}") from None
    if not isinstance(manifest, dict) or not manifest.get("name") or not manifest.get("url"):
        raise RegisterError(f"{path}: a GitHub App manifest needs at least 'name' and 'url'")
    hook = dict(manifest.get("hook_attributes") or {})
    if webhook_url:
        hook["url"] = webhook_url
    if not hook.get("url") or PLACEHOLDER_HOST in str(hook["url"]):
        raise RegisterError(
            "the App needs the URL GitHub sends webhooks to: pass --webhook-url "
            "https://YOUR-HOST/api/github/webhooks (where `serve` will listen)"
        )
    manifest["hook_attributes"] = hook
    return manifest


def form_page(manifest: dict[str, Any], *, action: str) -> str:
    """The page whose form posts the manifest to GitHub (sent at once by its script)."""
    value = html.escape(json.dumps(manifest), quote=True)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Register {html.escape(manifest["name"])}</title></head>
<body>
<form id="register" method="post" action="{html.escape(action, quote=True)}">
<input type="hidden" name="manifest" value="{value}">
<p>GitHub will ask you to confirm the App <b>{html.escape(manifest["name"])}</b>.</p>
<button type="submit">Register on GitHub</button>
</form>
<script>document.getElementById("register").submit()</script>
</body></html>
"""


def write_credentials(app: dict[str, Any], *, env_file: Path, api_url: str) -> Path:
    """The key beside `env_file`, the variables in it; both for their owner only."""
    slug = str(app.get("slug") or f"app-{app['id']}")
    key_file = env_file.parent / f"{slug}.private-key.pem"
    _write_private(key_file, str(app["pem"]))
    if not env_file.exists():
        _write_private(env_file, "")
    os.chmod(env_file, 0o600)
    values = {
        "APP_ID": str(app["id"]),
        "PRIVATE_KEY_PATH": str(key_file.resolve()),
        "WEBHOOK_SECRET": str(app["webhook_secret"]),
    }
    if api_url.rstrip("/") != DEFAULT_API_URL:
        values["GITHUB_API_URL"] = api_url
    for name, value in values.items():
        set_key(env_file, name, value)
    return key_file


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


async def register(
    manifest_path: Path,
    *,
    org: str | None,
    webhook_url: str | None,
    github_url: str,
    api_url: str,
    env_file: Path,
    port: int,
    open_browser: bool,
    out: TextIO,
) -> dict[str, Any]:
    """Run the flow until the App exists and its credentials are written; the App."""
    manifest = read_manifest(manifest_path, webhook_url=webhook_url)
    state = secrets.token_urlsafe(24)
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    base = github_url.rstrip("/")
    new_app = (
        f"{base}/organizations/{org}/settings/apps/new" if org else f"{base}/settings/apps/new"
    )

    async def page(_request: web.Request) -> web.Response:
        return web.Response(
            text=form_page(manifest, action=f"{new_app}?state={state}"), content_type="text/html"
        )

    async def callback(request: web.Request) -> web.Response:
        given = request.query.get("state", "")
        code = request.query.get("code", "")
        if not code or not hmac.compare_digest(given, state):
            return web.Response(status=400, text="This is not the answer to this registration.")
        try:
            app = await _convert(code, api_url)
            key_file = write_credentials(app, env_file=env_file, api_url=api_url)
        except (RegisterError, OSError) as exc:
            if not done.done():
                done.set_exception(RegisterError(str(exc)))
            return web.Response(status=500, text=f"Registration failed: {exc}")
        install = (
            f"{app.get('html_url') or base + '/apps/' + str(app.get('slug'))}/installations/new"
        )
        print(
            f"registered the App {app.get('slug')} (id {app['id']}); its key is in {key_file}, "
            f"and {env_file} has APP_ID, PRIVATE_KEY_PATH and WEBHOOK_SECRET for `serve`.\n"
            f"Install it on your repositories: {install}",
            file=out,
        )
        if not done.done():
            done.set_result(app)
        return web.Response(
            text=f"The App {app.get('slug')} is registered. Install it: {install}\n"
            "You can close this page."
        )

    application = web.Application()
    application.router.add_get("/", page)
    application.router.add_get("/callback", callback)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = runner.addresses[0][1]  # the port the system gave, when asked for 0
        manifest["redirect_url"] = f"http://127.0.0.1:{bound}/callback"
        local = f"http://127.0.0.1:{bound}/"
        print(f"Open {local} in a browser to register the App on GitHub.", file=out, flush=True)
        if open_browser:
            webbrowser.open(local)
        return await done
    finally:
        await runner.cleanup()


async def _convert(code: str, api_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        gh = gidgethub.aiohttp.GitHubAPI(session, "image-automation-bot", base_url=api_url)
        try:
            app = await gh.post(
                "/app-manifests/{code}/conversions", url_vars={"code": code}, data=b""
            )
        except gidgethub.HTTPException as exc:
            raise RegisterError(
                f"GitHub did not convert the code (HTTP {exc.status_code}); codes last an hour "
                "and work once: run register again"
            ) from None
        except aiohttp.ClientError as exc:
            raise RegisterError(f"no answer from {api_url}: {exc}") from None
    if not isinstance(app, dict) or not {"id", "pem", "webhook_secret"} <= app.keys():
        raise RegisterError("GitHub's answer lacks the App's id, key or webhook secret")
    return app
