"""The address policy for registry hosts (issue 8 §2): classifier, allow list, and the
registry session refusing loopback targets on real sockets (loopback only).

The same refusals against link-local, private, CGNAT and ULA addresses, through
`python -m bot serve`, run in a loopback-only network namespace: tests/netns,
started by tests/e2e/test_ssrf.py.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.config import CONFIG_PATH, load_config
from bot.imageref import ImageRefError, parse_reference, parse_repository
from bot.registry.addresses import (
    ALLOWED_ADDRESSES_VARIABLE,
    AddressNotAllowed,
    AddressPolicy,
    AllowList,
    AllowListError,
    PolicyConnector,
    classify,
    credential_registries,
    registry_session,
)
from bot.registry.credentials import CredentialStore
from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner
from tests.netns.hostile import LEAK_TAG, Edge, Listener, realm, redirect
from tests.registryharness.scanning import image_repository_config

# -- the classifier --------------------------------------------------------------------

REFUSED = [
    # IPv4
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),
    ("169.254.0.1", "link-local"),
    ("10.0.0.5", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),  # 0/8, "this network"
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "reserved"),  # documentation
    ("198.51.100.7", "reserved"),
    ("203.0.113.9", "reserved"),
    ("198.18.0.1", "reserved"),  # benchmarking
    ("192.0.0.8", "reserved"),
    # IPv6
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%lo", "link-local"),
    ("febf::1", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "private"),
    ("fd00::5", "private"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "reserved"),
    ("100::1", "reserved"),
    # IPv4 embedded in IPv6: judged by where it leads
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("::ffff:10.0.0.5", "IPv4-mapped private"),
    ("::ffff:100.64.0.1", "IPv4-mapped CGNAT"),
    ("::ffff:0.0.0.0", "IPv4-mapped unspecified"),
    ("::ffff:224.0.0.1", "IPv4-mapped multicast"),
    ("::127.0.0.1", "IPv4-compatible loopback"),
    ("::169.254.169.254", "IPv4-compatible link-local"),
    ("::10.0.0.5", "IPv4-compatible private"),
    ("::8.8.8.8", "reserved"),  # the deprecated compatible form is refused whatever it holds
    ("::ffff:0:7f00:1", "IPv4-translated loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 link-local"),
    ("64:ff9b::a00:5", "NAT64 private"),
    ("64:ff9b:1::1", "private"),  # local-use NAT64 prefix
    ("2002:7f00:1::1", "6to4 loopback"),
    ("2002:a9fe:a9fe::1", "6to4 link-local"),
    ("2002:c0a8:101::1", "6to4 private"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"),  # Teredo
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above
    "172.32.0.1",  # just past 172.16/12
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_internal_addresses_are_refused_with_their_kind(address, kind):
    assert classify(address) == kind
    assert AddressPolicy().refusal("example.org", 443, address) == kind


@pytest.mark.parametrize("address", PUBLIC)
def test_global_addresses_are_allowed(address):
    assert classify(address) is None
    assert AddressPolicy().refusal("example.org", 443, address) is None


def test_any_refused_address_refuses_the_name():
    """A name with one public and one private address is refused: ANY, not first."""
    policy = AddressPolicy()
    results = [_result("mixed.example", "8.8.8.8", 443), _result("mixed.example", "10.0.0.5", 443)]
    with pytest.raises(AddressNotAllowed) as caught:
        policy.check("mixed.example", results)
    assert caught.value.kind == "private" and caught.value.address == "10.0.0.5"
    assert "10.0.0.5" not in caught.value.describe()  # a name's address stays in the log
    assert caught.value.describe() == "mixed.example:443 resolves to a private address"
    policy.check("public.example", results[:1])  # the public one alone is fine


# -- the allow list ----------------------------------------------------------------------


def test_allow_list_forms_host_host_port_address_and_cidr():
    allow = AllowList.parse(
        " registry.internal , mirror.internal:5000,10.1.0.0/16, 127.0.0.1:5000,"
        "fd00::/8,[::1]:5000,192.168.7.7,::2,, Registry.Upper. "
    )
    assert allow.hosts == {"registry.internal", "registry.upper"}
    assert allow.host_ports == {("mirror.internal", 5000)}
    assert set(allow.networks) == {
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("192.168.7.7/32"),
        ipaddress.ip_network("::2/128"),
    }
    assert allow.address_ports == {
        (ipaddress.ip_address("127.0.0.1"), 5000),
        (ipaddress.ip_address("::1"), 5000),
    }
    policy = AddressPolicy(allow)
    # host: any port, whatever it resolves to
    assert policy.refusal("registry.internal", 8443, "10.9.9.9") is None
    assert policy.refusal("REGISTRY.internal.", 443, "127.0.0.1") is None
    # host:port: that port only
    assert policy.refusal("mirror.internal", 5000, "10.9.9.9") is None
    assert policy.refusal("mirror.internal", 5001, "10.9.9.9") == "private"
    # CIDR: any name, any port, also the IPv4-mapped form
    assert policy.refusal("anything.example", 80, "10.1.2.3") is None
    assert policy.refusal("10.1.2.3", 80, "::ffff:10.1.2.3") is None
    assert policy.refusal("10.2.0.1", 80, "10.2.0.1") == "private"
    assert policy.refusal("x", 80, "fd12::1") is None
    # address:port
    assert policy.refusal("127.0.0.1", 5000, "127.0.0.1") is None
    assert policy.refusal("localhost", 5000, "127.0.0.1") is None  # the address is allowed
    assert policy.refusal("127.0.0.1", 5001, "127.0.0.1") == "loopback"
    assert policy.refusal("::1", 5000, "::1") is None
    assert policy.refusal("::1", 5001, "::1") == "loopback"
    # a single address without a port
    assert policy.refusal("192.168.7.7", 1, "192.168.7.7") is None
    assert policy.refusal("192.168.7.8", 1, "192.168.7.8") == "private"
    assert AllowList.parse("") == AllowList() and not AllowList.parse(" , ")


@pytest.mark.parametrize(
    ("entry", "detail"),
    [
        ("10.0.0.5/8", "has host bits set"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("registry.internal:0", "port '0'"),
        ("registry.internal:65536", "port '65536'"),
        ("registry.internal:http", "port 'http'"),
        ("http://registry.internal", "without a scheme"),
        ("127.1", "a.b.c.d"),
        ("2130706433", "a.b.c.d"),
        ("0x7f.0.0.1:5000", "a.b.c.d"),
        ("[::1", "unclosed"),
        ("[::1]5000", "expected ':port'"),
        ("[nothex]:5000", "nothex"),
        ("*", "not a valid host name"),
        ("bad host", "not a valid host name"),
        (":5000", "no host"),
    ],
)
def test_a_bad_allow_list_entry_names_the_variable_and_the_entry(entry, detail):
    with pytest.raises(AllowListError) as caught:
        AllowList.parse(f"registry.ok,{entry}")
    message = str(caught.value)
    assert message.startswith(f"{ALLOWED_ADDRESSES_VARIABLE}: entry {entry!r}")
    assert detail in message
    assert isinstance(caught.value, RegistryError)  # serve's main() exits 2 on these


def test_registries_named_in_credentials_are_allowed_even_without_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_ADDR_PASSWORD", "s3cret")
    path = tmp_path / "credentials.yml"
    path.write_text(
        "anonymous:\n  registry: 127.0.0.1:5000\n"
        "internal:\n  registry: https://registry.internal/\n  username: robot\n"
        "  passwordEnv: TEST_ADDR_PASSWORD\n  allowed: ['octo-org/*']\n"
        "v6:\n  registry: '[fd00::7]:8443'\n"
    )
    store = CredentialStore.load(str(path))
    allow = credential_registries(store)
    policy = AddressPolicy.from_environment("", store)
    assert allow.address_ports == {
        (ipaddress.ip_address("127.0.0.1"), 5000),
        (ipaddress.ip_address("fd00::7"), 8443),
    }
    assert policy.refusal("127.0.0.1", 5000, "127.0.0.1") is None
    assert policy.refusal("127.0.0.1", 5001, "127.0.0.1") == "loopback"
    # no port: the ports an image there is reached on, not every port of the host
    assert policy.refusal("registry.internal", 443, "10.0.0.9") is None
    assert policy.refusal("registry.internal", 80, "10.0.0.9") is None
    assert policy.refusal("registry.internal", 6379, "10.0.0.9") == "private"
    assert policy.refusal("[fd00::7]", 8443, "fd00::7") is None
    # both sources add up
    both = AddressPolicy.from_environment("10.5.0.0/16", store)
    assert both.refusal("x", 1, "10.5.1.1") is None
    assert both.refusal("127.0.0.1", 5000, "127.0.0.1") is None
    assert AddressPolicy.allow_all().refusal("localhost", 1, "127.0.0.1") is None


# -- numeric IPv4 spellings are not image references -------------------------------------

NUMERIC = ["2130706433:5000", "0177.0.0.1", "0x7f.0.0.1", "0X7F.0.0.1:80", "127.1", "127.0.1:5000"]
NUMERIC += ["127.000.0.1", "0x7f000001:5000", "10.0.0.05", "256.1.1.1", "registry.internal.2"]


@pytest.mark.parametrize("registry", NUMERIC)
def test_numeric_ipv4_spellings_are_invalid_references(registry):
    for parse in (parse_repository, parse_reference):
        with pytest.raises(ImageRefError) as caught:
            parse(f"{registry}/team/app")
        assert f"registry '{registry}'" in str(caught.value)
        assert "a.b.c.d" in str(caught.value)


@pytest.mark.parametrize(
    "registry", ["127.0.0.1:5000", "10.0.0.5", "1e100.net", "[::1]:5000", "[::ffff:a00:5]", "x.io"]
)
def test_plain_spellings_stay_valid(registry):
    assert parse_repository(f"{registry}/team/app").domain == registry


def test_a_numeric_spelling_in_a_config_is_a_problem_at_its_image_line():
    text = (
        "version: 1\nnamespace: ns\nimageRepositories:\n"
        "  - name: sneaky\n    image: 0x7f.0.0.1:5000/team/app\n"
        "  - name: decimal\n    image: 2130706433:5000/team/app\n"
    )
    _config, problems = load_config(text.encode(), path=CONFIG_PATH)
    by_line = {p.line: p for p in problems}
    for line, image in ((5, "0x7f.0.0.1:5000/team/app"), (7, "2130706433:5000/team/app")):
        problem = by_line[line]
        assert problem.path == CONFIG_PATH and problem.is_error
        assert image in problem.message and "is invalid" in problem.message


# -- the registry session, on real loopback sockets --------------------------------------


@pytest.fixture
async def listener():
    """A loopback service that must never be reached: it records every connection."""
    recorder = Listener()
    recorder.port = await recorder.listen("127.0.0.1")
    await recorder.listen("::1", recorder.port)  # [::1] on the same port
    try:
        yield recorder
    finally:
        await recorder.close()


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "0x7f.0.0.1",  # the resolver would read it as 127.0.0.1
        "2130706433",
        "127.1",
        "0.0.0.0",  # connects to this host on Linux
    ],
)
async def test_the_registry_session_refuses_loopback_in_any_spelling(listener, host):
    async with registry_session(AddressPolicy()) as session:
        with pytest.raises(AddressNotAllowed):
            async with session.get(f"http://{host}:{listener.port}/v2/"):
                pass
    assert listener.connections == []
    # The same request without the policy reaches it: the listener is a real target.
    if host in ("127.0.0.1", "localhost"):
        async with (
            registry_session(None) as session,
            session.get(f"http://{host}:{listener.port}/v2/") as response,
        ):
            assert LEAK_TAG in await response.text()
        assert len(listener.connections) == 1


async def test_an_allowed_address_is_connected_and_only_on_its_port(listener):
    other = Listener()
    other_port = await other.listen("127.0.0.1")
    try:
        policy = AddressPolicy(AllowList.parse(f"127.0.0.1:{listener.port}"))
        async with registry_session(policy) as session:
            async with session.get(f"http://127.0.0.1:{listener.port}/v2/") as response:
                assert response.status == 200
            with pytest.raises(AddressNotAllowed):
                async with session.get(f"http://127.0.0.1:{other_port}/v2/"):
                    pass
        assert len(listener.connections) == 1 and other.connections == []
    finally:
        await other.close()


class _Rebinding(AbstractResolver):
    """Answers 127.0.0.1 first and 127.0.0.2 afterwards: a name that rebinds."""

    def __init__(self) -> None:
        self.calls = 0

    async def resolve(self, host, port=0, family=socket.AF_INET) -> list[ResolveResult]:
        self.calls += 1
        address = "127.0.0.1" if self.calls == 1 else "127.0.0.2"
        return [_result(host, address, port)]

    async def close(self) -> None:
        pass


async def test_a_name_is_resolved_once_per_connection_and_the_checked_address_is_used(listener):
    """DNS rebinding: the second answer (127.0.0.2) is checked too, and never connected."""
    second = Listener()
    await second.listen("127.0.0.2", listener.port)
    try:
        resolver = _Rebinding()
        policy = AddressPolicy(AllowList.parse(f"127.0.0.1:{listener.port}"))
        connector = PolicyConnector(
            policy, resolver=resolver, use_dns_cache=False, force_close=True
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"http://rebind.test:{listener.port}/v2/") as response:
                assert response.status == 200
            with pytest.raises(AddressNotAllowed) as caught:
                async with session.get(f"http://rebind.test:{listener.port}/v2/"):
                    pass
        assert caught.value.address == "127.0.0.2"
        assert resolver.calls == 2  # one lookup per connection, no second lookup to connect
        assert [local for _, local in listener.connections] == [f"127.0.0.1:{listener.port}"]
        assert second.connections == []
    finally:
        await second.close()


async def test_redirect_hops_and_token_realms_are_checked_each_time(listener):
    """An allowed registry that redirects (directly or after an allowed hop) or names a
    token realm on a refused address: refused, named, and the target never connected."""
    hostile = f"127.0.0.1:{listener.port}"
    routes = {
        "team/direct": redirect(f"http://{hostile}/v2/team/app/tags/list"),
        "team/by-name": redirect(f"http://localhost:{listener.port}/v2/team/app/tags/list"),
        "team/mapped": redirect(f"http://[::ffff:7f00:1]:{listener.port}/v2/x/tags/list"),
        "team/hex": redirect(f"http://0x7f.0.0.1:{listener.port}/v2/x/tags/list"),
        "team/decimal": redirect(f"http://2130706433:{listener.port}/v2/x/tags/list"),
        "team/realm": realm(f"http://{hostile}/token"),
        "team/realm-v6": realm(f"http://[::1]:{listener.port}/token"),
    }
    edge = await Edge(routes).start()
    routes["team/two-hops"] = redirect(f"http://{edge.host}/v2/team/direct/tags/list")
    try:
        policy = AddressPolicy(AllowList.parse(edge.host))
        async with registry_session(policy) as session:
            scanner = RegistryScanner(session, CredentialStore(), timeout=10)
            messages = {}
            for name in routes:
                image = f"{edge.host}/{name}"
                with pytest.raises(RegistryError) as caught:
                    await scanner.scan(image_repository_config(image))
                messages[name] = str(caught.value)
        for name, message in messages.items():
            assert message.startswith(f"{edge.host}/{name}: not contacting "), message
            assert "address is not allowed" in message
            assert ALLOWED_ADDRESSES_VARIABLE in message
            assert LEAK_TAG not in message
        assert "the token realm 127.0.0.1:" in messages["team/realm"]
        assert "the token realm [::1]:" in messages["team/realm-v6"]
        assert f"redirect to 127.0.0.1:{listener.port}" in messages["team/direct"]
        assert (
            f"redirect to localhost:{listener.port}: its address is not allowed: it resolves to a loopback address"
            in messages["team/by-name"]
        )
        assert "IPv4 address in a decimal, octal, hex or shortened spelling" in messages["team/hex"]
        assert (
            "IPv4 address in a decimal, octal, hex or shortened spelling"
            in messages["team/decimal"]
        )
        assert listener.connections == []
        # The edge itself was asked once per image (twice for the two hops).
        assert len(edge.requests) == len(routes) + 1
    finally:
        await edge.close()


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
