"""REGISTRY_CREDENTIALS: operator-kept registry credentials (design §7).

The file maps a name (what an image repository writes in ``credentials:``) to
the registry the credentials belong to, the secret, an optional extra CA and the
GitHub repositories allowed to use them. Credentials are only ever sent to the
registry they name (and the token realm it points to).

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
import os
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.imageref import DOCKER_HUB_API_HOST, DOCKER_HUB_DOMAIN, DOCKER_HUB_LEGACY_DOMAIN
from bot.registry.errors import CredentialsError

_KEYS = {"registry", "username", "password", "passwordEnv", "caFile", "allowed"}

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

    @property
    def has_secret(self) -> bool:
        return bool(self.username or self.password)

    @property
    def identity(self) -> str:
        """Cache key part: equal for the same account, changes when the secret rotates.

        A one-way fingerprint: safe to keep in memory keys, never the secret itself.
        """
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


class CredentialStore:
    """The loaded credentials file; `resolve` hands out an entry only where allowed."""

    def __init__(self, credentials: dict[str, Credential] | None = None, *, source: str = ""):
        self._credentials = dict(credentials or {})
        self._source = source or "REGISTRY_CREDENTIALS"

    def __len__(self) -> int:
        return len(self._credentials)

    def __contains__(self, name: object) -> bool:
        return name in self._credentials

    def __repr__(self) -> str:
        return f"CredentialStore({sorted(self._credentials)!r})"

    @classmethod
    def load(cls, path: str | None) -> CredentialStore:
        """Read the YAML file at ``path``; ``None`` or ``""`` gives an empty store.

        Raises `CredentialsError` naming ``file:line:col`` and the fix.
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
            credentials[name] = _parse_entry(path, doc, name, entry)
        return cls(credentials, source=path)

    def resolve(self, name: str, *, github_repository: str | None, registry: str) -> Credential:
        """The entry ``name`` for ``registry``, if ``github_repository`` may use it.

        ``github_repository`` is the GitHub ``owner/name`` asking, ``None`` for a local plan.
        """
        credential = self._credentials.get(name)
        if credential is None:
            raise CredentialsError(
                f"credentials {name!r} are not defined in {self._source}; ask the operator "
                "to add them, or fix `credentials:` in the image repository"
            )
        if not credential.allows(github_repository):
            who = f"repository {github_repository}" if github_repository else "a local run"
            raise CredentialsError(
                f"credentials {name!r} are not allowed for {who}; the operator must add it "
                f"to their `allowed` list in {self._source}"
            )
        if normalize_registry(credential.registry) != normalize_registry(registry):
            raise CredentialsError(
                f"credentials {name!r} are for registry {credential.registry}, not {registry}; "
                "they are only ever sent to their own registry: use credentials for "
                f"{registry}"
            )
        return credential


def _where(path: str, node: Any, name: Any, key: bool = False) -> str:
    """``file:line:col`` of ``node[name]`` (its key, or its value)."""
    try:
        line, col = node.lc.key(name) if key else node.lc.value(name)
        return f"{path}:{line + 1}:{col + 1}"
    except (AttributeError, KeyError, TypeError):
        line = getattr(getattr(node, "lc", None), "line", None)
        return f"{path}:{line + 1}" if line is not None else path


def _parse_entry(path: str, doc: Any, name: str, entry: Any) -> Credential:
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
    )
