"""Errors of the GitHub layer: what went wrong, in terms the app can act on.

gidgethub raises one exception type per status class; the app needs to know
"empty repository", "someone moved the branch", "missing permission" and so
on. `from_http` translates. Messages never contain tokens or keys: they name
the request by method and path only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import gidgethub

from bot.retry_after import retry_after_seconds

EMPTY_REPOSITORY_MESSAGE = "Git Repository is empty."
NOT_ACCESSIBLE_MESSAGE = "Resource not accessible by integration"
SECONDARY_LIMIT_MARKER = "secondary rate limit"


class GitHubError(Exception):
    """A GitHub request failed. `status` is the HTTP status (None if there was no answer)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors
        self.headers: Mapping[str, str] = headers or {}


class NotFound(GitHubError):
    """404: the resource does not exist, or the installation cannot see it."""


class EmptyRepository(GitHubError):
    """409 "Git Repository is empty.": the repository has no commits yet."""


class PermissionDenied(GitHubError):
    """403 "Resource not accessible by integration": the app lacks a permission."""


class AuthenticationFailed(GitHubError):
    """401: the app JWT or installation token was refused (after one refresh)."""


class RateLimited(GitHubError):
    """A primary or secondary rate limit that did not clear within the allowed wait, or
    requests held back before the limit runs out (`bot.github.ratelimit`)."""

    #: When no answer says when to try again (GitHub's advice for secondary limits).
    FALLBACK_WAIT = 60.0

    def __init__(self, message: str, *, resume_at: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self._resume_at = resume_at

    def resume_at(self, now: float) -> float:
        """When to try again: as decided, else ``retry-after``, else the reset, else soon."""
        if self._resume_at is not None:
            return self._resume_at
        retry_after = retry_after_seconds(self.headers.get("retry-after"), now=now)
        if retry_after is not None:
            return now + retry_after
        try:
            return max(now, float(self.headers["x-ratelimit-reset"]) + 1.0)
        except (KeyError, ValueError):
            return now + self.FALLBACK_WAIT


class ServerError(GitHubError):
    """5xx that persisted through every retry."""


class Unreachable(GitHubError):
    """No HTTP answer at all (connection refused, timeout...)."""


class ValidationFailed(GitHubError):
    """422: GitHub refused the request's content; `errors` holds its details."""


class BranchMoved(GitHubError):
    """The branch is not where the caller expected: somebody else moved it."""

    def __init__(self, branch: str, *, expected: str | None, actual: str | None) -> None:
        super().__init__(
            f"branch {branch!r} is at {actual or 'nothing'}, expected {expected or 'nothing'}: "
            "someone else changed it, so it was left alone"
        )
        self.branch = branch
        self.expected = expected
        self.actual = actual


class NotFastForward(GitHubError):
    """422 "Update is not a fast forward": the new commit does not descend from the branch."""

    def __init__(self, branch: str, sha: str) -> None:
        super().__init__(
            f"cannot move branch {branch!r} to {sha}: not a fast-forward "
            "(the branch has commits the new one does not contain)",
            status=422,
        )
        self.branch = branch
        self.sha = sha


class WorkflowFilesRefused(GitHubError):
    """The change touches workflow files (see `bot.github.trees.is_workflow_file`)."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = sorted(paths)
        super().__init__(
            "refusing to write workflow files (" + ", ".join(self.paths) + "): "
            "the bot never changes workflow files; update them by hand"
        )


def _message_of(exc: gidgethub.HTTPException) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


def rate_limit_kind(exc: gidgethub.HTTPException) -> Literal["primary", "secondary"] | None:
    """Which rate limit an error answer reports, or None if it is not one.

    Secondary: a 403/429 whose message says so, or that carries ``retry-after``
    (the request was not processed). Primary: a 403/429 with the quota used up
    (``x-ratelimit-remaining: 0``).
    """
    if int(exc.status_code) not in (403, 429):
        return None
    if SECONDARY_LIMIT_MARKER in _message_of(exc).lower() or "retry-after" in exc.headers:
        return "secondary"
    if exc.headers.get("x-ratelimit-remaining") == "0":
        return "primary"
    return None


def from_http(exc: gidgethub.HTTPException, *, method: str, path: str) -> GitHubError:
    """The `GitHubError` for a gidgethub HTTP exception raised by `method path`."""
    status = int(exc.status_code)
    message = _message_of(exc)
    errors = getattr(exc, "errors", None)
    text = f"GitHub answered {status} to {method} {path}: {message}"
    kwargs: dict[str, Any] = {"status": status, "errors": errors, "headers": exc.headers}
    if status == 401:
        return AuthenticationFailed(
            text + " (check APP_ID and the private key, and that the app is installed)", **kwargs
        )
    if status == 404:
        return NotFound(text, **kwargs)
    if status == 409 and EMPTY_REPOSITORY_MESSAGE.lower() in message.lower():
        return EmptyRepository(text, **kwargs)
    if status == 403 and NOT_ACCESSIBLE_MESSAGE.lower() in message.lower():
        return PermissionDenied(
            text + " (grant the app the missing permission and accept it on the installation)",
            **kwargs,
        )
    if rate_limit_kind(exc) is not None:
        return RateLimited(text, **kwargs)
    if status == 422:
        return ValidationFailed(text, **kwargs)
    if status >= 500:
        return ServerError(text, **kwargs)
    return GitHubError(text, **kwargs)
