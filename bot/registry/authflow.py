"""The auth flow around each request: cached authorization, and on 401 one login and retry.

A 401's challenges say how to log in: a Bearer token from the realm it names
(anonymous, or with the target's credential), or Basic with the credential.
The parsing and the token cache are in `auth`; this module does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from yarl import URL

from bot.imageref import is_loopback
from bot.registry.auth import (
    AuthKey,
    Challenge,
    Token,
    TokenCache,
    basic_authorization,
    parse_challenges,
    parse_token_response,
    repository_scope,
)
from bot.registry.errors import RegistryError
from bot.registry.transport import Reply, Request, Target, Transport, status_error

_MAX_TOKEN_BYTES = 1 << 20


class AuthFlow:
    """Sends requests through `transport`, authenticated as each target's credential."""

    def __init__(
        self, transport: Transport, tokens: TokenCache, clock: Callable[[], float]
    ) -> None:
        self._transport = transport
        self._tokens = tokens
        self._clock = clock

    async def request(self, target: Target, request: Request) -> Reply:
        """One authenticated request: cached auth, then one re-auth on 401."""
        scope = repository_scope(target.path)
        key: AuthKey = (target.host, scope, target.identity)
        authorization = self._tokens.get(key, self._clock())
        for attempt in range(2):
            sent = request
            if authorization:
                sent = replace(request, headers={**request.headers, "Authorization": authorization})
            reply = await self._transport.send(target, sent)
            if reply.status != 401:
                return reply
            challenges = parse_challenges(reply.headers.getall("WWW-Authenticate", []))
            self._tokens.invalidate(key)
            if attempt == 1:
                raise _denied(target, challenges)
            token = await self._authenticate(target, challenges, scope)
            self._tokens.put(key, token)
            authorization = token.authorization
        raise AssertionError("unreachable")

    async def _authenticate(self, target: Target, challenges: list[Challenge], scope: str) -> Token:
        credential = target.credential
        by_scheme = {c.scheme: c for c in reversed(challenges)}
        bearer, basic = by_scheme.get("bearer"), by_scheme.get("basic")
        if bearer is not None and bearer.params.get("realm"):
            return await self._fetch_token(target, bearer, scope)
        if basic is not None:
            if credential is None or not credential.has_secret:
                raise target.error(
                    "the registry requires a login (HTTP 401, Basic); set `credentials:` on "
                    "the image repository",
                )
            authorization = basic_authorization(credential.username, credential.password)
            return Token(authorization, float("inf"))
        schemes = ", ".join(sorted(by_scheme)) or "none"
        raise target.error(
            f"the registry answered 401 with no usable challenge (schemes: {schemes}); "
            "it is not a supported OCI registry",
        )

    async def _fetch_token(self, target: Target, challenge: Challenge, scope: str) -> Token:
        realm = URL(challenge.params["realm"])
        if not realm.is_absolute() or realm.scheme not in ("http", "https"):
            raise target.error(f"the registry sent an invalid token realm {realm}")
        query = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        headers = {"Accept": "application/json"}
        credential = target.credential
        if credential is not None and credential.has_secret:
            # Never send a password in clear text unless the registry itself is plain http
            # (the operator's explicit choice) or the realm is on this machine.
            if realm.scheme != "https" and target.scheme != "http" and not is_loopback(realm.host):
                raise target.error(
                    f"refusing to send credentials to the plain-http token realm {realm.host}",
                )
            headers["Authorization"] = basic_authorization(credential.username, credential.password)
        reply = await self._transport.send(
            target,
            Request(
                "GET",
                realm.with_query(query),
                kind="token",
                max_bytes=_MAX_TOKEN_BYTES,
                headers=headers,
            ),
        )
        if reply.status in (401, 403):
            if credential is not None and credential.has_secret:
                what = (
                    f"rejected credentials {credential.name!r} (HTTP {reply.status}); check "
                    "their username and password"
                )
            else:
                what = (
                    f"refused an anonymous token (HTTP {reply.status}); the image may be "
                    "private: set `credentials:` on the image repository"
                )
            raise target.error(f"the token server {realm.host} {what}")
        if reply.status != 200:
            raise status_error(target, reply, f"getting a token from {realm.host}")
        try:
            return parse_token_response(reply.body, self._clock())
        except ValueError as exc:
            raise target.error(f"{exc} ({realm.host})") from None


def _denied(target: Target, challenges: list[Challenge]) -> RegistryError:
    reasons = sorted({c.params["error"] for c in challenges if c.params.get("error")})
    reason = f", {', '.join(reasons)}" if reasons else ""
    credential = target.credential
    if credential is not None and credential.has_secret:
        hint = f"check that credentials {credential.name!r} may pull this image"
    else:
        hint = "the image may be private: set `credentials:` on the image repository"
    return target.error(f"access denied (HTTP 401{reason}); {hint}")
