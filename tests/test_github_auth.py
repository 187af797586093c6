"""App credentials from the environment, the app JWT, and the installation token cache."""

from __future__ import annotations

import asyncio
import base64
import datetime
import functools

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from bot.github.auth import AppCredentials, CredentialsError, TokenCache, app_jwt
from bot.github.errors import GitHubError
from tests.conftest import generate_app_key


@functools.cache
def key_pair() -> tuple[str, str]:
    # The traditional "BEGIN RSA PRIVATE KEY" form, as GitHub hands out.
    return generate_app_key(serialization.PrivateFormat.TraditionalOpenSSL)


# -- AppCredentials.from_env -----------------------------------------------------------


def test_from_env_reads_pem_and_defaults_to_github_com():
    private, _ = key_pair()
    creds = AppCredentials.from_env({"APP_ID": "123", "PRIVATE_KEY": private})
    assert creds.app_id == "123"
    assert creds.private_key == private
    assert creds.base_url == "https://api.github.com"


def test_from_env_accepts_escaped_newlines_and_base64():
    private, _ = key_pair()
    escaped = private.replace("\n", "\\n")
    assert AppCredentials.from_env({"APP_ID": "1", "PRIVATE_KEY": escaped}).private_key == private
    one_line = base64.b64encode(private.encode()).decode()
    assert AppCredentials.from_env({"APP_ID": "1", "PRIVATE_KEY": one_line}).private_key == private


def test_from_env_reads_private_key_path_and_api_url(tmp_path):
    private, _ = key_pair()
    (tmp_path / "app.pem").write_text(private)
    creds = AppCredentials.from_env(
        {
            "APP_ID": "9",
            "PRIVATE_KEY_PATH": str(tmp_path / "app.pem"),
            "GITHUB_API_URL": "http://127.0.0.1:8123/api/v3/",
        }
    )
    assert creds.private_key == private
    assert creds.base_url == "http://127.0.0.1:8123/api/v3"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "APP_ID"),
        ({"APP_ID": "1"}, "PRIVATE_KEY"),
        ({"APP_ID": "1", "PRIVATE_KEY": "not a key!"}, "PRIVATE_KEY"),
        ({"APP_ID": "1", "PRIVATE_KEY": base64.b64encode(b"hello").decode()}, "PRIVATE_KEY"),
        ({"APP_ID": "1", "PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "/nonexistent/key.pem"),
    ],
)
def test_from_env_errors_say_what_to_set(env, says):
    with pytest.raises(CredentialsError) as info:
        AppCredentials.from_env(env)
    assert says in str(info.value)


def test_from_env_rejects_a_file_that_is_not_a_key(tmp_path):
    (tmp_path / "k.pem").write_text("hello")
    with pytest.raises(CredentialsError, match="not a PEM private key"):
        AppCredentials.from_env({"APP_ID": "1", "PRIVATE_KEY_PATH": str(tmp_path / "k.pem")})


def test_private_key_is_not_in_repr():
    private, _ = key_pair()
    creds = AppCredentials(app_id="5", private_key=private)
    body = private.splitlines()[1]
    assert body not in repr(creds) and body not in str(creds)
    assert "5" in repr(creds)


# -- app_jwt ---------------------------------------------------------------------------


def test_app_jwt_is_rs256_backdated_and_short_lived():
    private, public = key_pair()
    now = 1_700_000_000
    token = app_jwt(AppCredentials(app_id="77", private_key=private), now=now)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token, public, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert claims["iss"] == "77"
    assert claims["iat"] == now - 60
    assert claims["exp"] == now + 540
    assert claims["exp"] - claims["iat"] <= 600


def test_app_jwt_is_valid_now():
    private, public = key_pair()
    token = app_jwt(AppCredentials(app_id="77", private_key=private))
    assert jwt.decode(token, public, algorithms=["RS256"])["iss"] == "77"


def test_app_jwt_with_a_broken_key_fails_clearly_without_quoting_it():
    secret_looking = (
        "-----BEGIN RSA PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END RSA PRIVATE KEY-----"
    )
    with pytest.raises(CredentialsError) as info:
        app_jwt(AppCredentials(app_id="3", private_key=secret_looking))
    assert "TOPSECRETMATERIAL" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


# -- TokenCache ------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Minter:
    """Stands in for the access_tokens endpoint: tokens expire one hour after `clock`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: list[int] = []

    async def __call__(self, installation_id: int) -> dict:
        self.calls.append(installation_id)
        await asyncio.sleep(0)
        expires = self.clock.now + 3600
        stamp = datetime.datetime.fromtimestamp(expires, datetime.UTC)
        return {
            "token": f"tok-{installation_id}-{len(self.calls)}",
            "expires_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


async def test_tokens_are_cached_per_installation():
    clock = Clock(1_700_000_000)
    minter = Minter(clock)
    cache = TokenCache(minter, clock=clock)
    assert await cache.token(1) == "tok-1-1"
    assert await cache.token(1) == "tok-1-1"
    assert await cache.token(2) == "tok-2-2"
    assert minter.calls == [1, 2]
    assert cache.minted == 2


async def test_token_is_replaced_five_minutes_before_it_expires():
    clock = Clock(1_700_000_000)
    minter = Minter(clock)
    cache = TokenCache(minter, clock=clock)
    first = await cache.token(1)
    clock.now += 3600 - 301
    assert await cache.token(1) == first
    clock.now += 2  # now inside the 5-minute margin
    assert await cache.token(1) != first
    assert len(minter.calls) == 2


async def test_invalidate_forces_a_new_token():
    clock = Clock(1_700_000_000)
    minter = Minter(clock)
    cache = TokenCache(minter, clock=clock)
    first = await cache.token(1)
    cache.invalidate(1)
    assert await cache.token(1) != first


async def test_concurrent_callers_share_one_mint():
    clock = Clock(1_700_000_000)
    minter = Minter(clock)
    cache = TokenCache(minter, clock=clock)
    tokens = await asyncio.gather(*(cache.token(5) for _ in range(10)))
    assert set(tokens) == {"tok-5-1"}
    assert minter.calls == [5]


async def test_tokens_are_not_in_the_cache_repr():
    clock = Clock(1_700_000_000)
    cache = TokenCache(Minter(clock), clock=clock)
    token = await cache.token(3)
    assert token not in repr(cache)
    assert token not in repr(cache._tokens)


async def test_unusable_mint_answer_is_a_clear_error():
    async def mint(installation_id: int) -> dict:
        return {"token": "abc"}

    with pytest.raises(GitHubError, match="installation 4"):
        await TokenCache(mint).token(4)
