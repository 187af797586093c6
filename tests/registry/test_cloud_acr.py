"""ACR logins (issue 11 §6): ``acr: {tenant}`` in a credentials entry.

Azure is a network edge, so Entra ID is a local managed-identity endpoint here (App
Service's ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``, which the real azure-identity
reads), and the registry's ``/oauth2/exchange`` is answered on the registry's own host
by the test shim in front of Debian's docker-registry. The registry takes the refresh
token as the password of user 00000000-0000-0000-0000-000000000000, as ACR does.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.registry.cloud import ACR_USER
from bot.registry.credentials import CredentialStore
from bot.registry.errors import CredentialsError
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import start_basic_auth_registry
from tests.registryharness.scanning import image_repository_config
from tests.registryharness.shim import Shim

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def refresh_token(expires_at: float) -> str:
    """A JWT-shaped ACR refresh token (unsigned here: only its ``exp`` is read)."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'exp': int(expires_at), 'n': secrets.token_hex(2)})}.x"


@dataclass
class FakeEntra:
    header: str = field(default_factory=lambda: secrets.token_hex(8))
    token: str = field(default_factory=lambda: "entra-" + secrets.token_urlsafe(16))
    asked: list[dict] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        assert request.headers["X-IDENTITY-HEADER"] == self.header
        self.asked.append(dict(request.query))
        return web.json_response({
            "access_token": self.token, "expires_on": str(int(time.time()) + 3600),
            "resource": request.query.get("resource", ""), "token_type": "Bearer",
        })  # fmt: skip


@pytest.fixture
async def entra(monkeypatch) -> AsyncIterator[FakeEntra]:
    fake = FakeEntra()
    app = web.Application()
    app.router.add_get("/msi/token", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                 "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "MSI_SECRET"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", str(server.make_url("/msi/token")))
    monkeypatch.setenv("IDENTITY_HEADER", fake.header)
    monkeypatch.setenv("AZURE_CONFIG_DIR", "/nonexistent")
    try:
        yield fake
    finally:
        await server.close()


async def test_an_entra_token_exchanged_at_the_registry_scans_it(
    tmp_path, entra, clock, make_scanner
):
    clock.now = time.time()
    token = refresh_token(clock.now + 3 * 3600)
    process, authorization = start_basic_auth_registry(ACR_USER, token, prefix="acr-")
    shim = Shim(process.port).start()
    exchanges: list[dict] = []

    def exchange(body: bytes) -> tuple[int, object]:
        form = dict(urllib.parse.parse_qsl(body.decode()))
        exchanges.append(form)
        if form.get("access_token") != entra.token:
            return 401, {"errors": [{"code": "UNAUTHORIZED"}]}
        return 200, {"refresh_token": token}

    shim.routes[("POST", "/oauth2/exchange")] = exchange
    try:
        Pusher(process.host, authorization=authorization).image("team/app", ["3.0.0"], salt="acr")
        path = tmp_path / "registries.yml"
        path.write_text(f"acr:\n  registry: {shim.host}\n  acr: {{tenant: {TENANT}}}\n")
        store = CredentialStore.load(str(path), clock=clock)
        repo = image_repository_config(f"{shim.host}/team/app", credentials="acr")
        assert (await make_scanner(store).scan(repo, force=True)).tags == ["3.0.0"]
        (asked,) = entra.asked
        assert asked["resource"] == "https://management.azure.com"
        assert exchanges == [
            {"grant_type": "access_token", "service": shim.host, "access_token": entra.token,
             "tenant": TENANT}
        ]  # fmt: skip
        (entry,) = store.entries()
        # Renewed half an hour before the refresh token's own `exp`.
        assert entry.cloud.renew_at(entry.cloud.issued[-1]) == pytest.approx(
            clock.now + 3 * 3600 - 30 * 60, abs=2
        )
    finally:
        shim.stop()
        process.stop()


async def test_a_refused_exchange_says_which_role_is_missing(tmp_path, entra, clock):
    shim = Shim(1).start()  # nothing behind it: only the exchange is asked
    shim.routes[("POST", "/oauth2/exchange")] = lambda body: (401, {"errors": []})
    try:
        path = tmp_path / "registries.yml"
        path.write_text(f"acr:\n  registry: {shim.host}\n  acr: {{}}\n")
        (entry,) = CredentialStore.load(str(path), clock=clock).entries()
        with pytest.raises(CredentialsError, match="needs the AcrPull role"):
            await entry.secret()
    finally:
        shim.stop()
