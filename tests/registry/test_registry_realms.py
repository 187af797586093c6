"""Registry credentials go only where they belong (issue 8 §3).

A credential's secret goes to its registry's own origin, and to a token realm
only when the realm is https (or loopback http for a loopback http registry), on
the registry's origin or a host the entry (or the well-known table) lists, and
named by a 401 from the registry itself, not from where a redirect led. Over
real HTTP on 127.0.0.1: hostile edges record every request, and the tests assert
that no Authorization and no password bytes ever reached them.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from yarl import URL

from bot.registry.credentials import WELL_KNOWN_REALMS, Credential, CredentialStore
from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner
from tests.registry.edges import Edge, challenge, secret_spellings, tags_json
from tests.registryharness.certs import make_tls
from tests.registryharness.registries import ALICE, Registry
from tests.registryharness.scanning import image_repository_config

MakeScanner = Callable[..., RegistryScanner]
WriteCredentials = Callable[[str], CredentialStore]
StartEdge = Callable[..., Awaitable[Edge]]

USER = "robot"
PASSWORD = "Realm-Pa55word-9f3c"
SECRETS = secret_spellings(USER, PASSWORD)
PATH = "team/app"
SCOPE = f"repository:{PATH}:pull"
TOKEN = "edge-token-123"


# -- the well-known table and the rules, without a network ---------------------------


@pytest.mark.parametrize(
    ("registry", "api", "realm"),
    [
        # What each registry really sends in its 401 (see WELL_KNOWN_REALMS).
        ("docker.io", "https://registry-1.docker.io", "https://auth.docker.io/token"),
        ("index.docker.io", "https://registry-1.docker.io", "https://auth.docker.io/token"),
        ("ghcr.io", "https://ghcr.io", "https://ghcr.io/token"),
        ("quay.io", "https://quay.io", "https://quay.io/v2/auth"),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",
        ),
        ("gcr.io", "https://gcr.io", "https://gcr.io/v2/token"),
        ("eu.gcr.io", "https://eu.gcr.io", "https://eu.gcr.io/v2/token"),
        (
            "europe-west1-docker.pkg.dev",
            "https://europe-west1-docker.pkg.dev",
            "https://europe-west1-docker.pkg.dev/v2/token",
        ),
        ("myacr.azurecr.io", "https://myacr.azurecr.io", "https://myacr.azurecr.io/oauth2/token"),
        ("registry.gitlab.com", "https://registry.gitlab.com", "https://gitlab.com/jwt/auth"),
    ],
)
def test_well_known_registries_need_no_realms_setting(registry: str, api: str, realm: str) -> None:
    credential = Credential("c", registry, USER, PASSWORD)
    assert credential.realm_refusal(URL(realm), registry=URL(api)) is None


@pytest.mark.parametrize(
    ("registry", "api", "realm"),
    [
        ("docker.io", "https://registry-1.docker.io", "https://auth.docker.io.evil.example/t"),
        ("docker.io", "https://registry-1.docker.io", "https://evil.auth.docker.io/token"),
        ("docker.io", "https://registry-1.docker.io", "https://auth.docker.io:8443/token"),
        ("docker.io", "https://registry-1.docker.io", "http://auth.docker.io/token"),
        ("ghcr.io", "https://ghcr.io", "https://auth.docker.io/token"),  # not ghcr's realm
        ("ghcr.io", "https://ghcr.io", "https://gitlab.com/jwt/auth"),
        ("ghcr.io", "https://ghcr.io", "https://ghcr.io:444/token"),
        ("myacr.azurecr.io", "https://myacr.azurecr.io", "https://other.azurecr.io/oauth2/token"),
        ("eu.gcr.io", "https://eu.gcr.io", "https://gcr.io/v2/token"),
        ("registry.example.com", "https://registry.example.com", "https://auth.docker.io/t"),
    ],
)
def test_well_known_table_trusts_nothing_else(registry: str, api: str, realm: str) -> None:
    credential = Credential("c", registry, USER, PASSWORD)
    assert credential.realm_refusal(URL(realm), registry=URL(api)) is not None


def test_well_known_table_names_only_https_hosts() -> None:
    for glob, hosts in WELL_KNOWN_REALMS:
        assert glob == glob.lower() and "/" not in glob and ":" not in glob
        for host in hosts:
            assert "/" not in host and ":" not in host and "*" not in host


@pytest.mark.parametrize(
    ("realms", "registry", "realm", "refused"),
    [
        # The registry's own origin, any path: it gets Basic from the registry anyway.
        ([], "https://r.example", "https://r.example/any/path/token", None),
        ([], "https://r.example", "https://R.EXAMPLE:443/token", None),
        ([], "http://127.0.0.1:5000", "http://127.0.0.1:5000/token", None),
        # Same host, another port or scheme: another origin.
        ([], "https://r.example", "https://r.example:8443/token", "not trusted"),
        ([], "http://127.0.0.1:5000", "http://127.0.0.1:5001/token", "not trusted"),
        ([], "http://127.0.0.1:5000", "https://127.0.0.1:5000/token", "not trusted"),
        ([], "https://r.example", "http://r.example/token", "plain http"),
        # Listed realms: host means port 443 for https; host:port that port only.
        (["auth.example"], "https://r.example", "https://auth.example/token", None),
        (["auth.example"], "https://r.example", "https://auth.example:8443/token", "not trusted"),
        (["auth.example:8443"], "https://r.example", "https://auth.example:8443/t", None),
        (["auth.example:8443"], "https://r.example", "https://auth.example/t", "not trusted"),
        (["auth.example"], "https://r.example", "https://x.auth.example/token", "not trusted"),
        # Plain http only between loopback hosts, for a loopback http registry.
        (["auth.example"], "https://r.example", "http://auth.example/token", "plain http"),
        (["auth.example:80"], "http://r.example", "http://auth.example/token", "plain http"),
        (["127.0.0.1:5001"], "http://127.0.0.1:5000", "http://127.0.0.1:5001/token", None),
        (["127.0.0.1:5001"], "https://127.0.0.1:5000", "http://127.0.0.1:5001/t", "plain http"),
        (["10.0.0.1:5001"], "http://127.0.0.1:5000", "http://10.0.0.1:5001/t", "plain http"),
        (["[::1]:5001"], "http://[::1]:5000", "http://[::1]:5001/token", None),
    ],
)
def test_realm_rules(realms: list[str], registry: str, realm: str, refused: str | None) -> None:
    credential = Credential("c", "r.example", USER, PASSWORD, realms=realms)
    refusal = credential.realm_refusal(URL(realm), registry=URL(registry))
    if refused is None:
        assert refusal is None
        assert credential.may_send_to(URL(realm), registry=URL(registry))
    else:
        assert refusal is not None and refused in refusal
        assert not credential.may_send_to(URL(realm), registry=URL(registry))


# -- over real HTTP: hostile edges on 127.0.0.1 ------------------------------------------


@pytest.fixture
async def start_edge() -> AsyncIterator[StartEdge]:
    edges: list[Edge] = []

    async def start(respond, **options) -> Edge:
        edge = await Edge(respond, **options).start()
        edges.append(edge)
        return edge

    yield start
    for edge in edges:
        await edge.stop()


async def token_endpoint(request: web.Request) -> web.Response:
    """A realm that hands out a token to anyone: a leak would make the scan succeed."""
    return web.json_response({"token": TOKEN, "expires_in": 300})


def registry_naming(realm: Callable[[], str]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A registry whose 401 names ``realm()``, and that lists tags for the realm's token."""

    async def respond(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") == f"Bearer {TOKEN}":
            return tags_json(PATH, ["1.0.0", "1.1.0"])
        return challenge(realm(), SCOPE)

    return respond


def credentials_for(host: str, *, realms: list[str] = (), ca_file: str | None = None) -> str:
    text = (
        f"edge:\n  registry: '{host}'\n  username: {USER}\n  password: {PASSWORD}\n"
        "  allowed: ['org/*']\n"
    )
    if realms:
        text += f"  realms: [{', '.join(repr(r) for r in realms)}]\n"
    if ca_file:
        text += f"  caFile: {ca_file}\n"
    return text


def assert_no_secret_reached(*edges: Edge) -> None:
    for edge in edges:
        for seen in edge.requests:
            raw = seen.raw()
            assert not [k for k, _v in seen.headers if k.lower() == "authorization"], seen
            for secret in SECRETS:
                assert secret.encode() not in raw, seen


def assert_clear_refusal(message: str, image: str, *fragments: str) -> None:
    assert message.startswith(f"{image}: refusing to send credentials 'edge' to the token server")
    assert "nothing was sent to it" in message
    for fragment in fragments:
        assert fragment in message, message
    for secret in SECRETS:
        assert secret not in message


async def scan_refused(scanner: RegistryScanner, image: str, **fields: object) -> str:
    with pytest.raises(RegistryError) as info:
        await scanner.scan(
            image_repository_config(image, credentials="edge", **fields), github_repository="org/a"
        )
    return str(info.value)


@pytest.mark.parametrize("where", ["another host", "another port"])
async def test_a_realm_on_another_origin_gets_nothing(
    start_edge: StartEdge,
    make_scanner: MakeScanner,
    write_credentials: WriteCredentials,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    realm = await start_edge(token_endpoint)
    realm_host = "localhost" if where == "another host" else "127.0.0.1"
    registry = await start_edge(registry_naming(lambda: realm.url("/token", host=realm_host)))
    scanner = make_scanner(write_credentials(credentials_for(registry.host)))
    image = f"{registry.host}/{PATH}"

    message = await scan_refused(scanner, image)

    assert_clear_refusal(
        message,
        image,
        f"http://{realm_host}:{realm.port}",
        "its host is not trusted for these credentials",
        f"add {realm_host}:{realm.port} to `realms:`",
    )
    assert realm.requests == []  # nothing at all went to the realm
    assert registry.paths() == [f"/v2/{PATH}/tags/list?n=1000"]
    assert scanner.request_counts["token"] == 0
    assert_no_secret_reached(realm, registry)
    for secret in SECRETS:
        assert secret not in caplog.text
    assert "not sending credentials 'edge' to the token realm" in caplog.text


async def test_the_same_host_on_another_scheme_is_another_origin(
    start_edge: StartEdge, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    registry = await start_edge(registry_naming(lambda: f"https://{registry.host}/token"))
    scanner = make_scanner(write_credentials(credentials_for(registry.host)))
    image = f"{registry.host}/{PATH}"
    message = await scan_refused(scanner, image)
    assert_clear_refusal(message, image, f"https://{registry.host}", "not trusted")
    assert registry.paths() == [f"/v2/{PATH}/tags/list?n=1000"]  # no /token, no TLS hello
    assert_no_secret_reached(registry)


async def test_a_plain_http_realm_gets_nothing_from_an_https_registry(
    tmp_path: Path,
    start_edge: StartEdge,
    make_scanner: MakeScanner,
    write_credentials: WriteCredentials,
) -> None:
    tls = make_tls(tmp_path / "tls")
    context = web_ssl_context(tls.cert_file, tls.key_file)
    realm = await start_edge(token_endpoint)
    registry = await start_edge(registry_naming(lambda: realm.url("/token")), ssl_context=context)
    # Even listed: credentials go to a token server over https only.
    scanner = make_scanner(
        write_credentials(credentials_for(registry.host, realms=[realm.host], ca_file=tls.ca_file))
    )
    image = f"{registry.host}/{PATH}"
    message = await scan_refused(scanner, image, insecure=False)
    assert_clear_refusal(message, image, f"http://127.0.0.1:{realm.port}", "plain http")
    assert realm.requests == []
    assert len(registry.requests) == 1
    assert_no_secret_reached(realm, registry)


@pytest.mark.parametrize("named", ["the redirect target's own realm", "a listed realm"])
async def test_a_realm_named_after_a_redirect_gets_nothing(
    start_edge: StartEdge,
    make_scanner: MakeScanner,
    write_credentials: WriteCredentials,
    named: str,
) -> None:
    realm = await start_edge(token_endpoint)

    async def elsewhere_respond(request: web.Request) -> web.Response:
        if named == "a listed realm":
            return challenge(realm.url("/token"), SCOPE)
        return challenge(elsewhere.url("/token", host="localhost"), SCOPE)

    elsewhere = await start_edge(elsewhere_respond)

    async def registry_respond(request: web.Request) -> web.Response:
        target = elsewhere.url(request.path_qs, host="localhost")
        return web.Response(status=307, headers={"Location": target})

    registry = await start_edge(registry_respond)
    scanner = make_scanner(write_credentials(credentials_for(registry.host, realms=[realm.host])))
    image = f"{registry.host}/{PATH}"

    message = await scan_refused(scanner, image)

    assert_clear_refusal(
        message,
        image,
        f"the login challenge naming it came from http://localhost:{elsewhere.port} after a "
        "redirect, not from the registry itself",
    )
    assert realm.requests == []
    assert elsewhere.paths() == [f"/v2/{PATH}/tags/list?n=1000"]  # no /token request
    assert_no_secret_reached(realm, elsewhere, registry)


async def test_a_listed_realm_gets_the_credentials(
    start_edge: StartEdge, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    """The control: the same hostile setup, with the realm listed, does send Basic there."""
    realm = await start_edge(token_endpoint)
    registry = await start_edge(registry_naming(lambda: realm.url("/token")))
    scanner = make_scanner(write_credentials(credentials_for(registry.host, realms=[realm.host])))
    result = await scanner.scan(
        image_repository_config(f"{registry.host}/{PATH}", credentials="edge"),
        github_repository="org/a",
    )
    assert result.tags == ["1.1.0", "1.0.0"]
    assert realm.authorizations() == [f"Basic {SECRETS[1]}"]
    assert registry.authorizations() == [f"Bearer {TOKEN}"]


async def test_a_realm_on_the_registrys_own_origin_gets_them_on_any_path(
    start_edge: StartEdge, make_scanner: MakeScanner, write_credentials: WriteCredentials
) -> None:
    async def respond(request: web.Request) -> web.Response:
        if request.path == "/some/odd/path/token":
            return await token_endpoint(request)
        return await registry_naming(lambda: registry.url("/some/odd/path/token"))(request)

    registry = await start_edge(respond)
    scanner = make_scanner(write_credentials(credentials_for(registry.host)))
    result = await scanner.scan(
        image_repository_config(f"{registry.host}/{PATH}", credentials="edge"),
        github_repository="org/a",
    )
    assert result.tags == ["1.1.0", "1.0.0"]
    assert registry.authorizations() == [f"Basic {SECRETS[1]}", f"Bearer {TOKEN}"]


async def test_anonymous_tokens_still_come_from_any_realm(
    start_edge: StartEdge, make_scanner: MakeScanner
) -> None:
    realm = await start_edge(token_endpoint)
    registry = await start_edge(registry_naming(lambda: realm.url("/token", host="localhost")))
    result = await make_scanner().scan(image_repository_config(f"{registry.host}/{PATH}"))
    assert result.tags == ["1.1.0", "1.0.0"]
    assert len(realm.requests) == 1 and realm.authorizations() == []
    assert realm.paths() == [f"/token?scope={SCOPE}&service=edge"]


@pytest.mark.registry
async def test_the_real_token_registry_needs_its_realm_listed(
    token_registry: Registry,
    make_scanner: MakeScanner,
    write_credentials: WriteCredentials,
) -> None:
    """distribution's 401 names its token server on another port: refused unless listed."""
    server = token_registry.token_server
    assert server is not None
    before = len(server.seen_authorization)
    text = credentials_for(token_registry.host).replace(USER, ALICE[0]).replace(PASSWORD, ALICE[1])
    scanner = make_scanner(write_credentials(text))
    image = token_registry.image("private/app")
    message = await scan_refused(scanner, image)
    realm_host = server.realm.split("://", 1)[1].split("/", 1)[0]
    assert f"add {realm_host} to `realms:`" in message
    assert ALICE[1] not in message
    assert len(server.seen_authorization) == before  # the token server heard nothing
    assert scanner.request_counts["token"] == 0


def web_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context
