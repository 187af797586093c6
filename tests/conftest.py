"""Shared fixtures: a running GitHub simulator and a GitHub App key pair."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.githubsim import GitHubSim


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
