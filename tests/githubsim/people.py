"""People distinct from Apps: user accounts, the App's `<slug>[bot]` user, user tokens, and
who is acting (the `sender` of webhooks, the `user` of PRs and comments)."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

from .state import App, Token, User

if TYPE_CHECKING:
    from .credentials import Caller
    from .sim import GitHubSim

INSTALLER = "octocat"  # who installs Apps on organisations unless told otherwise
USER_TOKEN_PERMISSIONS = {"contents": "write", "pull_requests": "write", "issues": "write",
                          "metadata": "read", "workflows": "write"}  # fmt: skip
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")


def bot_user(app: App) -> User:
    login = f"{app.slug}[bot]"
    return User(login=login, type="Bot", name=login,
                email=f"{app.id}+{login}@users.noreply.github.com")  # fmt: skip


def git_identity(user: User) -> tuple[str, str]:
    """(name, email) for commits made by `user`."""
    return user.name or user.login, user.email or f"{user.login}@users.noreply.github.com"


class PeopleAPI:
    """Mixin of `GitHubSim`: the user registry and acting identities."""

    def create_user(self: GitHubSim, login: str, *, name: str | None = None,
                    email: str | None = None) -> dict:  # fmt: skip
        """A person's account; returns `{id, login, type, name, email}` (ids are stable)."""
        from .shapes import stable_id

        if not _LOGIN.match(login) or login.endswith("[bot]"):
            raise ValueError(f"not a valid user login: {login!r}")
        user = self.users.get(login.lower())
        if user is None:
            user = self.users[login.lower()] = User(login=login)
        user.name = name if name is not None else (user.name or login)
        user.email = email if email is not None else (user.email or f"{login}@example.com")
        return {"id": stable_id(login), "login": user.login, "type": user.type,
                "name": user.name, "email": user.email}  # fmt: skip

    def user(self: GitHubSim, login: str) -> User:
        """The registered user `login`, created on first use (name = login)."""
        found = self.users.get(login.lower())
        if found is None:
            self.create_user(login)
            found = self.users[login.lower()]
        return found

    def person(self: GitHubSim, as_user: str | None = None,
               author: tuple[str, str] | None = None) -> User:  # fmt: skip
        """Who acts for a Python/admin call: `as_user`, else the user whose e-mail is the
        commit author's, else a user named after the e-mail's local part."""
        if as_user:
            return self.user(as_user)
        if author is not None:
            email = author[1].lower()
            for user in self.users.values():
                if (user.email or "").lower() == email:
                    return user
            login = re.sub(r"[^A-Za-z0-9-]+", "-", email.split("@")[0]).strip("-")[:39]
            user = self.user(login or INSTALLER)
            if user.email == f"{user.login}@example.com" and user.name == user.login:
                user.name, user.email = author  # an implicit user takes the author's identity
            return user
        return self.user(INSTALLER)

    def actor(self: GitHubSim, caller: Caller) -> User:
        """The user a REST caller acts as: the App's bot user, or a person's token's owner."""
        if caller.user is not None:
            return caller.user
        if caller.app is not None:
            return bot_user(caller.app)
        return User(login="ghost")

    def user_token(self: GitHubSim, login: str) -> str:
        """A personal token (`Authorization: token ghp_...`) acting as `login` on the REST
        API: every repository, contents/pull_requests/issues/workflows write, no checks."""
        user = self.user(login)
        value = "ghp_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "B")
        self.tokens[value] = Token(token=value, installation_id=0, expires_at=float("inf"),
                                   permissions=dict(USER_TOKEN_PERMISSIONS), repositories=None,
                                   user=user.login)  # fmt: skip
        return value
