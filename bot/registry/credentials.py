"""REGISTRY_CREDENTIALS: operator-kept registry credentials (design §7).

The file maps a name (what an image repository writes in ``credentials:``) to
the registry the credentials belong to, the secret, an optional extra CA and the
GitHub repositories allowed to use them, and the token servers (``realms``)
besides the registry itself that may receive them.

Where the secret goes (`Credential.realm_refusal`): to the entry's registry
(scheme, host and port) and to a token realm only when the realm is https (or
loopback http for a loopback http registry), on the registry's own origin or on
a host the entry lists in ``realms`` (or `WELL_KNOWN_REALMS` lists for that
registry). `authflow` adds the third rule: the 401 naming the realm must come
from the registry's own origin, not from where a redirect led.

Who may use an entry (``allowed``, case-insensitive ``owner/name`` globs):

- a GitHub repository: only if one of the globs matches it; an empty or
  missing list allows no GitHub repository at all;
- a local ``plan`` (``github_repository=None``): only if the list is empty/missing
  or contains ``"*"``, so entries reserved for some repositories are not used
  by a local run either.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from yarl import URL

from bot.imageref import (
    DOCKER_HUB_API_HOST,
    DOCKER_HUB_DOMAIN,
    DOCKER_HUB_LEGACY_DOMAIN,
    default_scheme,
    is_loopback,
)
from bot.registry.cloud import GCP_REFRESH_MARGIN, AcrLogin, EcrLogin, GcpLogin, LoginCache
from bot.registry.errors import CredentialsError

log = logging.getLogger(__name__)

_KEYS = {
    "registry",
    "username",
    "password",
    "passwordEnv",
    "caFile",
    "allowed",
    "realms",
    "ecr",
    "gcp",
    "acr",
}

#: A realm entry: ``host`` or ``host:port`` (a DNS name, IPv4, or ``[IPv6]``), nothing else.
_REALM_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
)

#: In `WELL_KNOWN_REALMS`: the realm is on the registry's own host and port.
SAME_HOST = "<registry host>"

#: Token realm hosts that well-known registries send, by registry (a glob on the
#: entry's normalized ``registry``), so their credentials work without ``realms:``.
#: A listed host still needs https on port 443. What each registry sends in its 401
#: (checked against the registries' own documentation and published captures of
#: their replies, e.g. Azure's "Token-BasicAuth" page, and ``curl -I`` transcripts
#: in public issue threads for Docker Hub, GHCR, Quay, GCR, Artifact Registry and
#: GitLab; ECR from memory of its replies: Basic, so no realm request at all):
#:
#: - Docker Hub: ``Bearer realm="https://auth.docker.io/token",service="registry.docker.io"``
#: - GHCR: ``Bearer realm="https://ghcr.io/token",service="ghcr.io"``
#: - Quay: ``Bearer realm="https://quay.io/v2/auth",service="quay.io"``
#: - ECR: ``Basic realm="https://<acct>.dkr.ecr.<region>.amazonaws.com/",service="ecr.amazonaws.com"``
#:   (Basic: the password only ever goes to the registry itself)
#: - GCR: ``Bearer realm="https://gcr.io/v2/token",service="gcr.io"`` (regional hosts alike)
#: - Artifact Registry: ``Bearer realm="https://<region>-docker.pkg.dev/v2/token",...``
#: - ACR: ``Bearer realm="https://<name>.azurecr.io/oauth2/token",service="<name>.azurecr.io"``
#: - GitLab.com: ``Bearer realm="https://gitlab.com/jwt/auth",service="container_registry"``
#:
#: Only Docker Hub and GitLab.com name another host; the same-host entries are
#: there to document that nothing more is needed (same origin is always allowed).
WELL_KNOWN_REALMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (DOCKER_HUB_DOMAIN, ("auth.docker.io",)),
    ("ghcr.io", (SAME_HOST,)),
    ("quay.io", (SAME_HOST,)),
    ("*.dkr.ecr.*.amazonaws.com", (SAME_HOST,)),
    ("gcr.io", (SAME_HOST,)),
    ("*.gcr.io", (SAME_HOST,)),
    ("*.pkg.dev", (SAME_HOST,)),
    ("*.azurecr.io", (SAME_HOST,)),
    ("registry.gitlab.com", ("gitlab.com",)),
)

#: Refusals logged once each; the set is emptied past this many.
_MAX_LOGGED = 1000

# Every spelling of Docker Hub names the same registry.
_DOCKER_HUB = {
    DOCKER_HUB_DOMAIN,
    DOCKER_HUB_LEGACY_DOMAIN,
    DOCKER_HUB_API_HOST,
    "registry.hub.docker.com",
}


def normalize_registry(host: str) -> str:
    """The registry host as compared between credentials and images."""
    host = host.strip().lower()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    host = host.split("/", 1)[0]
    return DOCKER_HUB_DOMAIN if host in _DOCKER_HUB else host


@dataclass(frozen=True)
class Credential:
    """One entry of the credentials file; the password never shows in repr/str."""

    name: str
    registry: str
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str | None = None
    allowed: list[str] = field(default_factory=list)
    realms: list[str] = field(default_factory=list)  # extra token-server host[:port]s
    #: A short-lived login from a cloud (`bot.registry.cloud`) instead of a password.
    cloud: LoginCache | None = field(default=None, compare=False, repr=False)

    @property
    def has_secret(self) -> bool:
        return bool(self.username or self.password or self.cloud)

    async def secret(self) -> tuple[str, str, float]:
        """(username, password, until when a cache may keep it) to log in with now: the
        cloud's current login (until it is due for renewal), or the entry's own."""
        if self.cloud is not None:
            login = await self.cloud.login()
            return login.username, login.password, self.cloud.renew_at(login)
        return self.username, self.password, float("inf")

    def logins(self) -> list[tuple[str, str]]:
        """The (username, password) pairs this entry has handed out, for scrubbing messages."""
        if self.cloud is not None:
            return [(login.username, login.password) for login in self.cloud.issued]
        return [(self.username, self.password)] if self.password else []

    @property
    def identity(self) -> str:
        """Cache key part: equal for the same account, changes when the secret rotates.

        A one-way fingerprint: safe to keep in memory keys, never the secret itself.
        """
        if self.cloud is not None:  # the cloud's logins rotate; the account stays
            return f"{self.name}:cloud:{self.cloud.cloud.description}"
        if not self.has_secret:
            return f"anonymous+ca:{self.ca_file}" if self.ca_file else ""
        digest = hashlib.sha256(
            f"{normalize_registry(self.registry)}\0{self.username}\0{self.password}".encode()
        ).hexdigest()[:16]
        return f"{self.name}:{digest}"

    def allows(self, github_repository: str | None) -> bool:
        """Whether ``github_repository`` (``owner/name``; None: a local plan) may use it."""
        if github_repository is None:
            return not self.allowed or "*" in self.allowed
        asking = github_repository.lower()
        return any(fnmatch.fnmatchcase(asking, glob.lower()) for glob in self.allowed)

    def realm_hosts(self) -> list[str]:
        """The token-server ``host[:port]``s besides the registry: ``realms`` and well-known ones."""
        registry = normalize_registry(self.registry)
        hosts = [h.lower() for h in self.realms]
        for glob, realm_hosts in WELL_KNOWN_REALMS:
            if fnmatch.fnmatchcase(registry, glob):
                hosts.extend(realm_hosts)
        return hosts

    def realm_refusal(self, realm: URL, *, registry: URL) -> str | None:
        """Why the secret may NOT go to the token realm ``realm``; None when it may.

        ``registry`` is where this entry's registry is reached (its scheme, host
        and port, as the scan uses them). The secret may go to the registry's own
        origin, and else only to an https realm (or a loopback http one when the
        registry itself is loopback http) whose host[:port] is listed for it.
        """
        if _origin(realm) == _origin(registry):
            return None
        if realm.scheme != "https" and not (
            realm.scheme == "http"
            and is_loopback(realm.host)
            and registry.scheme == "http"
            and is_loopback(registry.host)
        ):
            return "it is plain http; credentials go to a token server only over https"
        port = realm.port
        for listed in self.realm_hosts():
            if listed == SAME_HOST:
                if (realm.host or "").lower() == (registry.host or "").lower() and (
                    port == registry.port
                ):
                    return None
                continue
            host, listed_port = _split_realm_host(listed)
            wanted = listed_port if listed_port is not None else _default_port(realm.scheme)
            if (realm.host or "").lower() == host and port == wanted:
                return None
        return (
            "its host is not trusted for these credentials; if that token server belongs to "
            f"the registry, ask the operator to add {_host_port(realm)} to `realms:` of "
            "these credentials"
        )

    def may_send_to(self, url: URL, *, registry: URL) -> bool:
        """Whether the secret may be sent to ``url`` (see `realm_refusal`)."""
        return self.realm_refusal(url, registry=registry) is None


def _origin(url: URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


def _default_port(scheme: str) -> int | None:
    return {"https": 443, "http": 80}.get(scheme)


def _host_port(url: URL) -> str:
    host = url.host or ""
    if ":" in host:
        host = f"[{host}]"
    explicit = url.explicit_port
    return f"{host}:{explicit}" if explicit and explicit != _default_port(url.scheme) else host


def _split_realm_host(listed: str) -> tuple[str, int | None]:
    """``host[:port]`` as (lower-case host without brackets, port or None)."""
    match = _REALM_HOST.fullmatch(listed)
    if match is None:
        return listed.lower(), None
    port = match.group("port")
    host = listed[: match.start("port") - 1] if port else listed
    return host.strip("[]").lower(), int(port) if port else None


class CredentialStore:
    """The loaded credentials file; `resolve` hands out an entry only where allowed."""

    def __init__(self, credentials: dict[str, Credential] | None = None, *, source: str = ""):
        self._credentials = dict(credentials or {})
        self._source = source or "REGISTRY_CREDENTIALS"
        self._logged: set[tuple[str, str, str]] = set()

    def __len__(self) -> int:
        return len(self._credentials)

    def __contains__(self, name: object) -> bool:
        return name in self._credentials

    def __repr__(self) -> str:
        return f"CredentialStore({sorted(self._credentials)!r})"

    def entries(self) -> list[Credential]:
        """Every entry, read-only (the address policy allows their registries and realms)."""
        return list(self._credentials.values())

    @classmethod
    def load(cls, path: str | None, *, clock: Callable[[], float] = time.time) -> CredentialStore:
        """Read the YAML file at ``path``; ``None`` or ``""`` gives an empty store.

        `clock` tells cloud logins when theirs expire. Raises `CredentialsError`
        naming ``file:line:col`` and the fix.
        """
        if not path:
            return cls()
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise CredentialsError(
                f"{path}: cannot read the registry credentials file ({exc.strerror}); "
                "check REGISTRY_CREDENTIALS"
            ) from None
        try:
            doc = YAML(typ="rt").load(text)
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise CredentialsError(f"{where}: {problem}; fix the YAML syntax") from None
        if doc is None:
            return cls(source=path)
        if not isinstance(doc, dict):
            raise CredentialsError(
                f"{path}:1:1: expected a mapping of credential names to entries "
                "(name: {registry: ..., username: ..., password: ...})"
            )
        credentials = {}
        for name, entry in doc.items():
            where = _where(path, doc, name, key=True)
            if not isinstance(name, str) or not name:
                raise CredentialsError(f"{where}: a credential name must be a non-empty string")
            credentials[name] = _parse_entry(path, doc, name, entry, clock)
        return cls(credentials, source=path)

    def resolve(self, name: str, *, github_repository: str | None, registry: str) -> Credential:
        """The entry ``name`` for ``registry``, if ``github_repository`` may use it.

        ``github_repository`` is the GitHub ``owner/name`` asking, ``None`` for a local plan.
        For a GitHub repository, an undefined name and a name it may not use give
        the same message, which names only what the repository wrote (no file
        path, no hint whether the name exists); the operator's log says which.
        A local plan (the operator's own run) is told which, and where.
        """
        credential = self._credentials.get(name)
        if credential is None or not credential.allows(github_repository):
            why = "are not defined" if credential is None else "are not allowed for"
            who = f"repository {github_repository}" if github_repository else "a local run"
            self._log_refusal(name, who, why)
            if github_repository is None:
                if credential is None:
                    problem, fix = f"are not defined in {self._source}", "add them there"
                else:
                    problem = f"are not allowed for a local run in {self._source}"
                    fix = 'add "*" to their `allowed` list'
                raise CredentialsError(
                    f"credentials {name!r} {problem}; {fix}, or fix `credentials:` in the "
                    "image repository"
                )
            raise CredentialsError(
                f"credentials {name!r} are not available to repository {github_repository}; "
                "ask the operator of this bot to provide them for this repository, or fix "
                "`credentials:` in the image repository"
            )
        if normalize_registry(credential.registry) != normalize_registry(registry):
            raise CredentialsError(
                f"credentials {name!r} are for registry {credential.registry}, not {registry}; "
                "they are only ever sent to their own registry: use credentials for "
                f"{registry}"
            )
        return credential

    def _log_refusal(self, name: str, who: str, why: str) -> None:
        """Tell the operator (once per name, asker and reason) what was refused, and why."""
        key = (name, who, why)
        if key in self._logged:
            return
        if len(self._logged) >= _MAX_LOGGED:
            self._logged.clear()  # bounded: a repository may write any number of names
        self._logged.add(key)
        reason = (
            f"are not defined in {self._source}"
            if why == "are not defined"
            else f"are not allowed (their `allowed` list in {self._source})"
        )
        log.warning("registry credentials %r asked by %s %s", name[:100], who, reason)


def _where(path: str, node: Any, name: Any, key: bool = False) -> str:
    """``file:line:col`` of ``node[name]`` (its key, or its value)."""
    try:
        line, col = node.lc.key(name) if key else node.lc.value(name)
        return f"{path}:{line + 1}:{col + 1}"
    except (AttributeError, KeyError, TypeError):
        line = getattr(getattr(node, "lc", None), "line", None)
        return f"{path}:{line + 1}" if line is not None else path


def _parse_entry(
    path: str, doc: Any, name: str, entry: Any, clock: Callable[[], float] = time.time
) -> Credential:
    where = _where(path, doc, name)
    if not isinstance(entry, dict):
        raise CredentialsError(
            f"{where}: credentials {name!r} must be a mapping with registry, username and "
            "password (or passwordEnv)"
        )
    for key in entry:
        if key not in _KEYS:
            raise CredentialsError(
                f"{_where(path, entry, key, key=True)}: unknown key {key!r} in credentials "
                f"{name!r}; expected one of {', '.join(sorted(_KEYS))}"
            )

    def text(key: str) -> str | None:
        value = entry.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise CredentialsError(
                f"{_where(path, entry, key)}: {key} of credentials {name!r} must be a "
                "non-empty string"
            )
        return value

    cloud = _parse_cloud(path, entry, name, clock)
    registry = text("registry")
    if registry is None:
        raise CredentialsError(
            f"{where}: credentials {name!r} need `registry:` (the host[:port] they are sent to)"
        )
    username = text("username") or ""
    password = text("password")
    password_env = text("passwordEnv")
    if password is not None and password_env is not None:
        raise CredentialsError(
            f"{_where(path, entry, 'passwordEnv', key=True)}: credentials {name!r} have both "
            "password and passwordEnv; keep one"
        )
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise CredentialsError(
                f"{_where(path, entry, 'passwordEnv')}: environment variable {password_env} "
                f"(passwordEnv of credentials {name!r}) is not set or empty; set it before "
                "starting the bot"
            )
    if cloud is not None and (username or password):
        raise CredentialsError(
            f"{where}: credentials {name!r} have both a cloud login (ecr, gcp or acr) and a username or "
            "password; keep one"
        )
    if bool(username) != bool(password):
        raise CredentialsError(
            f"{where}: credentials {name!r} need both username and a password "
            "(password or passwordEnv), or neither (anonymous with caFile only)"
        )
    ca_file = text("caFile")
    if ca_file is not None and not os.access(ca_file, os.R_OK):
        raise CredentialsError(
            f"{_where(path, entry, 'caFile')}: caFile {ca_file} of credentials {name!r} "
            "does not exist or is not readable"
        )
    allowed_node = entry.get("allowed")
    allowed: list[str] = []
    if allowed_node is not None:
        if not isinstance(allowed_node, list) or not all(
            isinstance(glob, str) and glob for glob in allowed_node
        ):
            raise CredentialsError(
                f"{_where(path, entry, 'allowed')}: allowed of credentials {name!r} must be a "
                'list of owner/name globs, e.g. ["my-org/*"]'
            )
        allowed = [str(glob) for glob in allowed_node]
    return Credential(
        name=name,
        registry=registry,
        username=username,
        password=password or "",
        ca_file=ca_file,
        allowed=allowed,
        realms=_parse_realms(path, entry, name),
        cloud=cloud,
    )


def _parse_cloud(path: str, entry: Any, name: str, clock: Callable[[], float]) -> LoginCache | None:
    """``ecr: {region: eu-west-1, registryId: "123456789012"}``: logins from AWS ECR;
    ``gcp: {}``: access tokens from Google's Application Default Credentials."""
    clouds = [key for key in ("ecr", "gcp", "acr") if key in entry]
    if len(clouds) > 1:
        raise CredentialsError(
            f"{_where(path, entry, clouds[1], key=True)}: credentials {name!r} name two clouds; "
            f"keep one of {' and '.join(clouds)}"
        )
    if "acr" in entry:
        return _parse_acr(path, entry, name, clock)
    if "gcp" in entry:
        if entry["gcp"] not in ({}, None):
            raise CredentialsError(
                f"{_where(path, entry, 'gcp')}: gcp of credentials {name!r} takes no settings "
                "yet: write `gcp: {}` (the identity is Google's Application Default Credentials)"
            )
        return LoginCache(GcpLogin(), clock=clock, margin=GCP_REFRESH_MARGIN)
    node = entry.get("ecr")
    if node is None:
        return None
    where = _where(path, entry, "ecr")
    if not isinstance(node, dict) or set(node) - {"region", "registryId"}:
        raise CredentialsError(
            f"{where}: ecr of credentials {name!r} must be a mapping with region and, "
            'optionally, registryId (e.g. {region: eu-west-1, registryId: "123456789012"})'
        )
    region, registry_id = node.get("region"), node.get("registryId")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z0-9]+){2,3}", region):
        raise CredentialsError(
            f"{where}: ecr.region of credentials {name!r} must be an AWS region like eu-west-1"
        )
    if registry_id is not None and not re.fullmatch(r"[0-9]{12}", str(registry_id)):
        raise CredentialsError(
            f"{where}: ecr.registryId of credentials {name!r} must be the 12-digit AWS account "
            "id, quoted"
        )
    return LoginCache(
        EcrLogin(region=region, registry_id=str(registry_id) if registry_id else None)
    )


def _parse_realms(path: str, entry: Any, name: str) -> list[str]:
    """``realms:``: token-server ``host[:port]``s (no scheme, path or wildcard)."""
    node = entry.get("realms")
    if node is None:
        return []
    example = "e.g. [auth.example.com] or [auth.example.com:8443]"
    if not isinstance(node, list):
        raise CredentialsError(
            f"{_where(path, entry, 'realms')}: realms of credentials {name!r} must be a list "
            f"of token-server hosts, {example}"
        )
    realms = []
    for index, item in enumerate(node):
        ok = isinstance(item, str) and _REALM_HOST.fullmatch(item) is not None
        port = _REALM_HOST.fullmatch(item).group("port") if ok else None
        if not ok or (port is not None and not 0 < int(port) < 65536):
            raise CredentialsError(
                f"{_where_item(path, node, index)}: {item!r} in realms of credentials "
                f"{name!r} is not a host or host:port (no scheme, path or wildcard); {example}"
            )
        realms.append(str(item).lower())
    return realms


def _where_item(path: str, node: Any, index: int) -> str:
    """``file:line:col`` of item ``index`` of a YAML list."""
    try:
        line, col = node.lc.item(index)
        return f"{path}:{line + 1}:{col + 1}"
    except (AttributeError, KeyError, TypeError, IndexError):
        line = getattr(getattr(node, "lc", None), "line", None)
        return f"{path}:{line + 1}" if line is not None else path


def _parse_acr(path: str, entry: Any, name: str, clock: Callable[[], float]) -> LoginCache:
    """``acr: {tenant: <id>}`` (or ``acr: {}``): an Entra ID token exchanged at the registry."""
    node = entry["acr"]
    where = _where(path, entry, "acr")
    if node is None:
        node = {}
    if not isinstance(node, dict) or set(node) - {"tenant"}:
        raise CredentialsError(
            f"{where}: acr of credentials {name!r} must be a mapping with, optionally, the "
            "Entra tenant id (e.g. {tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47})"
        )
    tenant = node.get("tenant")
    if tenant is not None and not (
        isinstance(tenant, str) and re.fullmatch(r"[0-9a-fA-F-]{36}", tenant)
    ):
        raise CredentialsError(f"{where}: acr.tenant of credentials {name!r} must be a tenant id")
    registry = entry.get("registry")
    host = normalize_registry(str(registry)) if registry else ""
    scheme = default_scheme(host, insecure=None)
    return LoginCache(AcrLogin(registry=host, tenant=tenant, scheme=scheme), clock=clock)
