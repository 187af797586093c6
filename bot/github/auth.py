"""GitHub App authentication: the app's credentials, its JWT, installation tokens.

An installation token lives one hour; minting one costs a request and counts
against a per-app hourly limit, so tokens are cached per installation and
replaced a few minutes before they expire (or at once after a 401).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from bot.github.errors import GitHubError

DEFAULT_API_URL = "https://api.github.com"
#: GitHub refuses JWTs that live longer than 10 minutes; stay under it.
JWT_LIFETIME = 540
#: Backdate `iat` for clock drift between us and GitHub.
JWT_BACKDATE = 60
#: Replace a token this long before GitHub says it expires.
TOKEN_REFRESH_MARGIN = 300.0


class CredentialsError(ValueError):
    """The app's credentials are missing or unusable; the message says what to set."""


@dataclass(frozen=True)
class AppCredentials:
    """Who the bot is on GitHub. `private_key` never appears in repr or messages."""

    app_id: str
    private_key: str = field(repr=False)
    base_url: str = DEFAULT_API_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AppCredentials:
        """Read APP_ID, PRIVATE_KEY (PEM or one-line base64) or PRIVATE_KEY_PATH, GITHUB_API_URL."""
        app_id = environ.get("APP_ID", "").strip()
        if not app_id:
            raise CredentialsError("APP_ID is not set: set it to the GitHub App's numeric id")
        key = environ.get("PRIVATE_KEY", "").strip()
        key_path = environ.get("PRIVATE_KEY_PATH", "").strip()
        if key:
            key = _pem_from_env_value(key)
        elif key_path:
            try:
                key = Path(key_path).read_text()
            except OSError as exc:
                raise CredentialsError(
                    f"PRIVATE_KEY_PATH {key_path}: cannot read it ({exc.strerror}); "
                    "point it at the app's .pem file"
                ) from None
            if "PRIVATE KEY-----" not in key:
                raise CredentialsError(
                    f"PRIVATE_KEY_PATH {key_path}: not a PEM private key; "
                    "download the key from the app's settings page"
                )
        else:
            raise CredentialsError(
                "neither PRIVATE_KEY nor PRIVATE_KEY_PATH is set: "
                "give the app's PEM private key (or its path)"
            )
        base_url = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
        return cls(app_id=app_id, private_key=key.strip() + "\n", base_url=base_url.rstrip("/"))


def _pem_from_env_value(value: str) -> str:
    # Probot convention: PRIVATE_KEY holds the PEM itself (newlines sometimes
    # escaped as "\n" by .env tooling) or the PEM base64-encoded on one line.
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n")
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    if "-----BEGIN" not in decoded:
        raise CredentialsError(
            "PRIVATE_KEY is neither a PEM key nor a base64-encoded PEM key; "
            "paste the .pem file's content (or use PRIVATE_KEY_PATH)"
        )
    return decoded


def app_jwt(creds: AppCredentials, *, now: float | None = None) -> str:
    """A JWT that authenticates as the app itself (RS256, valid 9 minutes from `now`)."""
    issued = int(time.time() if now is None else now)
    claims = {"iat": issued - JWT_BACKDATE, "exp": issued + JWT_LIFETIME, "iss": creds.app_id}
    try:
        return jwt.encode(claims, creds.private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError):
        # The library's message may quote key material: say what is wrong instead.
        raise CredentialsError(
            f"the private key of app {creds.app_id} is not a usable RSA PEM key; "
            "download a new one from the app's settings page"
        ) from None


@dataclass(frozen=True)
class InstallationToken:
    token: str = field(repr=False)
    expires_at: float  # epoch seconds


#: Mints a token for an installation: returns GitHub's JSON answer
#: ({"token": ..., "expires_at": "2026-01-01T00:00:00Z", ...}).
Minter = Callable[[int], Awaitable[Mapping[str, Any]]]


class TokenCache:
    """Installation tokens, one per installation, re-minted before they expire.

    `mint` is the network call; by default the app-authenticated
    `POST /app/installations/{id}/access_tokens` made by `bot.github.client.AppClient`.
    """

    def __init__(
        self,
        mint: Minter,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = TOKEN_REFRESH_MARGIN,
    ) -> None:
        self._mint = mint
        self._clock = clock
        self._margin = refresh_margin
        self._tokens: dict[int, InstallationToken] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.minted = 0  # how many tokens were requested from GitHub

    def __repr__(self) -> str:
        return f"TokenCache(installations={sorted(self._tokens)})"

    async def token(self, installation_id: int) -> str:
        """A valid token for the installation; mints one only when needed."""
        current = self._tokens.get(installation_id)
        if current is not None and self._fresh(current):
            return current.token
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:  # concurrent callers share one mint
            current = self._tokens.get(installation_id)
            if current is None or not self._fresh(current):
                current = await self._mint_token(installation_id)
                self._tokens[installation_id] = current
            return current.token

    def invalidate(self, installation_id: int) -> None:
        """Forget the installation's token (after a 401, or when it is uninstalled)."""
        self._tokens.pop(installation_id, None)

    def _fresh(self, token: InstallationToken) -> bool:
        return token.expires_at - self._margin > self._clock()

    async def _mint_token(self, installation_id: int) -> InstallationToken:
        answer = await self._mint(installation_id)
        self.minted += 1
        try:
            token = str(answer["token"])
            expires = datetime.datetime.fromisoformat(str(answer["expires_at"]))
        except (KeyError, TypeError, ValueError):
            raise GitHubError(
                f"GitHub's answer to the token request for installation {installation_id} "
                "has no usable token/expires_at"
            ) from None
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=datetime.UTC)
        return InstallationToken(token=token, expires_at=expires.timestamp())
