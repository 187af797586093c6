"""What the handlers read from a delivery, as typed values; anything else is `MalformedPayload`.

A signed delivery is GitHub's, but its body is still only JSON: each handler
reads exactly the fields it needs through one function here, before it
touches the store, and gets typed values back (ids are positive integers and
never booleans, repository names match GitHub's ``owner/name`` grammar, commit
SHAs are 40 hex digits, refs are strings of bounded length). The first field
that is missing or of the wrong kind raises `MalformedPayload` with its path
(``repositories[3].full_name``) and what was expected; `bot.web` answers 400
with that text, and nothing of the delivery is stored.

Fields a handler does not read are not looked at: GitHub adds fields freely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.update.prbody import MAX_BODY_CHARS

#: SQLite's INTEGER is 64-bit signed; GitHub's ids are far below this.
MAX_ID = 2**63 - 1
#: Logins, branch names and refs: git allows long refs, but not this long.
MAX_TEXT_CHARS = 1024
#: An owner (user, organization: 1-39 characters; Enterprise Managed Users add
#: ``_shortcode``) and a repository name (1-100 of ``A-Za-z0-9._-``, not ``.`` or ``..``).
FULL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}/(?!\.\.?\Z)[A-Za-z0-9._-]{1,100}")
#: GitHub has some 40 permission names; an installation lists those it was granted.
MAX_PERMISSIONS = 256
SHA = re.compile(r"[0-9a-f]{40}")
BRANCH_PREFIX = "refs/heads/"


class MalformedPayload(ValueError):
    """A field a handler needs is missing or not what GitHub sends."""

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"{path}: expected {expected}")
        self.path = path
        self.expected = expected


class _Object:
    """A JSON object at `path`; each accessor checks one field and names it when wrong."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise MalformedPayload(path or "body", "an object")
        self._value: dict[str, Any] = value
        self._path = path

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _get(self, key: str, expected: str) -> Any:
        value = self._value.get(key)
        if value is None:
            raise MalformedPayload(self._at(key), expected)
        return value

    def obj(self, key: str) -> _Object:
        return _Object(self._get(key, "an object"), self._at(key))

    def maybe_obj(self, key: str) -> _Object | None:
        value = self._value.get(key)
        return None if value is None else _Object(value, self._at(key))

    def text(self, key: str, *, limit: int = MAX_TEXT_CHARS) -> str:
        return _text(self._get(key, "a string"), self._at(key), limit)

    def maybe_text(self, key: str, *, limit: int = MAX_TEXT_CHARS) -> str | None:
        value = self._value.get(key)
        return None if value is None else _text(value, self._at(key), limit)

    def id(self, key: str) -> int:
        value = self._get(key, "a positive integer id")
        # bool is an int in Python, and JSON's true must not become installation 1.
        if type(value) is not int or not 0 < value <= MAX_ID:
            raise MalformedPayload(self._at(key), "a positive integer id (below 2**63)")
        return value

    def flag(self, key: str) -> bool:
        """A boolean that may be missing or null (false)."""
        value = self._value.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise MalformedPayload(self._at(key), "true or false")
        return value

    def full_name(self, key: str) -> str:
        value = self._get(key, "a repository full name 'owner/name'")
        if not isinstance(value, str) or not FULL_NAME.fullmatch(value):
            raise MalformedPayload(self._at(key), "a repository full name 'owner/name'")
        return value

    def sha(self, key: str) -> str:
        value = self._get(key, "a commit SHA (40 hex digits)")
        if not isinstance(value, str) or not SHA.fullmatch(value):
            raise MalformedPayload(self._at(key), "a commit SHA (40 lowercase hex digits)")
        return value

    def objects(self, key: str) -> list[_Object]:
        """A list of objects; missing or null is an empty list."""
        value = self._value.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise MalformedPayload(self._at(key), "a list of objects")
        return [_Object(item, f"{self._at(key)}[{i}]") for i, item in enumerate(value)]

    def text_map(self, key: str, *, limit: int, entries: int) -> dict[str, str]:
        """An object of strings (names and values at most `limit` long); missing or null is {}."""
        value = self.maybe_obj(key)
        if value is None:
            return {}
        if len(value._value) > entries:
            raise MalformedPayload(self._at(key), f"an object of at most {entries} entries")
        for name in value._value:
            _text(name, f"{self._at(key)} (a name)", limit)
        return {name: value.text(name, limit=limit) for name in value._value}

    def timestamp(self, key: str) -> str | int | None:
        """An ISO 8601 string or epoch seconds (GitHub sent both over the years), or null."""
        value = self._value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MalformedPayload(self._at(key), "null or a timestamp")
        if isinstance(value, str):
            _text(value, self._at(key), 64)
        return value


def _text(value: object, path: str, limit: int) -> str:
    if not isinstance(value, str):
        raise MalformedPayload(path, "a string")
    if len(value) > limit:
        raise MalformedPayload(path, f"a string of at most {limit} characters")
    return value


def _root(payload: object) -> _Object:
    return _Object(payload, "")


# -- installations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Installation:
    id: int
    account: str = ""  # the login (or an enterprise's slug); "" when not sent
    permissions: dict[str, str] = field(default_factory=dict)
    suspended: bool = False


@dataclass(frozen=True)
class InstallationEvent:
    """The installation, and the repositories the delivery lists (``repositories``)."""

    installation: Installation
    repositories: list[str] = field(default_factory=list)
    #: The delivery lists none, and the installation has "all repositories": GitHub
    #: sends no list for those, so the list must be fetched.
    unlisted: bool = False


@dataclass(frozen=True)
class InstallationRepositoriesEvent:
    installation: Installation
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _installation(root: _Object) -> Installation:
    inst = root.obj("installation")
    account = inst.maybe_obj("account")
    login = ""
    if account is not None:
        login = account.maybe_text("login") or account.maybe_text("slug") or ""
    return Installation(
        id=inst.id("id"),
        account=login,
        permissions=inst.text_map("permissions", limit=64, entries=MAX_PERMISSIONS),
        suspended=bool(inst.timestamp("suspended_at")),
    )


def _full_names(root: _Object, key: str) -> list[str]:
    return list(dict.fromkeys(repo.full_name("full_name") for repo in root.objects(key)))


def installation_of(payload: object) -> Installation:
    """The installation a delivery is about (``installation`` must be there)."""
    return _installation(_root(payload))


def installation_event(payload: object) -> InstallationEvent:
    """`installation` created / new_permissions_accepted: with the repositories it lists."""
    root = _root(payload)
    repositories = _full_names(root, "repositories")
    selection = root.maybe_text("repository_selection") or root.obj(
        "installation"
    ).maybe_text("repository_selection")
    return InstallationEvent(
        _installation(root),
        repositories,
        unlisted=not repositories and selection == "all",
    )


def installation_repositories_event(payload: object) -> InstallationRepositoriesEvent:
    root = _root(payload)
    return InstallationRepositoriesEvent(
        _installation(root),
        added=_full_names(root, "repositories_added"),
        removed=_full_names(root, "repositories_removed"),
    )


# -- pushes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushEvent:
    ref: str
    after: str  # the new head; 40 zeros when the ref was deleted
    repository: str
    default_branch: str | None
    #: None for a repository hook's delivery (not the app's).
    installation_id: int | None

    @property
    def branch(self) -> str | None:
        """The branch pushed to, or None for a tag or another kind of ref."""
        return self.ref[len(BRANCH_PREFIX) :] if self.ref.startswith(BRANCH_PREFIX) else None


def push_event(payload: object) -> PushEvent:
    root = _root(payload)
    installation = root.maybe_obj("installation")
    repository = root.obj("repository")
    return PushEvent(
        ref=root.text("ref"),
        after=root.sha("after"),
        repository=repository.full_name("full_name"),
        default_branch=repository.maybe_text("default_branch"),
        installation_id=None if installation is None else installation.id("id"),
    )


# -- pull requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class PullRequestEvent:
    number: int
    repository: str
    head_ref: str
    head_sha: str
    #: Where the head branch lives; None when that repository was deleted.
    head_repository: str | None
    body: str | None
    merged: bool

    def transition_view(self) -> dict[str, Any]:
        """The PR as the transitions in `bot.pullrequest` read it: only validated fields."""
        return {
            "number": self.number,
            "body": self.body,
            "merged": self.merged,
            "head": {"ref": self.head_ref, "sha": self.head_sha},
        }


def pull_request_event(payload: object) -> PullRequestEvent:
    root = _root(payload)
    number = root.id("number")
    pull = root.obj("pull_request")
    if pull.id("number") != number:
        raise MalformedPayload("pull_request.number", f"the same number as number ({number})")
    head = pull.obj("head")
    head_repo = head.maybe_obj("repo")
    return PullRequestEvent(
        number=number,
        repository=root.obj("repository").full_name("full_name"),
        head_ref=head.text("ref"),
        head_sha=head.sha("sha"),
        head_repository=None if head_repo is None else head_repo.full_name("full_name"),
        body=pull.maybe_text("body", limit=MAX_BODY_CHARS),
        merged=pull.flag("merged"),
    )


def action(payload: dict[str, Any]) -> str | None:
    """The event's ``action`` (routing reads it before any handler): a string or absent."""
    value = payload.get("action")
    if value is not None and not isinstance(value, str):
        raise MalformedPayload("action", "a string")
    return value
