"""GitHub's App manifest flow: the web page that takes a manifest, and its conversion.

* ``POST /settings/apps/new`` (or ``/organizations/{org}/settings/apps/new``) takes a form
  whose ``manifest`` field is the App's JSON manifest, with ``?state=``. On GitHub a
  person confirms the App on that page; here the confirmation is given at once, by the
  simulator's installing person, and the browser is sent to the manifest's
  ``redirect_url`` with ``?code=…&state=…``.
* ``POST /app-manifests/{code}/conversions`` (no credential) turns the code, once and
  within an hour, into the App: its id, slug, client id and secret, webhook secret and
  private key (201). The App exists from then on, with the manifest's permissions,
  events and webhook URL.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import shapes
from .people import INSTALLER
from .protocol import ApiError, json_response, not_found
from .sim import sim_of

#: GitHub's limit on the life of a manifest code.
CODE_LIFETIME = 3600.0


@dataclass
class PendingManifest:
    manifest: dict
    owner: str
    created_at: float


def _manifest_of(form_value: str | None) -> dict:
    if not form_value:
        raise ApiError(422, "Invalid GitHub App configuration: manifest is missing")
    try:
        manifest = json.loads(form_value)
    except ValueError:
        raise ApiError(422, "Invalid GitHub App configuration: manifest is not JSON") from None
    if not isinstance(manifest, dict) or not manifest.get("url"):
        raise ApiError(422, "Invalid GitHub App configuration: url can't be blank")
    if not isinstance(manifest.get("redirect_url"), str) or not manifest["redirect_url"]:
        raise ApiError(422, "Invalid GitHub App configuration: redirect_url can't be blank")
    hook = manifest.get("hook_attributes") or {}
    if hook.get("active", True) and not hook.get("url"):
        raise ApiError(422, "Invalid GitHub App configuration: hook_attributes.url can't be blank")
    return manifest


async def _new_app(request: web.Request, owner: str) -> web.StreamResponse:
    sim = sim_of(request)
    form = await request.post()
    value = form.get("manifest")
    manifest = _manifest_of(value if isinstance(value, str) else None)
    code = secrets.token_hex(10)
    sim.manifest_codes[code] = PendingManifest(manifest, owner, sim.clock())
    query = {"code": code}
    if "state" in request.query:
        query["state"] = request.query["state"]
    # The person confirmed (here: at once); the browser goes back to the manifest's owner.
    return web.Response(
        status=302, headers={"Location": f"{manifest['redirect_url']}?{urlencode(query)}"}
    )


async def new_personal_app(request: web.Request) -> web.StreamResponse:
    return await _new_app(request, INSTALLER)


async def new_organization_app(request: web.Request) -> web.StreamResponse:
    return await _new_app(request, request.match_info["org"])


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"


async def convert(request: web.Request) -> web.Response:
    sim = sim_of(request)
    pending = sim.manifest_codes.pop(request.match_info["code"], None)
    if pending is None or sim.clock() - pending.created_at > CODE_LIFETIME:
        raise not_found()
    manifest = pending.manifest
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # GitHub hands out PKCS#1
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hook = manifest.get("hook_attributes") or {}
    webhook_secret = secrets.token_hex(20)
    app_id = sim.register_app(
        app_id=sim.next_id(),
        public_key_pem=public,
        slug=_slug(str(manifest.get("name", "app"))),
        name=str(manifest.get("name", "app")),
        permissions=dict(manifest.get("default_permissions") or {}),
        events=list(manifest.get("default_events") or []),
        owner=pending.owner,
        webhook_url=hook.get("url") if hook.get("active", True) else None,
        webhook_secret=webhook_secret,
    )
    app = sim.apps[app_id]
    base = str(request.url.origin())
    body = shapes.app(base, app)
    body["description"] = manifest.get("description")
    body["external_url"] = manifest.get("url")
    body.update(
        client_secret=secrets.token_hex(20),
        webhook_secret=webhook_secret,
        pem=pem,
    )
    return json_response(body, status=201)


ROUTES = [
    ("POST", "/settings/apps/new", new_personal_app),
    ("POST", "/organizations/{org}/settings/apps/new", new_organization_app),
    ("POST", "/app-manifests/{code}/conversions", convert),
]
