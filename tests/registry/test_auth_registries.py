"""Basic, Bearer token and TLS registries; credentials stay where they belong."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from bot.registry.credentials import CredentialStore
from bot.registry.errors import CredentialsError, RegistryError
from bot.registry.scanner import RegistryScanner
from tests.registryharness.registries import ALICE, Registry
from tests.registryharness.scanning import FakeClock, image_repository_config
from tests.registryharness.shim import Shim

pytestmark = pytest.mark.registry

MakeScanner = Callable[..., RegistryScanner]
WriteCredentials = Callable[[str], CredentialStore]


def creds_yaml(name: str, host: str, password: str = ALICE[1], extra: str = "") -> str:
    return (
        f"{name}:\n  registry: {host}\n  username: {ALICE[0]}\n  password: {password!r}\n"
        f'  allowed: ["org/*"]\n{extra}'
    )


# -- basic (htpasswd, bcrypt) ---------------------------------------------------


async def test_basic_auth(
    basic_registry: Registry, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    scanner = make_scanner(write_credentials(creds_yaml("basic", basic_registry.host)))
    image_repository = image_repository_config(
        basic_registry.image("secret/app"), credentials="basic"
    )
    result = await scanner.scan(image_repository, github_repository="org/a")
    assert result.tags == ["1.1.0", "1.0.0"]
    assert scanner.request_counts["tags"] == 2  # challenge, then with Basic
    await scanner.scan(image_repository, github_repository="org/a", force=True)
    assert scanner.request_counts["tags"] == 3  # Basic is now sent at once
    assert scanner.request_counts["token"] == 0


async def test_basic_auth_wrong_password_shows_no_secret(
    basic_registry: Registry,
    make_scanner: MakeScanner,
    write_credentials: WriteCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wr0ng-Secret-xyz"
    scanner = make_scanner(write_credentials(creds_yaml("basic", basic_registry.host, wrong)))
    image_repository = image_repository_config(
        basic_registry.image("secret/app"), credentials="basic"
    )
    with pytest.raises(RegistryError) as info:
        await scanner.scan(image_repository, github_repository="org/a")
    message = str(info.value)
    assert message.startswith(image_repository.image)
    assert "access denied (HTTP 401)" in message
    assert "check that credentials 'basic' may pull this image" in message
    assert wrong not in message and wrong not in caplog.text
    assert "d3IwbmctU2VjcmV0LXh5eg" not in message + caplog.text  # nor its base64


async def test_basic_auth_without_credentials(
    basic_registry: Registry, make_scanner: MakeScanner
) -> None:
    with pytest.raises(RegistryError, match=r"requires a login \(HTTP 401, Basic\); set `cred"):
        await make_scanner().scan(image_repository_config(basic_registry.image("secret/app")))


async def test_authorization_is_dropped_on_a_redirect_to_another_host(
    basic_registry: Registry, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    shim = Shim(basic_registry.process.port).start()
    try:
        scanner = make_scanner(write_credentials(creds_yaml("basic", shim.host)))
        image_repository = image_repository_config(f"{shim.host}/secret/app", credentials="basic")
        await scanner.scan(image_repository, github_repository="org/a")
        shim.log.clear()
        shim.inject("secret/app", "tags", "redirect-other-host")
        result = await scanner.scan(image_repository, github_repository="org/a", force=True)
        assert result.tags == ["1.1.0", "1.0.0"]
        sent = [(auth, host.split(":")[0]) for _m, _p, auth, host in shim.log]
        # Redirected request to localhost: no Authorization; then a fresh request succeeds.
        assert sent[:2] == [(True, "127.0.0.1"), (False, "localhost")]
        assert all(auth for auth, host in sent if host == "127.0.0.1")
    finally:
        shim.stop()


# -- Bearer tokens ---------------------------------------------------------------


def token_creds(name: str, registry: Registry, password: str = ALICE[1]) -> str:
    """Credentials for the token registry: its token server is on another port, so listed."""
    server = registry.token_server
    assert server is not None
    realm_host = server.realm.split("://", 1)[1].split("/", 1)[0]
    return creds_yaml(name, registry.host, password, extra=f"  realms: ['{realm_host}']\n")


async def test_token_auth_anonymous_pull(
    token_registry: Registry, make_scanner: MakeScanner, clock: FakeClock
) -> None:
    scanner = make_scanner()
    image_repository = image_repository_config(token_registry.image("public/app"))
    assert (await scanner.scan(image_repository)).tags == ["3.0.0"]
    assert (scanner.request_counts["tags"], scanner.request_counts["token"]) == (2, 1)
    await scanner.scan(image_repository, force=True)  # token reused
    assert (scanner.request_counts["tags"], scanner.request_counts["token"]) == (3, 1)
    clock.advance(301)  # expired: a new one
    await scanner.scan(image_repository, force=True)
    assert scanner.request_counts["token"] == 2


async def test_token_auth_private_with_credentials(
    token_registry: Registry, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    server = token_registry.token_server
    assert server is not None
    before = server.requests["alice"]
    scanner = make_scanner(write_credentials(token_creds("tok", token_registry)))
    image_repository = image_repository_config(
        token_registry.image("private/app"), credentials="tok"
    )
    result = await scanner.scan(image_repository, github_repository="org/a")
    assert result.tags == ["1.1.0", "1.0.0"]
    assert server.requests["alice"] == before + 1
    digest = await scanner.digest_lookup(image_repository, github_repository="org/a")("1.0.0")
    assert digest == token_registry.digests["private/app:1.0.0"]
    assert scanner.request_counts["token"] == 1  # same scope: token reused for HEAD


async def test_token_auth_private_anonymous_is_insufficient_scope(
    token_registry: Registry, make_scanner: MakeScanner
) -> None:
    image_repository = image_repository_config(token_registry.image("private/app"))
    with pytest.raises(RegistryError) as info:
        await make_scanner().scan(image_repository)
    message = str(info.value)
    assert "access denied (HTTP 401, insufficient_scope)" in message
    assert "the image may be private: set `credentials:`" in message


async def test_token_server_rejects_bad_password_without_leaking_it(
    token_registry: Registry,
    make_scanner: MakeScanner,
    write_credentials: WriteCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Not-The-Password-123"
    scanner = make_scanner(write_credentials(token_creds("tok", token_registry, wrong)))
    image_repository = image_repository_config(
        token_registry.image("private/app"), credentials="tok"
    )
    with pytest.raises(RegistryError) as info:
        await scanner.scan(image_repository, github_repository="org/a")
    message = str(info.value)
    assert "token server 127.0.0.1 rejected credentials 'tok' (HTTP 401)" in message
    assert wrong not in message and wrong not in caplog.text


async def test_private_tags_are_never_served_to_a_caller_without_the_credentials(
    token_registry: Registry, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    scanner = make_scanner(write_credentials(token_creds("tok", token_registry)))
    private = image_repository_config(token_registry.image("private/app"), credentials="tok")
    await scanner.scan(private, github_repository="org/a")
    await scanner.scan(private, github_repository="org/b")  # allowed too: shares the result
    assert scanner.request_counts["tags"] == 2

    anonymous = image_repository_config(token_registry.image("private/app"))
    with pytest.raises(RegistryError, match="access denied"):
        await scanner.scan(anonymous, github_repository="evil/x")
    assert scanner.request_counts["tags"] == 4  # its own (failing) request
    with pytest.raises(CredentialsError, match="not available to repository evil/x"):
        await scanner.scan(private, github_repository="evil/x")
    with pytest.raises(CredentialsError, match="not available to repository evil/x"):
        await scanner.digest_lookup(private, github_repository="evil/x")("1.0.0")
    assert scanner.request_counts["tags"] == 4 and scanner.request_counts["manifest_head"] == 0


async def test_tokens_are_per_credential(
    token_registry: Registry, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    scanner = make_scanner(write_credentials(token_creds("tok", token_registry)))
    await scanner.scan(image_repository_config(token_registry.image("public/app")))
    with_creds = image_repository_config(token_registry.image("public/app"), credentials="tok")
    await scanner.scan(with_creds, github_repository="org/a")
    assert scanner.request_counts["token"] == 2
    assert scanner.request_counts["tags"] == 4


# -- TLS -------------------------------------------------------------------------


def tls_creds(name: str, host: str, ca_file: str) -> str:
    return f'{name}:\n  registry: {host}\n  caFile: {ca_file}\n  allowed: ["*"]\n'


async def test_tls_with_extra_ca(
    tls_registry: Registry, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    assert tls_registry.tls is not None
    scanner = make_scanner(
        write_credentials(tls_creds("ca", tls_registry.host, tls_registry.tls.ca_file))
    )
    image_repository = image_repository_config(tls_registry.image("tls/app"), credentials="ca")
    assert (await scanner.scan(image_repository)).tags == ["1.0.0"]
    digest = await scanner.digest_lookup(image_repository)("1.0.0")
    assert digest == tls_registry.digests["tls/app:1.0.0"]


async def test_tls_with_the_wrong_ca_is_a_clear_error(
    tls_registry: Registry, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    other = tls_registry.extra["other_ca"]
    scanner = make_scanner(write_credentials(tls_creds("ca", tls_registry.host, other)))
    image_repository = image_repository_config(tls_registry.image("tls/app"), credentials="ca")
    with pytest.raises(RegistryError) as info:
        await scanner.scan(image_repository)
    message = str(info.value)
    assert message.startswith(image_repository.image)
    assert "TLS certificate of 127.0.0.1 is not trusted" in message
    assert "set caFile" in message


async def test_tls_without_ca_uses_system_trust_only(
    tls_registry: Registry, make_scanner: MakeScanner
) -> None:
    # https on loopback
    image_repository = image_repository_config(tls_registry.image("tls/app"), insecure=False)
    with pytest.raises(RegistryError, match="is not trusted"):
        await make_scanner().scan(image_repository)


async def test_plain_http_is_used_only_where_allowed(
    tls_registry: Registry, make_scanner: MakeScanner
) -> None:
    # Loopback defaults to http: a TLS registry then answers 400, a clear error.
    with pytest.raises(RegistryError, match="HTTP 400"):
        await make_scanner().scan(image_repository_config(tls_registry.image("tls/app")))
