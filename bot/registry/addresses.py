"""The address policy for everything a repository's config makes `serve` contact (issue 8 §2).

A repository names registry hosts; the server then connects to them, to where
they redirect and to the token realms they name. None of that may reach the
server's own neighbourhood: an address in a loopback, private, link-local,
CGNAT, unspecified, multicast or otherwise non-global range is refused, unless
the operator allows it (``REGISTRY_ALLOWED_ADDRESSES``, or a registry named in
``REGISTRY_CREDENTIALS``).

The check sits where the address is chosen: `PolicyConnector` (the connector
of the registry session only) checks every address a host resolves to before
aiohttp connects to exactly those addresses, so a name cannot resolve once for
the check and again for the connection (DNS rebinding). Its resolver checks
names; aiohttp does not call a resolver for IP literals, so the connector also
checks the results of its ``_resolve_host``, which every connection, literal or
name, cached or not, goes through (aiohttp 3.9-3.14). Redirect hops and token
realms are requests on the same session, so each is checked again.

`python -m bot plan` runs without a policy: the person running it picked the
registries, and ``localhost:5000`` must work there.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from bot.imageref import host_spelling_problem
from bot.registry.credentials import CredentialStore, normalize_registry
from bot.registry.errors import RegistryError

log = logging.getLogger(__name__)

ALLOWED_ADDRESSES_VARIABLE = "REGISTRY_ALLOWED_ADDRESSES"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

#: Refused IPv4 ranges, most specific first; the name goes into messages.
_BLOCKED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),  # "this network": 0.0.0.0 reaches this host
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),  # cloud metadata lives here
    (_V4("10.0.0.0/8"), "private"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("100.64.0.0/10"), "CGNAT"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("255.255.255.255/32"), "broadcast"),
    (_V4("240.0.0.0/4"), "reserved"),
    (_V4("192.0.0.0/24"), "reserved"),  # IETF protocol assignments
    (_V4("192.0.2.0/24"), "reserved"),  # documentation (TEST-NET-1..3)
    (_V4("198.51.100.0/24"), "reserved"),
    (_V4("203.0.113.0/24"), "reserved"),
    (_V4("198.18.0.0/15"), "reserved"),  # benchmarking
    (_V4("192.88.99.0/24"), "reserved"),  # 6to4 relay anycast, deprecated
)

_MAPPED = _V6("::ffff:0:0/96")  # ::ffff:a.b.c.d: a dual-stack socket connects to a.b.c.d
_COMPATIBLE = _V6("::/96")  # ::a.b.c.d, deprecated (RFC 4291)
_TRANSLATED = _V6("::ffff:0:0:0/96")  # SIIT, RFC 2765
_NAT64 = _V6("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are the IPv4 target
_SIX_TO_FOUR = _V6("2002::/16")  # 6to4: bits 16-48 are the IPv4 relay target

#: Refused IPv6 ranges (after the embeddings above are unwrapped).
_BLOCKED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("fc00::/7"), "private"),
    (_V6("ff00::/8"), "multicast"),
    (_V6("64:ff9b:1::/48"), "private"),  # local-use NAT64 (RFC 8215): the operator's own network
    (_V6("2001::/32"), "reserved"),  # Teredo: a tunnel whose client part points anywhere
    (_V6("100::/64"), "reserved"),  # discard-only
    (_V6("2001:db8::/32"), "reserved"),  # documentation
)


def classify(address: str | IPAddress) -> str | None:
    """Why the server must not connect to ``address`` (e.g. ``"link-local"``), or None.

    IPv4 embedded in IPv6 (mapped, compatible, translated, NAT64, 6to4) is judged by
    the IPv4 address it leads to; Teredo and the IPv4-compatible form are refused
    whatever they embed. Anything else that is not globally routable is ``reserved``.
    """
    try:
        ip = address if not isinstance(address, str) else ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv4Address):
        return _classify_v4(ip)
    for network, kind in _BLOCKED_V6[:2]:  # :: and ::1 sit inside ::/96
        if ip in network:
            return kind
    for prefix, label in (
        (_MAPPED, "IPv4-mapped"),
        (_TRANSLATED, "IPv4-translated"),
        (_NAT64, "NAT64"),
        (_COMPATIBLE, "IPv4-compatible"),
    ):
        if ip in prefix:
            embedded = _classify_v4(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            if embedded is not None:
                return f"{label} {embedded}"
            return "reserved" if prefix is _COMPATIBLE else None
    if ip in _SIX_TO_FOUR:
        assert ip.sixtofour is not None
        embedded = _classify_v4(ip.sixtofour)
        return f"6to4 {embedded}" if embedded is not None else None
    for network, kind in _BLOCKED_V6:
        if ip in network:
            return kind
    return None if ip.is_global else "reserved"


def _classify_v4(ip: ipaddress.IPv4Address) -> str | None:
    for network, kind in _BLOCKED_V4:
        if ip in network:
            return kind
    return None if ip.is_global else "reserved"


class AllowListError(RegistryError):
    """A bad ``REGISTRY_ALLOWED_ADDRESSES`` entry; the message names the variable."""


_HOST_NAME_RE = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*\.?"
)


def _normalize_host(host: str) -> str:
    return host.strip("[]").lower().rstrip(".")


@dataclass(frozen=True)
class AllowList:
    """What the operator allows: host names (any port or one), addresses and networks."""

    hosts: frozenset[str] = frozenset()  # host names, any port
    host_ports: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[IPNetwork, ...] = ()  # CIDRs and single addresses, any port
    address_ports: frozenset[tuple[IPAddress, int]] = frozenset()

    @classmethod
    def parse(cls, text: str | None, *, source: str = ALLOWED_ADDRESSES_VARIABLE) -> AllowList:
        """Comma-separated ``host``, ``host:port``, ``[v6]:port``, IP or CIDR entries.

        Raises `AllowListError` naming ``source`` and the entry.
        """
        allow = _Builder()
        for raw in (text or "").split(","):
            entry = raw.strip()
            if entry:
                try:
                    allow.add(entry)
                except ValueError as exc:
                    raise AllowListError(
                        f"{source}: entry {entry!r} is not a host, host:port or CIDR ({exc}); "
                        "write comma-separated entries such as "
                        "registry.internal,registry.internal:5000,10.1.0.0/16,[fd00::5]:443"
                    ) from None
        return allow.build()

    def __bool__(self) -> bool:
        return bool(self.hosts or self.host_ports or self.networks or self.address_ports)

    def __or__(self, other: AllowList) -> AllowList:
        return AllowList(
            self.hosts | other.hosts,
            self.host_ports | other.host_ports,
            self.networks + other.networks,
            self.address_ports | other.address_ports,
        )

    def allows(self, host: str, port: int, address: IPAddress) -> bool:
        """Whether connecting to ``address``:``port`` for ``host`` (as the URL names it) is allowed."""
        name = _normalize_host(host)
        if name in self.hosts or (name, port) in self.host_ports:
            return True
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            if address.scope_id:
                candidates.append(ipaddress.IPv6Address(str(address).split("%", 1)[0]))
            if address.ipv4_mapped is not None:  # the same IPv4 destination
                candidates.append(address.ipv4_mapped)
        return any(
            (ip, port) in self.address_ports or any(ip in net for net in self.networks)
            for ip in candidates
        )


@dataclass
class _Builder:
    hosts: set[str] = field(default_factory=set)
    host_ports: set[tuple[str, int]] = field(default_factory=set)
    networks: list[IPNetwork] = field(default_factory=list)
    address_ports: set[tuple[IPAddress, int]] = field(default_factory=set)

    def add(self, entry: str, *, default_ports: Iterable[int] = ()) -> None:
        if "://" in entry:
            raise ValueError("write the host without a scheme")
        if "/" in entry:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=True))
            except ValueError as exc:
                raise ValueError(str(exc)) from None
            return
        host, port = _split_host_port(entry)
        ports = [port] if port is not None else list(default_ports)
        if ":" in host or entry.startswith("["):
            try:
                ip: IPAddress = ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(f"{host!r} is not an IPv6 address") from None
        else:
            problem = host_spelling_problem(host)
            if problem is not None:
                raise ValueError(problem)
            try:
                ip = ipaddress.IPv4Address(host)
            except ValueError:
                if not _HOST_NAME_RE.fullmatch(host.lower()):
                    raise ValueError("not a valid host name") from None
                name = _normalize_host(host)
                if ports:
                    self.host_ports.update((name, p) for p in ports)
                else:
                    self.hosts.add(name)
                return
        if ports:
            self.address_ports.update((ip, p) for p in ports)
        else:
            self.networks.append(ipaddress.ip_network(ip))

    def build(self) -> AllowList:
        return AllowList(
            frozenset(self.hosts),
            frozenset(self.host_ports),
            tuple(self.networks),
            frozenset(self.address_ports),
        )


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address."""
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            raise ValueError("unclosed '['")
        host, rest = entry[1:end], entry[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("expected ':port' after ']'")
        return host, _port(rest[1:]) if rest else None
    if entry.count(":") > 1:
        return entry, None  # a bare IPv6 address: write [v6]:port for a port
    host, colon, port = entry.partition(":")
    if not host:
        raise ValueError("no host")
    return host, _port(port) if colon else None


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def credential_registries(credentials: CredentialStore) -> AllowList:
    """The registries and token realms named in REGISTRY_CREDENTIALS, as allowances.

    ``registry: host:port`` allows that port; ``registry: host`` allows the ports an
    image on it is reached on (443, and 80 for ``insecure``), not every port of the host.
    Entries with no secret count too: naming a registry there is the operator's choice,
    and so is a token server listed in an entry's ``realms:``.
    """
    allow = _Builder()
    for credential in credentials.entries():
        for host in (normalize_registry(credential.registry), *credential.realms):
            try:
                allow.add(host, default_ports=(443, 80))
            except ValueError as exc:
                log.warning(
                    "credentials %r: %r is not a host[:port] (%s)", credential.name, host, exc
                )
    return allow.build()


NUMERIC_SPELLING = "decimal, octal, hex or shortened spelling"


class AddressNotAllowed(aiohttp.ClientConnectionError):
    """The registry session refused to connect: ``host`` resolves to (or is) a refused address.

    Not an `OSError`, so aiohttp passes it through instead of calling it a DNS error.
    ``address`` is for the operator's log; messages to a repository name only the kind.
    """

    def __init__(self, host: str, port: int, address: str, kind: str) -> None:
        self.host = host
        self.port = port
        self.address = address
        self.kind = kind
        super().__init__(self.describe())

    @property
    def literal(self) -> bool:
        try:
            ipaddress.ip_address(self.host.split("%", 1)[0])
        except ValueError:
            return False
        return True

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self, subject: str | None = None) -> str:
        """``10.0.0.5:80 is a private address``, ``evil.test:443 resolves to a link-local address``."""
        if self.kind == NUMERIC_SPELLING:
            return f"{subject or self.where} is an IPv4 address in a {NUMERIC_SPELLING}"
        verb = "is" if self.literal else "resolves to"
        article = "an" if self.kind[0].lower() in "aeiou" else "a"
        return f"{subject or self.where} {verb} {article} {self.kind} address"


class AddressPolicy:
    """Refuses non-global addresses unless allowed; `allow_all` turns it off."""

    def __init__(self, allowed: AllowList | None = None, *, enabled: bool = True) -> None:
        self.allowed = allowed or AllowList()
        self.enabled = enabled

    @classmethod
    def allow_all(cls) -> AddressPolicy:
        return cls(enabled=False)

    @classmethod
    def from_environment(
        cls, allowed_addresses: str | None, credentials: CredentialStore
    ) -> AddressPolicy:
        """``REGISTRY_ALLOWED_ADDRESSES`` plus the registries in REGISTRY_CREDENTIALS.

        Raises `AllowListError` for a bad entry.
        """
        return cls(AllowList.parse(allowed_addresses) | credential_registries(credentials))

    def refusal(self, host: str, port: int, address: str) -> str | None:
        """The kind of range that makes connecting to ``address`` refused, or None."""
        if not self.enabled:
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "unparseable"
        kind = classify(ip)
        if kind is None or self.allowed.allows(host, port, ip):
            return None
        return kind

    def check(self, host: str, results: Iterable[ResolveResult]) -> None:
        """Raise `AddressNotAllowed` if ANY resolved address is refused."""
        for result in results:
            kind = self.refusal(host, result["port"], result["host"])
            if kind is not None:
                raise AddressNotAllowed(host, result["port"], result["host"], kind)


class PolicyResolver(AbstractResolver):
    """A resolver that checks every address of a name before aiohttp may connect to it."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._policy.check(host, results)
        return results

    async def close(self) -> None:
        await self._inner.close()


class PolicyConnector(aiohttp.TCPConnector):
    """A TCP connector that connects only to addresses the policy allows.

    aiohttp connects to exactly what ``_resolve_host`` returns; it skips the resolver
    for IP literals (returning the literal itself), so the results are checked here
    too. The resolver check alone covers names should a later aiohttp rename this.
    """

    def __init__(
        self, policy: AddressPolicy, *, resolver: AbstractResolver | None = None, **kwargs: Any
    ) -> None:
        if not callable(getattr(aiohttp.TCPConnector, "_resolve_host", None)):
            raise RuntimeError(
                f"aiohttp {aiohttp.__version__} has no TCPConnector._resolve_host: the address "
                "policy cannot check IP literals; pin aiohttp or update bot/registry/addresses.py"
            )
        self.policy = policy
        super().__init__(resolver=PolicyResolver(policy, resolver), **kwargs)

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        if self.policy.enabled and host_spelling_problem(host.rstrip(".")) is not None:
            # 2130706433, 0x7f.0.0.1, 127.1: the resolver would read them as IPv4
            # addresses; refuse the spelling itself (e.g. in a redirect's Location).
            raise AddressNotAllowed(host, port, host, NUMERIC_SPELLING)
        results = await super()._resolve_host(host, port, traces=traces)
        self.policy.check(host, results)
        return results

    async def close(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().close(*args, **kwargs)
        finally:
            await self._resolver.close()  # ours, though aiohttp did not create it


def registry_session(policy: AddressPolicy | None, **session_options: Any) -> aiohttp.ClientSession:
    """The session registry requests go through; None: no address policy (a local plan).

    No proxy from the environment (``trust_env``): through a proxy, the policy would
    only ever see the proxy's address.
    """
    if policy is None or not policy.enabled:
        return aiohttp.ClientSession(**session_options)
    if session_options.get("trust_env"):
        raise ValueError("the address policy cannot see through an HTTP proxy (trust_env)")
    return aiohttp.ClientSession(connector=PolicyConnector(policy), **session_options)
