"""The auth flow around each request: cached authorization, and on 401 one login and retry.

A 401's challenges say how to log in: a Bearer token from the realm it names
(anonymous, or with the target's credential), or Basic with the credential.
The parsing and the token cache are in `auth`; this module does the I/O.

A credential's secret goes to a token realm only when the realm is one its
entry trusts (`Credential.realm_refusal`: https, the registry's own origin or a
listed host) AND the 401 naming it came from the registry's own origin (not
from wherever a redirect led). Otherwise the scan fails with a clear error and
nothing at all is sent to that realm; anonymous token requests go anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from yarl import URL

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

log = logging.getLogger(__name__)

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
            token = await self._authenticate(target, challenges, scope, reply.url)
            self._tokens.put(key, token)
            authorization = token.authorization
        raise AssertionError("unreachable")

    async def _authenticate(
        self, target: Target, challenges: list[Challenge], scope: str, challenger: URL
    ) -> Token:
        """A token for the 401 with ``challenges`` that ``challenger`` (its final URL) sent."""
        credential = target.credential
        by_scheme = {c.scheme: c for c in reversed(challenges)}
        bearer, basic = by_scheme.get("bearer"), by_scheme.get("basic")
        if bearer is not None and bearer.params.get("realm"):
            return await self._fetch_token(target, bearer, scope, challenger)
        if basic is not None:
            if credential is None or not credential.has_secret:
                raise target.error(
                    "the registry requires a login (HTTP 401, Basic); set `credentials:` on "
                    "the image repository",
                )
            username, password, until = await credential.secret()
            return Token(basic_authorization(username, password), until)
        schemes = ", ".join(sorted(by_scheme)) or "none"
        raise target.error(
            f"the registry answered 401 with no usable challenge (schemes: {schemes}); "
            "it is not a supported OCI registry",
        )

    async def _fetch_token(
        self, target: Target, challenge: Challenge, scope: str, challenger: URL
    ) -> Token:
        realm = URL(challenge.params["realm"])
        if (
            not realm.is_absolute()
            or realm.scheme not in ("http", "https")
            or not realm.host
            or realm.user is not None
        ):
            raise target.error(f"the registry sent an invalid token realm {str(realm)[:200]}")
        query = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        headers = {"Accept": "application/json"}
        credential = target.credential
        if credential is not None and credential.has_secret:
            refusal = _realm_refusal(target, realm, challenger)
            if refusal is not None:
                log.warning(
                    "%s: not sending credentials %r to the token realm %s: %s",
                    target.image,
                    credential.name,
                    _describe(realm),
                    refusal,
                )
                raise target.error(
                    f"refusing to send credentials {credential.name!r} to the token server "
                    f"{_describe(realm)}: {refusal}; nothing was sent to it"
                )
            username, password, _until = await credential.secret()
            headers["Authorization"] = basic_authorization(username, password)
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


def _realm_refusal(target: Target, realm: URL, challenger: URL) -> str | None:
    """Why ``target``'s secret may not go to ``realm``, named by a 401 from ``challenger``."""
    registry = target.base
    if _origin(challenger) != _origin(registry):
        return (
            f"the login challenge naming it came from {_describe(challenger)} after a "
            "redirect, not from the registry itself"
        )
    assert target.credential is not None
    return target.credential.realm_refusal(realm, registry=registry)


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


def _describe(url: URL) -> str:
    """``scheme://host[:port]`` of ``url``: where, never a path or query (they may carry junk)."""
    host = url.host or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{url.explicit_port}" if url.explicit_port is not None else ""
    return f"{url.scheme}://{host}{port}"


def _denied(target: Target, challenges: list[Challenge]) -> RegistryError:
    reasons = sorted({c.params["error"] for c in challenges if c.params.get("error")})
    reason = f", {', '.join(reasons)}" if reasons else ""
    credential = target.credential
    if credential is not None and credential.has_secret:
        hint = f"check that credentials {credential.name!r} may pull this image"
    else:
        hint = "the image may be private: set `credentials:` on the image repository"
    return target.error(f"access denied (HTTP 401{reason}); {hint}")
