"""ECR logins (issue 11 §6): a credentials entry with ``ecr:`` instead of a password.

AWS is a network edge, so it is a local server here that speaks ECR's
``GetAuthorizationToken`` (AWS JSON 1.1) on loopback, reached by the real boto3 through
``AWS_ENDPOINT_URL_ECR``. The registry is Debian's docker-registry behind htpasswd, whose
user is ``AWS`` and whose password is the one the token carries, as ECR's registries are.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.registry.credentials import CredentialStore
from bot.registry.errors import CredentialsError, RegistryError
from tests.registryharness.push import Pusher
from tests.registryharness.registry_proc import start_basic_auth_registry
from tests.registryharness.scanning import image_repository_config

ACCOUNT = "123456789012"
TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"


@dataclass
class FakeEcr:
    """ECR's token call: hands out `password` as ``AWS:<password>``, valid `lifetime` s."""

    password: str
    now: float
    lifetime: float = 12 * 3600
    calls: list[dict] = field(default_factory=list)
    refuse: bool = False

    async def handle(self, request: web.Request) -> web.Response:
        assert request.headers["X-Amz-Target"] == TARGET
        assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
        self.calls.append(json.loads(await request.read() or b"{}"))
        if self.refuse:
            body = {"__type": "AccessDeniedException", "message": "not allowed"}
            return web.json_response(body, status=400, content_type="application/x-amz-json-1.1")
        token = base64.b64encode(f"AWS:{self.password}".encode()).decode()
        body = {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": self.now + self.lifetime,
                    "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com",
                }
            ]
        }
        return web.json_response(body, content_type="application/x-amz-json-1.1")


@pytest.fixture
async def aws(monkeypatch, clock, tmp_path) -> AsyncIterator[FakeEcr]:
    ecr = FakeEcr(password=secrets.token_urlsafe(24), now=clock())
    app = web.Application()
    app.router.add_post("/", ecr.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDTEST",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
        "AWS_ENDPOINT_URL_ECR": str(server.make_url("/")).rstrip("/"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": str(tmp_path),  # no ~/.aws config or credentials files to find
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield ecr
    finally:
        await server.close()


def credentials_file(tmp_path: Path, registry: str, clock=None, **ecr: str) -> CredentialStore:
    path = tmp_path / "registries.yml"
    fields = ", ".join(f"{k}: {json.dumps(v)}" for k, v in ecr.items())
    path.write_text(f"ecr-prod:\n  registry: {registry}\n  ecr: {{{fields}}}\n")
    return CredentialStore.load(str(path), **({"clock": clock} if clock else {}))


async def test_an_ecr_login_scans_a_private_registry_and_is_refreshed_before_it_expires(
    tmp_path, aws, clock, make_scanner
):
    process, authorization = start_basic_auth_registry("AWS", aws.password, prefix="ecr-")
    try:
        Pusher(process.host, authorization=authorization).image("team/app", ["1.0.0", "1.1.0"], salt="ecr")
        store = credentials_file(
            tmp_path, process.host, clock, region="eu-west-1", registryId=ACCOUNT
        )
        (entry,) = store.entries()
        repo = image_repository_config(f"{process.host}/team/app", credentials="ecr-prod")
        scanner = make_scanner(store)
        result = await scanner.scan(repo, force=True)
        assert sorted(result.tags) == ["1.0.0", "1.1.0"]
        assert aws.calls == [{"registryIds": [ACCOUNT]}]

        # Eleven hours later the same login is still good: AWS is not asked again.
        clock.advance(11 * 3600)
        await scanner.scan(repo, force=True)
        assert len(aws.calls) == 1
        # Within half an hour of its end, a new one is asked for: no restart needed.
        clock.advance(40 * 60)
        aws.now = clock()
        await scanner.scan(repo, force=True)
        assert len(aws.calls) == 2
        assert entry.cloud.fetched == 2
    finally:
        process.stop()


async def test_a_refused_login_is_a_clear_error_without_secrets(tmp_path, aws, make_scanner):
    aws.refuse = True
    store = credentials_file(tmp_path, "127.0.0.1:1", region="eu-west-1")
    (entry,) = store.entries()
    with pytest.raises(CredentialsError) as info:
        await entry.secret()
    message = str(info.value)
    assert "ECR in eu-west-1: AWS refused GetAuthorizationToken: AccessDeniedException" in message
    assert "not-a-real-secret" not in message
    assert aws.calls == [{}]  # no registryId: the caller's own account


@pytest.mark.parametrize(
    ("ecr", "says"),
    [
        ({"region": "mars"}, "must be an AWS region like eu-west-1"),
        ({"region": "eu-west-1", "registryId": "12"}, "12-digit AWS account id"),
        ({"region": "eu-west-1", "role": "x"}, "must be a mapping with region"),
    ],
)
def test_bad_ecr_entries_are_refused_at_load(tmp_path, ecr, says):
    with pytest.raises((CredentialsError, RegistryError)) as info:
        credentials_file(tmp_path, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", **ecr)
    assert says in str(info.value)


def test_a_cloud_login_and_a_password_do_not_mix(tmp_path):
    path = tmp_path / "registries.yml"
    path.write_text(
        "both:\n  registry: r.example\n  username: u\n  password: p\n  ecr: {region: eu-west-1}\n"
    )
    with pytest.raises(CredentialsError, match="both a cloud login"):
        CredentialStore.load(str(path))
