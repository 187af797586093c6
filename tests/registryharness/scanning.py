"""What registry tests scan with: a fake clock, image repository configs, scanners."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import aiohttp

from bot.config import ImageRepositoryConfig
from bot.imageref import parse_repository
from bot.registry.client import ClientSettings
from bot.registry.credentials import CredentialStore
from bot.registry.scanner import RegistryScanner


class FakeClock:
    """A monotonic clock the test moves by hand (intervals, token expiry)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def image_repository_config(image: str, **fields: Any) -> ImageRepositoryConfig:
    """An `ImageRepositoryConfig` for ``image`` with the config's defaults; ``fields`` override.

    Fields the config normally derives (``name``, ``ref``) are filled in too.
    """
    values: dict[str, Any] = {"name": "repo", "image": image, "ref": parse_repository(image)}
    values.update(fields)
    return ImageRepositoryConfig(**values)


_LIMIT_NAMES = {f.name for f in dataclasses.fields(ClientSettings)}


def make_scanner(
    session: aiohttp.ClientSession,
    clock: FakeClock,
    credentials: CredentialStore | None = None,
    **options: Any,
) -> RegistryScanner:
    """A scanner with test-sized retry delays and timeout, on the fake clock.

    ``options`` are `RegistryScanner`'s keywords and `ClientSettings`' fields.
    """
    limits = {name: options.pop(name) for name in list(options) if name in _LIMIT_NAMES}
    limits.setdefault("backoff", 0.01)
    limits.setdefault("max_retry_after", 2.0)
    options.setdefault("timeout", 10.0)
    return RegistryScanner(
        session,
        credentials or CredentialStore(),
        clock=clock,
        settings=ClientSettings(**limits),
        **options,
    )


def write_credentials(directory: Path, text: str) -> CredentialStore:
    """A `CredentialStore` loaded from ``text`` written to a credentials file in ``directory``."""
    path = directory / "credentials.yml"
    path.write_text(text)
    return CredentialStore.load(str(path))
