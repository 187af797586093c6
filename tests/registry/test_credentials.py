"""REGISTRY_CREDENTIALS loading and resolution (design §7)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.registry.credentials import Credential, CredentialStore, normalize_registry
from bot.registry.errors import CredentialsError, RegistryError
from bot.registry.scanner import RegistryScanner
from tests.registryharness.scanning import image_repository_config

GOOD = """\
ghcr-readonly:
  registry: ghcr.io
  username: x-access-token
  password: "gh-secret-123"
  allowed: ["my-org/*", "Other/Repo"]
hub:
  registry: docker.io
  username: me
  passwordEnv: HUB_TOKEN_FOR_TEST
open:
  registry: localhost:5000
  username: u
  password: open-secret
  allowed: ["*"]
local-only:
  registry: registry.example.com
  username: u
  password: local-secret
"""


def test_load_and_resolve(
    write_credentials: Callable[[str], CredentialStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_TOKEN_FOR_TEST", "hub-secret")
    store = write_credentials(GOOD)
    cred = store.resolve("ghcr-readonly", github_repository="my-org/app", registry="ghcr.io")
    assert (cred.username, cred.password, cred.registry) == (
        "x-access-token",
        "gh-secret-123",
        "ghcr.io",
    )
    assert (
        store.resolve("ghcr-readonly", github_repository="other/repo", registry="ghcr.io") is cred
    )
    hub = store.resolve("hub", github_repository=None, registry="index.docker.io")
    assert hub.password == "hub-secret"
    assert (
        store.resolve("open", github_repository="anyone/x", registry="localhost:5000").name
        == "open"
    )
    assert store.resolve("local-only", github_repository=None, registry="registry.example.com")


def test_password_never_in_repr_or_str(
    write_credentials: Callable[[str], CredentialStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_TOKEN_FOR_TEST", "hub-secret")
    store = write_credentials(GOOD)
    cred = store.resolve("ghcr-readonly", github_repository="my-org/app", registry="ghcr.io")
    for text in (repr(cred), str(cred), repr(store)):
        assert "gh-secret-123" not in text
    assert "gh-secret-123" not in cred.identity
    assert cred.identity.startswith("ghcr-readonly:")


@pytest.mark.parametrize(
    ("name", "github_repository", "registry", "message"),
    [
        ("nope", None, "ghcr.io", "'nope' are not defined in .*credentials.yml; add them"),
        ("ghcr-readonly", None, "ghcr.io", "not allowed for a local run in .*credentials.yml"),
        ("ghcr-readonly", "my-org/app", "evil.example.com", "are for registry ghcr.io, not evil"),
    ],
)
def test_resolve_refuses(
    write_credentials: Callable[[str], CredentialStore],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    github_repository: str | None,
    registry: str,
    message: str,
) -> None:
    monkeypatch.setenv("HUB_TOKEN_FOR_TEST", "hub-secret")
    store = write_credentials(GOOD)
    with pytest.raises(RegistryError, match=message) as info:
        store.resolve(name, github_repository=github_repository, registry=registry)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "github_repository", "registry"),
    [
        ("nope", "my-org/app", "ghcr.io"),  # not defined at all
        ("ghcr-readonly", "evil/app", "ghcr.io"),  # defined, not allowed
        ("local-only", "my-org/app", "registry.example.com"),  # defined, for local runs only
    ],
)
def test_a_repository_cannot_tell_undefined_from_not_allowed(
    write_credentials: Callable[[str], CredentialStore],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    name: str,
    github_repository: str,
    registry: str,
) -> None:
    """One message for both: only what the repository wrote, no path; the log says which."""
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("HUB_TOKEN_FOR_TEST", "hub-secret")
    store = write_credentials(GOOD)
    with pytest.raises(CredentialsError) as info:
        store.resolve(name, github_repository=github_repository, registry=registry)
    message = str(info.value)
    assert message == (
        f"credentials {name!r} are not available to repository {github_repository}; ask the "
        "operator of this bot to provide them for this repository, or fix `credentials:` in "
        "the image repository"
    )
    assert str(tmp_path) not in message and "credentials.yml" not in message
    # The operator's log says which case and where, never a secret.
    (record,) = [r for r in caplog.records if r.name == "bot.registry.credentials"]
    assert str(tmp_path / "credentials.yml") in record.getMessage()
    why = "are not defined" if name == "nope" else "are not allowed"
    assert why in record.getMessage()
    assert "secret" not in caplog.text
    # Logged once per (name, repository, reason), however often it is asked.
    with pytest.raises(CredentialsError):
        store.resolve(name, github_repository=github_repository, registry=registry)
    assert len([r for r in caplog.records if r.name == "bot.registry.credentials"]) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1\n", r"credentials\.yml:2:1: .*fix the YAML syntax"),
        ("- a\n", r"credentials\.yml:1:1: expected a mapping"),
        ("x:\n  registry: r\n  username: u\n  pasword: p\n", r":4:3: unknown key 'pasword'"),
        ("x:\n  username: u\n  password: p\n", r":2:3: credentials 'x' need `registry:`"),
        ("x:\n  registry: r\n  username: u\n", r"need both username and a password"),
        ("x:\n  registry: r\n  password: 5\n", r":3:13: password of credentials 'x' must be"),
        (
            "x:\n  registry: r\n  username: u\n  password: p\n  passwordEnv: E\n",
            r":5:3: .*both password and passwordEnv",
        ),
        (
            "x:\n  registry: r\n  username: u\n  passwordEnv: NOT_SET_ANYWHERE_42\n",
            r":4:16: environment variable NOT_SET_ANYWHERE_42 .* is not set",
        ),
        (
            "x:\n  registry: r\n  caFile: /no/such/ca.pem\n",
            r":3:11: caFile /no/such/ca.pem of credentials 'x' does not exist",
        ),
        (
            "x:\n  registry: r\n  username: u\n  password: p\n  allowed: my-org/*\n",
            r":5:12: allowed of credentials 'x' must be a list",
        ),
        ("x: 3\n", r":1:4: credentials 'x' must be a mapping"),
        (
            "x:\n  registry: r\n  realms: auth.example.com\n",
            r":3:11: realms of credentials 'x' must be a list of token-server hosts",
        ),
        (
            "x:\n  registry: r\n  realms:\n    - auth.example.com\n    - https://evil.example/t\n",
            r":5:7: 'https://evil.example/t' in realms of credentials 'x' is not a host or "
            r"host:port \(no scheme, path or wildcard\)",
        ),
        (
            "x:\n  registry: r\n  realms: ['*.example.com']\n",
            r":3:12: '\*.example.com' in realms of credentials 'x' is not a host",
        ),
        ("x:\n  registry: r\n  realms: [a.example:99999]\n", r":3:12: 'a.example:99999' in"),
        ("x:\n  registry: r\n  realms: [5]\n", r":3:12: 5 in realms of credentials 'x'"),
    ],
)
def test_load_errors_name_file_line_and_fix(
    write_credentials: Callable[[str], CredentialStore], text: str, message: str
) -> None:
    with pytest.raises(CredentialsError, match=message) as info:
        write_credentials(text)
    assert "Traceback" not in str(info.value)


def test_realms_are_loaded_lower_case(write_credentials: Callable[[str], CredentialStore]) -> None:
    store = write_credentials(
        "x:\n  registry: r.example\n  username: u\n  password: p\n  allowed: ['*']\n"
        "  realms: [Auth.Example.com, '127.0.0.1:5001', '[::1]:8443']\n"
    )
    credential = store.resolve("x", github_repository=None, registry="r.example")
    assert credential.realms == ["auth.example.com", "127.0.0.1:5001", "[::1]:8443"]


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read the registry credentials file"):
        CredentialStore.load(str(tmp_path / "missing.yml"))
    (tmp_path / "empty.yml").write_text("")
    assert len(CredentialStore.load(str(tmp_path / "empty.yml"))) == 0
    assert len(CredentialStore.load(None)) == 0


def test_error_message_never_shows_a_password_given_inline(
    write_credentials: Callable[[str], CredentialStore],
) -> None:
    with pytest.raises(CredentialsError) as info:
        write_credentials("x:\n  registry: r\n  username: u\n  password: hunter2\n  bad: 1\n")
    assert "hunter2" not in str(info.value)


def test_identity_changes_with_secret_and_is_empty_when_anonymous() -> None:
    one = Credential("c", "r", "u", "p1")
    two = Credential("c", "r", "u", "p2")
    assert one.identity != two.identity
    assert Credential("c", "r").identity == ""


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("docker.io", "index.docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("GHCR.io", "ghcr.io"),
    ],
)
def test_registry_spellings(a: str, b: str) -> None:
    assert normalize_registry(a) == normalize_registry(b)


async def test_a_broken_ca_file_is_reported_without_its_path(
    write_credentials: Callable[[str], CredentialStore],
    make_scanner: Callable[..., RegistryScanner],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The check run says whose CA file is broken; only the operator's log says where."""
    ca_file = tmp_path / "operator-only" / "ca.pem"
    ca_file.parent.mkdir()
    ca_file.write_text("not a certificate\n")
    store = write_credentials(
        f"ca:\n  registry: r.example\n  caFile: {ca_file}\n  allowed: ['*']\n"
    )
    image = "r.example/team/app"
    with pytest.raises(RegistryError) as info:
        await make_scanner(store).scan(
            image_repository_config(image, credentials="ca"), github_repository="org/a"
        )
    message = str(info.value)
    assert message == (
        f"{image}: the CA file of credentials 'ca' cannot be loaded; ask the operator of this "
        "bot to fix it"
    )
    assert str(tmp_path) not in message
    assert str(ca_file) in caplog.text
