"""Registry auth without I/O: challenge parsing, token responses, the token cache.

The flow itself (request, 401, fetch a token, retry) lives in `authflow`; this
module holds the parts that are pure data handling.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

#: Tokens without ``expires_in``, or with less, live this long (distribution token spec).
MIN_TOKEN_LIFETIME = 60.0
#: Refresh a token this long before it expires, so a request never carries a stale one.
EXPIRY_MARGIN = 5.0

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_TOKEN68 = re.compile(r"[ \t]*[A-Za-z0-9._~+/-]+=*[ \t]*(?=,|$)")
_SEPARATORS = " \t,"


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header; scheme and keys lower-cased."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(headers: list[str] | str) -> list[Challenge]:
    """Every challenge in one or more ``WWW-Authenticate`` values (RFC 9110 §11.6.1).

    One header may hold several, e.g. ``Bearer realm="a",service="b", Basic realm="c"``.
    Malformed parts are skipped rather than failing the whole header.
    """
    values = [headers] if isinstance(headers, str) else headers
    challenges: list[Challenge] = []
    for value in values:
        challenges.extend(_parse_one(value))
    return challenges


def _parse_one(text: str) -> list[Challenge]:
    challenges: list[Challenge] = []
    pos, end = 0, len(text)
    scheme: str | None = None
    params: dict[str, str] = {}
    while pos < end:
        while pos < end and text[pos] in _SEPARATORS:
            pos += 1
        match = _TOKEN.match(text, pos)
        if match is None:
            pos += 1  # junk character: skip it
            continue
        word, pos = match.group(), match.end()
        after = pos
        while after < end and text[after] in " \t":
            after += 1
        if after < end and text[after] == "=" and scheme is not None:
            pos = after + 1
            while pos < end and text[pos] in " \t":
                pos += 1
            quoted = _QUOTED.match(text, pos)
            if quoted:
                value = re.sub(r"\\(.)", r"\1", quoted.group(1))
                pos = quoted.end()
            else:
                token = _TOKEN.match(text, pos)
                value = token.group() if token else ""
                pos = token.end() if token else pos
            params[word.lower()] = value
            continue
        if after < end and text[after] == "=":
            pos = after + 1  # a parameter before any scheme: ignore it
            continue
        if scheme is not None:
            challenges.append(Challenge(scheme, params))
        scheme, params = word.lower(), {}
        # token68 form ("Negotiate abc==") carries no parameters we use: skip it.
        token68 = _TOKEN68.match(text, pos)
        if token68:
            pos = token68.end()
    if scheme is not None:
        challenges.append(Challenge(scheme, params))
    return challenges


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value for HTTP Basic."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Token:
    authorization: str  # "Bearer <token>"
    expires_at: float


def parse_token_response(body: bytes, now: float) -> Token:
    """A token endpoint's JSON answer: ``token`` or ``access_token`` (ACR), ``expires_in``.

    Raises ValueError with a message safe to show (never the token itself).
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the token endpoint returned malformed JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("the token endpoint returned JSON that is not an object")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("the token endpoint returned neither `token` nor `access_token`")
    expires_in = doc.get("expires_in")
    lifetime = (
        float(expires_in)
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        else MIN_TOKEN_LIFETIME
    )
    lifetime = max(lifetime, MIN_TOKEN_LIFETIME)
    return Token(f"Bearer {token}", now + lifetime - EXPIRY_MARGIN)


def repository_scope(path: str) -> str:
    """The pull scope for a repository path, e.g. ``repository:library/nginx:pull``."""
    return f"repository:{path}:pull"


#: (registry host, scope, credential identity) -> authorization
AuthKey = tuple[str, str, str]


class TokenCache:
    """Authorizations by (registry, scope, credential identity), until they expire."""

    def __init__(self) -> None:
        self._entries: dict[AuthKey, Token] = {}

    def get(self, key: AuthKey, now: float) -> str | None:
        token = self._entries.get(key)
        if token is None:
            return None
        if token.expires_at <= now:
            del self._entries[key]
            return None
        return token.authorization

    def put(self, key: AuthKey, token: Token) -> None:
        self._entries[key] = token

    def invalidate(self, key: AuthKey) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
