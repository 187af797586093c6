"""The registries the registry tests share, started with the images they expect.

Each ``start_*`` is a context manager that starts one real ``docker-registry``
(plus a shim or a token server where needed), pushes its images and stops it all
on exit; ``tests/registry/conftest.py`` wraps each in a session fixture.

- `start_plain_registry`: anonymous http, with the pagination/fault shim in front
- `start_basic_registry`: htpasswd (bcrypt) basic auth
- `start_token_registry`: Bearer token auth through `token_server.TokenServer`
- `start_tls_registry`: https with a certificate from a test CA

`require_binary` FAILS the test (it does not skip) when the binary is missing.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.registryharness import registry_proc
from tests.registryharness.certs import TlsFiles, make_tls, make_token_signer
from tests.registryharness.push import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, Pusher, write_tags
from tests.registryharness.registry_proc import (
    RunningRegistry,
    start_basic_auth_registry,
    start_registry,
    temp_root,
)
from tests.registryharness.shim import Shim
from tests.registryharness.token_server import SERVICE, TokenServer

ALICE = ("alice", "s3cret-Pa55word")
TENK_TAGS = [f"1.{i // 100}.{i % 100}" for i in range(10_000)]
SEMVER_TAGS = ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc1", "2.0.0", "latest", "sha256-abc.sig"]


def require_binary() -> None:
    """Fail (not skip) the calling test when ``docker-registry`` is not installed."""
    binary = registry_proc.REGISTRY_BINARY
    if not os.access(binary, os.X_OK):
        pytest.fail(
            f"{binary} is missing: install the Debian package docker-registry "
            "(apt-get install docker-registry)",
            pytrace=False,
        )


@dataclass
class Registry:
    """A running registry and what was pushed into it."""

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


@contextmanager
def start_plain_registry() -> Iterator[Registry]:
    require_binary()
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


@contextmanager
def start_basic_registry() -> Iterator[Registry]:
    require_binary()
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


@contextmanager
def start_token_registry() -> Iterator[Registry]:
    require_binary()
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


@contextmanager
def start_tls_registry() -> Iterator[Registry]:
    require_binary()
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
