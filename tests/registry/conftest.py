"""Fixtures for the registry tests; the harness itself lives in `tests.registryharness`.

Session-scoped real ``docker-registry`` processes (see `registryharness.registries`):
``plain_registry`` (anonymous http behind the shim), ``basic_registry``,
``token_registry`` and ``tls_registry``. The tests FAIL (not skip) when
``/usr/bin/docker-registry`` is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.registry.credentials import CredentialStore
from bot.registry.scanner import RegistryScanner
from tests.registryharness import registries, scanning
from tests.registryharness.registries import Registry
from tests.registryharness.scanning import FakeClock


@pytest.fixture(scope="session")
def plain_registry() -> Iterator[Registry]:
    with registries.start_plain_registry() as registry:
        yield registry


@pytest.fixture(scope="session")
def basic_registry() -> Iterator[Registry]:
    with registries.start_basic_registry() as registry:
        yield registry


@pytest.fixture(scope="session")
def token_registry() -> Iterator[Registry]:
    with registries.start_token_registry() as registry:
        yield registry


@pytest.fixture(scope="session")
def tls_registry() -> Iterator[Registry]:
    with registries.start_tls_registry() as registry:
        yield registry


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def write_credentials(tmp_path: Path) -> Callable[[str], CredentialStore]:
    """Load a `CredentialStore` from YAML text (written to a file in ``tmp_path``)."""
    return lambda text: scanning.write_credentials(tmp_path, text)


@pytest.fixture
def make_scanner(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> Callable[..., RegistryScanner]:
    """``make_scanner(credentials=None, **options)``: a test-sized scanner on the fake clock."""

    def make(credentials: CredentialStore | None = None, **options: Any) -> RegistryScanner:
        return scanning.make_scanner(http_session, clock, credentials, **options)

    return make
