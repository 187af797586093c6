"""Artifact Registry / GCR logins (issue 11 §6): ``gcp: {}`` in a credentials entry.

Google is a network edge, so its token endpoint is a local server here. The identity is
a service-account key file (Application Default Credentials through
``GOOGLE_APPLICATION_CREDENTIALS``) whose ``token_uri`` points at that server; the real
google-auth signs its JWT grant, which the server verifies with the account's public key.
The registry is Debian's docker-registry behind htpasswd, user ``oauth2accesstoken``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.registry.credentials import CredentialStore
from bot.registry.errors import CredentialsError
from tests.conftest import generate_app_key
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import start_basic_auth_registry
from tests.registryharness.scanning import image_repository_config

ACCOUNT = "image-automation@demo-project.iam.gserviceaccount.com"


@dataclass
class FakeGoogle:
    public_pem: str
    token: str = field(default_factory=lambda: "ya29." + secrets.token_urlsafe(32))
    grants: list[dict] = field(default_factory=list)
    refuse: bool = False

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        claims = jwt.decode(
            str(form["assertion"]), self.public_pem, algorithms=["RS256"],
            options={"verify_aud": False},
        )  # fmt: skip
        self.grants.append(claims)
        if self.refuse:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response(
            {"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"}
        )


@pytest.fixture
async def google(tmp_path, monkeypatch) -> AsyncIterator[FakeGoogle]:
    private_pem, public_pem = generate_app_key()
    fake = FakeGoogle(public_pem)
    app = web.Application()
    app.router.add_post("/token", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": "demo-project", "private_key_id": "k1",
        "private_key": private_pem, "client_email": ACCOUNT, "client_id": "1",
        "token_uri": str(server.make_url("/token")),
    }))  # fmt: skip
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    try:
        yield fake
    finally:
        await server.close()


def store_for(tmp_path, registry: str, clock) -> CredentialStore:
    path = tmp_path / "registries.yml"
    path.write_text(f"gar:\n  registry: {registry}\n  gcp: {{}}\n")
    return CredentialStore.load(str(path), clock=clock)


async def test_an_adc_token_scans_a_private_registry_and_is_renewed(
    tmp_path, google, clock, make_scanner
):
    clock.now = time.time()  # Google's expiry is in real time
    process, authorization = start_basic_auth_registry(
        "oauth2accesstoken", google.token, prefix="gar-"
    )
    try:
        Pusher(process.host, authorization=authorization).image("team/app", ["2.0.0"], salt="gar")
        store = store_for(tmp_path, process.host, clock)
        repo = image_repository_config(f"{process.host}/team/app", credentials="gar")
        scanner = make_scanner(store)
        assert (await scanner.scan(repo, force=True)).tags == ["2.0.0"]
        (grant,) = google.grants
        assert grant["iss"] == ACCOUNT
        assert grant["scope"] == "https://www.googleapis.com/auth/cloud-platform"
        clock.advance(50 * 60)  # still good
        await scanner.scan(repo, force=True)
        assert len(google.grants) == 1
        clock.advance(6 * 60)  # within 5 minutes of its end: a new one
        await scanner.scan(repo, force=True)
        assert len(google.grants) == 2
    finally:
        process.stop()


async def test_a_refused_grant_is_a_clear_error(tmp_path, google, clock):
    google.refuse = True
    (entry,) = store_for(tmp_path, "europe-docker.pkg.dev", clock).entries()
    with pytest.raises(CredentialsError, match="Google Application Default Credentials: no access"):
        await entry.secret()


def test_gcp_takes_no_settings_and_one_cloud_per_entry(tmp_path):
    path = tmp_path / "registries.yml"
    path.write_text("g:\n  registry: gcr.io\n  gcp: {project: x}\n")
    with pytest.raises(CredentialsError, match="takes no settings yet"):
        CredentialStore.load(str(path))
    path.write_text("g:\n  registry: gcr.io\n  gcp: {}\n  ecr: {region: eu-west-1}\n")
    with pytest.raises(CredentialsError, match="name two clouds"):
        CredentialStore.load(str(path))
