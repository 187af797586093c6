"""Real ``docker-registry`` processes for the registry tests (session-scoped).

- ``plain_registry``: anonymous http, with the pagination/fault shim in front
- ``basic_registry``: htpasswd (bcrypt) basic auth
- ``token_registry``: Bearer token auth through `token_server.TokenServer`
- ``tls_registry``: https with a certificate from a test CA

The tests FAIL (not skip) when ``/usr/bin/docker-registry`` is missing.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import ImageRepositoryConfig
from bot.imageref import parse_repository
from bot.policy.model import DEFAULT_EXCLUSION_LIST
from bot.registry.credentials import CredentialStore
from bot.registry.scanner import RegistryScanner
from tests.registry.certs import TlsFiles, make_tls, make_token_signer
from tests.registry.push import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, Pusher, write_tags
from tests.registry.registry_proc import (
    REGISTRY_BINARY,
    RunningRegistry,
    start_basic_auth_registry,
    start_registry,
    temp_root,
)
from tests.registry.shim import Shim
from tests.registry.token_server import SERVICE, TokenServer

ALICE = ("alice", "s3cret-Pa55word")
TENK_TAGS = [f"1.{i // 100}.{i % 100}" for i in range(10_000)]
SEMVER_TAGS = ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc1", "2.0.0", "latest", "sha256-abc.sig"]


def _require_binary() -> None:
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.fail(
            f"{REGISTRY_BINARY} is missing: install the Debian package docker-registry "
            "(apt-get install docker-registry)",
            pytrace=False,
        )


@dataclass
class Registry:
    """A running registry and what the fixture pushed into it."""

    process: RunningRegistry
    pusher: Pusher
    digests: dict[str, str] = field(default_factory=dict)
    shim: Shim | None = None
    token_server: TokenServer | None = None
    tls: TlsFiles | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """Where clients go: the shim when there is one."""
        return self.shim.host if self.shim else self.process.host

    def image(self, path: str) -> str:
        return f"{self.host}/{path}"


@pytest.fixture(scope="session")
def plain_registry() -> Iterator[Registry]:
    _require_binary()
    process = start_registry()
    shim = Shim(process.port).start()
    try:
        pusher = Pusher(process.host)
        reg = Registry(process, pusher, shim=shim)
        semver = pusher.image("app/semver", SEMVER_TAGS[:-1], salt="semver")
        reg.digests["app/semver:2.0.0"] = semver
        pusher.image("app/semver", SEMVER_TAGS[-1], salt="sig")
        oci, oci_children = pusher.multi_arch("app/multi", "v1", salt="oci", media_type=OCI_INDEX)
        docker, docker_children = pusher.multi_arch(
            "app/multi", "v2", salt="docker", media_type=DOCKER_LIST
        )
        reg.digests.update(
            {
                "app/multi:v1": oci,
                "app/multi:v2": docker,
                "app/multi:v2/amd64": docker_children["amd64"],
                "app/multi:oci-1.0": pusher.image(
                    "app/multi", "oci-1.0", salt="single-oci", media_type=OCI_MANIFEST
                ),
            }
        )
        paged = pusher.image("app/paged", "p00", salt="paged")
        write_tags(process.storage, "app/paged", paged, [f"p{i:02d}" for i in range(1, 30)])
        tenk = pusher.image("bench/tenk", "latest", salt="tenk")
        write_tags(process.storage, "bench/tenk", tenk, TENK_TAGS)
        reg.digests["bench/tenk:latest"] = tenk
        yield reg
    finally:
        shim.stop()
        process.stop()


@pytest.fixture(scope="session")
def basic_registry() -> Iterator[Registry]:
    _require_binary()
    process, authorization = start_basic_auth_registry(*ALICE)
    try:
        pusher = Pusher(process.host, authorization=authorization)
        reg = Registry(process, pusher)
        reg.digests["secret/app:1.0.0"] = pusher.image(
            "secret/app", ["1.0.0", "1.1.0"], salt="basic"
        )
        yield reg
    finally:
        process.stop()


@pytest.fixture(scope="session")
def token_registry() -> Iterator[Registry]:
    _require_binary()
    root = temp_root("test-registry-token-")
    server = TokenServer(make_token_signer(root / "tok"), {ALICE[0]: ALICE[1]}).start()
    try:
        process = start_registry(auth=server.registry_auth(), root=root)
    except BaseException:
        server.stop()
        raise
    try:
        scopes = ["repository:private/app:pull,push repository:public/app:pull,push"]
        token = server.issue(ALICE[0], SERVICE, scopes)["token"]
        pusher = Pusher(process.host, authorization=f"Bearer {token}")
        reg = Registry(process, pusher, token_server=server)
        reg.digests["private/app:1.0.0"] = pusher.image(
            "private/app", ["1.0.0", "1.1.0"], salt="private"
        )
        reg.digests["public/app:3.0.0"] = pusher.image("public/app", ["3.0.0"], salt="public")
        server.requests.clear()
        yield reg
    finally:
        process.stop()
        server.stop()


@pytest.fixture(scope="session")
def tls_registry() -> Iterator[Registry]:
    _require_binary()
    root = temp_root("test-registry-tls-")
    tls = make_tls(root / "tls")
    other = make_tls(root / "other", ca_name="Some Other CA")
    process = start_registry(tls=(tls.cert_file, tls.key_file), ca_file=tls.ca_file, root=root)
    try:
        pusher = Pusher(process.host, tls_context=ssl.create_default_context(cafile=tls.ca_file))
        reg = Registry(process, pusher, tls=tls)
        reg.extra["other_ca"] = other.ca_file  # removed with the registry's temp dir
        reg.digests["tls/app:1.0.0"] = pusher.image("tls/app", ["1.0.0"], salt="tls")
        yield reg
    finally:
        process.stop()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class FakeClock:
    """A monotonic clock the test moves by hand (intervals, token expiry)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def write_credentials(tmp_path: Path) -> Callable[[str], CredentialStore]:
    def write(text: str) -> CredentialStore:
        path = tmp_path / "credentials.yml"
        path.write_text(text)
        return CredentialStore.load(str(path))

    return write


@pytest.fixture
def make_scanner(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> Callable[..., RegistryScanner]:
    """A scanner with test-sized retry delays and the fake clock."""

    def make(credentials: CredentialStore | None = None, **options: Any) -> RegistryScanner:
        options.setdefault("backoff", 0.01)
        options.setdefault("max_retry_after", 2.0)
        options.setdefault("timeout", 10.0)
        return RegistryScanner(
            http_session, credentials or CredentialStore(), clock=clock, **options
        )

    return make


def repo_config(image: str, **fields: Any) -> ImageRepositoryConfig:
    """An `ImageRepositoryConfig` for ``image`` (interval in seconds)."""
    values: dict[str, Any] = {
        "name": "repo",
        "image": image,
        "ref": parse_repository(image),
        "interval": 300.0,
        "timeout": None,
        "exclusion_list": DEFAULT_EXCLUSION_LIST,
        "insecure": None,
        "credentials": None,
    }
    values.update(fields)
    return ImageRepositoryConfig(**values)
