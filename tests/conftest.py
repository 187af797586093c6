"""Shared fixtures: a running GitHub simulator and a GitHub App key pair."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.githubsim import GitHubSim

if TYPE_CHECKING:
    from tests.postgres import PostgresServer


@dataclass
class RunningSim:
    sim: GitHubSim
    url: str  # base URL of the REST API, e.g. http://127.0.0.1:PORT


@pytest.fixture
async def github_sim(tmp_path):
    """A GitHubSim serving on 127.0.0.1 with an ephemeral port; stopped after the test."""
    sim = GitHubSim(tmp_path / "githubsim")
    server = TestServer(sim.make_app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield RunningSim(sim=sim, url=str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()


def generate_app_key(
    private_format: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
) -> tuple[str, str]:
    """A fresh RSA-2048 key pair as PEM text: (private, public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@pytest.fixture(scope="session")
def app_key() -> tuple[int, str, str]:
    """(app_id, private_key_pem, public_key_pem): one RSA-2048 key per test session."""
    return (1, *generate_app_key())


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session, started on first use (see
    tests/postgres.py). Missing binaries fail the test rather than skip it."""
    # Imported here: psycopg costs ~0.1 s that runs using no database should not pay.
    from tests.postgres import PostgresUnavailable, start_server

    try:
        server = start_server()
    except PostgresUnavailable as exc:
        problem = str(exc)
    else:
        problem = None
    if problem is not None:  # failed outside the except block: no chained traceback noise
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT/t_<hex>``: a fresh empty database, dropped after."""
    from tests.postgres import fresh_database

    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty database on each backend the store supports: a SQLite file, and a
    database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("postgres_url")
