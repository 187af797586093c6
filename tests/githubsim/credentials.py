"""Who is calling: an App (RS256 JWT) or an installation (access token), checked like GitHub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt
from aiohttp import web

from .protocol import ApiError, bad_credentials
from .state import App, Installation, Token, User

if TYPE_CHECKING:
    from .sim import GitHubSim

MAX_JWT_LIFETIME = 600.0
JWT_LEEWAY = 60.0  # GitHub tolerates some clock drift; the bot backdates iat by 60 s


@dataclass(frozen=True)
class Caller:
    kind: str  # "app", "installation", "user" or "anonymous"
    app: App | None = None
    installation: Installation | None = None
    token: Token | None = None
    user: User | None = None

    @property
    def bucket(self) -> str:
        """Rate-limit bucket: one per installation (not per token) and one per App, like GitHub."""
        if self.installation is not None:
            return f"installation:{self.installation.id}"
        if self.user is not None:
            return f"user:{self.user.login}"
        if self.app is not None:
            return f"app:{self.app.id}"
        return "anonymous"


CALLER = web.RequestKey("caller", Caller)


def _jwt_error(message: str) -> ApiError:
    return ApiError(401, message)


def resolve(sim: GitHubSim, authorization: str | None) -> Caller:
    if not authorization:
        return Caller("anonymous")
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() not in ("token", "bearer") or not value:
        raise bad_credentials()
    token = sim.tokens.get(value)
    if token is not None:
        if token.expires_at <= sim.clock():
            raise bad_credentials()
        if token.user is not None:
            return Caller("user", token=token, user=sim.user(token.user))
        inst = sim.installations.get(token.installation_id)
        if inst is None:
            raise bad_credentials()
        return Caller("installation", app=sim.apps[inst.app_id], installation=inst, token=token)
    if value.count(".") == 2:
        return Caller("app", app=verify_app_jwt(sim, value))
    raise bad_credentials()


def verify_app_jwt(sim: GitHubSim, token: str) -> App:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _jwt_error("A JSON web token could not be decoded") from exc
    if header.get("alg") != "RS256":
        raise _jwt_error("A JSON web token could not be decoded")
    app = sim.app_by_issuer(claims.get("iss"))
    if app is None:
        raise _jwt_error("'Issuer' claim ('iss') must be an Integer")
    try:
        jwt.decode(
            token,
            app.public_key_pem,
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_iss": False,
                "verify_aud": False,
            },  # fmt: skip
        )
    except jwt.PyJWTError as exc:
        raise _jwt_error("A JSON web token could not be decoded") from exc
    now = sim.clock()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise _jwt_error(
            "'Issued at' claim ('iat') must be an Integer representing the time that the "
            "assertion was issued"
        )
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise _jwt_error(
            "'Expiration time' claim ('exp') must be a numeric value representing the future "
            "time at which the assertion expires"
        )
    if iat > now + JWT_LEEWAY:
        raise _jwt_error(
            "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        )
    if exp <= now:
        raise _jwt_error(
            "'Expiration time' claim ('exp') must be a numeric value representing the future "
            "time at which the assertion expires"
        )
    if exp - iat > MAX_JWT_LIFETIME + JWT_LEEWAY or exp > now + MAX_JWT_LIFETIME + JWT_LEEWAY:
        raise _jwt_error("'Expiration time' claim ('exp') is too far in the future")
    return app
