"""The payload validation layer (`bot.handlers.payloads`): typed values from GitHub's
examples, `MalformedPayload` naming the field for anything else.

`HOSTILE` (signed deliveries whose fields are wrong) is also sent through the web
app (tests/test_web.py) and through ``python -m bot serve``
(tests/e2e/test_hostile_webhooks.py).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.handlers import payloads
from bot.handlers.payloads import (
    MAX_ID,
    Installation,
    InstallationEvent,
    InstallationRepositoriesEvent,
    MalformedPayload,
    PullRequestEvent,
    PushEvent,
)
from bot.update.prbody import MAX_BODY_CHARS
from tests.datapaths import GITHUB_DATA

EXAMPLES = GITHUB_DATA / "webhooks" / "payload-examples" / "api.github.com"


def example(event: str, name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / event / name).read_text())


# -- GitHub's examples read as typed values -------------------------------------------------


def test_installation_created_reads_the_installation_and_its_repositories():
    payload = example("installation", "created.payload.json")
    assert payloads.installation_event(payload) == InstallationEvent(
        Installation(
            id=957387,
            account="Codertocat",
            permissions=payload["installation"]["permissions"],
            suspended=False,
        ),
        repositories=["Codertocat/Hello-World"],
    )


def test_a_suspended_installation_is_read_as_suspended():
    assert payloads.installation_of(example("installation", "suspend.payload.json")).suspended
    assert not payloads.installation_of(example("installation", "unsuspend.payload.json")).suspended


def test_an_enterprise_account_has_a_slug_rather_than_a_login():
    payload = example("installation", "deleted.payload.json")
    payload["installation"]["account"] = {"slug": "octo-enterprise", "name": "Octo"}
    assert payloads.installation_of(payload).account == "octo-enterprise"
    payload["installation"]["account"] = None
    assert payloads.installation_of(payload).account == ""


def test_installation_repositories_reads_both_lists():
    added = payloads.installation_repositories_event(
        example("installation_repositories", "added.payload.json")
    )
    assert (added.installation.id, added.added, added.removed) == (
        957387,
        ["Codertocat/Space"],
        [],
    )
    removed = payloads.installation_repositories_event(
        example("installation_repositories", "removed.payload.json")
    )
    assert isinstance(removed, InstallationRepositoriesEvent)
    assert removed.removed == ["octocat/Hello-World"] and removed.added == []


def test_a_repository_listed_twice_is_read_once():
    payload = example("installation", "created.payload.json")
    payload["repositories"] *= 2
    assert payloads.installation_event(payload).repositories == ["Codertocat/Hello-World"]


def test_pushes_to_branches_and_tags():
    branch = payloads.push_event(example("push", "with-new-branch.payload.json"))
    assert branch == PushEvent(
        ref="refs/heads/master",
        after="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        repository="Codertocat/Hello-World",
        default_branch="master",
        installation_id=1,
    )
    assert branch.branch == "master"
    tag = payloads.push_event(example("push", "payload.json"))
    assert tag.branch is None and tag.installation_id is None
    assert tag.after == "0" * 40  # a deleted ref is 40 zeros


@pytest.mark.parametrize("name", ["closed.payload.json", "opened.with-null-body.json"])
def test_pull_requests_read_only_what_the_transitions_need(name):
    payload = example("pull_request", name)
    pull = payloads.pull_request_event(payload)
    assert pull == PullRequestEvent(
        number=2,
        repository="Codertocat/Hello-World",
        head_ref="changes",
        head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        head_repository="Codertocat/Hello-World",
        body=payload["pull_request"]["body"],
        merged=False,
    )
    assert pull.transition_view() == {
        "number": 2,
        "body": payload["pull_request"]["body"],
        "merged": False,
        "head": {"ref": "changes", "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821"},
    }


def test_a_pull_request_from_a_deleted_fork_has_no_head_repository():
    payload = example("pull_request", "closed.payload.json")
    payload["pull_request"]["head"]["repo"] = None
    assert payloads.pull_request_event(payload).head_repository is None


# -- the grammar of each kind of field ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "octo-org/app",
        "Codertocat/Hello-World",
        "octo-org/.github",
        "a/b",
        "octocat_acme/repo",  # Enterprise Managed Users: login_shortcode
        "o" * 39 + "/" + "r" * 100,
        "o/a.b_c-d",
        "9/...dots",
    ],
)
def test_full_names_github_allows(name):
    assert payloads.push_event(push_with(("repository", "full_name"), name)).repository == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "no-slash",
        "a/b/c",
        "/b",
        "a/",
        "-a/b",
        "_a/b",
        "a/.",
        "a/..",
        "../../etc/passwd",
        "a b/c",
        "a/b c",
        "a/b\n",
        "ö/x",
        "a/ß",
        "o" * 40 + "/r",
        "o/" + "r" * 101,
        "a/b;DROP TABLE repositories",
        12345,
        ["a/b"],
        {"owner": "a"},
        True,
    ],
)
def test_full_names_github_does_not_allow(name):
    with pytest.raises(MalformedPayload) as caught:
        payloads.push_event(push_with(("repository", "full_name"), name))
    assert caught.value.path == "repository.full_name"
    assert "owner/name" in caught.value.expected


@pytest.mark.parametrize("value", [1, 957387, MAX_ID])
def test_ids_github_sends(value):
    assert payloads.push_event(push_with(("installation", "id"), value)).installation_id == value


@pytest.mark.parametrize(
    "value", [0, -1, True, False, "5", 5.0, 1.5, MAX_ID + 1, 2**64, [5], {"id": 5}, None]
)
def test_ids_that_are_not_positive_integers(value):
    with pytest.raises(MalformedPayload, match=r"^installation\.id: expected a positive integer"):
        payloads.push_event(push_with(("installation", "id"), value))


@pytest.mark.parametrize(
    "value", ["0" * 39, "0" * 41, "g" * 40, "A" * 40, " " + "a" * 39, 40, None, ["a" * 40]]
)
def test_shas_are_40_lowercase_hex_digits(value):
    with pytest.raises(MalformedPayload, match=r"^after: expected a commit SHA"):
        payloads.push_event(push_with(("after",), value))


def test_strings_are_bounded():
    assert payloads.push_event(push_with(("ref",), "refs/heads/" + "b" * 1000)).branch
    with pytest.raises(MalformedPayload, match=r"^ref: expected a string of at most 1024"):
        payloads.push_event(push_with(("ref",), "refs/heads/" + "b" * 1024))
    body_at_limit = pull_with(("pull_request", "body"), "x" * MAX_BODY_CHARS)
    assert payloads.pull_request_event(body_at_limit).body == "x" * MAX_BODY_CHARS
    with pytest.raises(MalformedPayload, match=r"^pull_request\.body"):
        payloads.pull_request_event(pull_with(("pull_request", "body"), "x" * (MAX_BODY_CHARS + 1)))


def test_a_push_without_installation_is_a_repository_hook_but_a_bad_one_is_malformed():
    payload = example("push", "with-new-branch.payload.json")
    payload["installation"] = None
    assert payloads.push_event(payload).installation_id is None
    payload["installation"] = "1"
    with pytest.raises(MalformedPayload, match=r"^installation: expected an object"):
        payloads.push_event(payload)


def test_permissions_are_names_to_levels():
    payload = example("installation", "created.payload.json")
    payload["installation"]["permissions"] = {f"p{i}": "read" for i in range(257)}
    with pytest.raises(MalformedPayload, match=r"at most 256 entries"):
        payloads.installation_of(payload)
    payload["installation"]["permissions"] = {"contents": "w" * 65}
    with pytest.raises(MalformedPayload, match=r"^installation\.permissions\.contents"):
        payloads.installation_of(payload)


def test_the_message_names_the_field_and_what_was_expected():
    error = MalformedPayload("repositories[3].full_name", "a repository full name 'owner/name'")
    assert str(error) == "repositories[3].full_name: expected a repository full name 'owner/name'"
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("value", ["created", None])
def test_action_is_a_string_or_absent(value):
    assert payloads.action({"action": value} if value else {}) == value


@pytest.mark.parametrize("value", [["created"], {"a": 1}, 1, True])
def test_action_of_another_type_is_malformed(value):
    with pytest.raises(MalformedPayload, match=r"^action: expected a string"):
        payloads.action({"action": value})


# -- hostile deliveries: every wrong field is named -------------------------------------------


def deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def with_value(payload: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict:
    changed = copy.deepcopy(payload)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def push_with(path: tuple[str | int, ...], value: Any) -> dict:
    return with_value(example("push", "with-new-branch.payload.json"), path, value)


def pull_with(path: tuple[str | int, ...], value: Any) -> dict:
    return with_value(example("pull_request", "closed.payload.json"), path, value)


@dataclass(frozen=True)
class Hostile:
    """A delivery GitHub would never send; `field` is named in the 400's text."""

    name: str
    event: str
    body: bytes
    field: str

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


JUNK_NAMES = ["no-slash", "a/b/c", "../../etc/passwd", "lonely-owner/", "x" * 40 + "/y", "a//b"]
#: Repositories that only a hostile delivery names: none of them may ever be stored.
JUNK_BUT_VALID = "junk-org/listed-before-a-bad-entry"


def _hostile() -> list[Hostile]:
    installed = example("installation", "created.payload.json")
    added = example("installation_repositories", "added.payload.json")
    push = example("push", "with-new-branch.payload.json")
    pull = example("pull_request", "closed.payload.json")
    good_entry = {"id": 1, "name": "r", "full_name": JUNK_BUT_VALID, "private": True}
    cases: list[tuple[str, str, dict, tuple, Any, str]] = [
        ("installation", "string-id", installed, ("installation", "id"), "957387", "installation.id"),
        ("installation", "bool-id", installed, ("installation", "id"), True, "installation.id"),
        ("installation", "negative-id", installed, ("installation", "id"), -7, "installation.id"),
        ("installation", "zero-id", installed, ("installation", "id"), 0, "installation.id"),
        ("installation", "huge-id", installed, ("installation", "id"), 2**70, "installation.id"),
        ("installation", "float-id", installed, ("installation", "id"), 1.5, "installation.id"),
        ("installation", "list-installation", installed, ("installation",), [], "installation"),
        ("installation", "string-account", installed, ("installation", "account"), "x", "installation.account"),
        ("installation", "deep-permission", installed, ("installation", "permissions"), {"contents": deep(200)}, "installation.permissions.contents"),
        ("installation", "bool-suspended", installed, ("installation", "suspended_at"), True, "installation.suspended_at"),
        ("installation", "int-full-name", installed, ("repositories", 0, "full_name"), 12345, "repositories[0].full_name"),
        ("installation", "repositories-object", installed, ("repositories",), {"full_name": "a/b"}, "repositories"),
        ("installation", "repository-as-string", installed, ("repositories",), ["octo-org/app"], "repositories[0]"),
        ("installation", "junk-after-a-good-entry", installed, ("repositories",), [good_entry, None], "repositories[1]"),
        ("installation", "good-then-junk-name", installed, ("repositories",), [good_entry, {"full_name": "a/b/c"}], "repositories[1].full_name"),
        ("installation", "deep-id", installed, ("installation", "id"), deep(500), "installation.id"),
        ("installation", "list-action", installed, ("action",), ["created"], "action"),
        ("installation_repositories", "int-added", added, ("repositories_added", 0, "full_name"), 7, "repositories_added[0].full_name"),
        ("installation_repositories", "junk-added-entry", added, ("repositories_added",), [good_entry, 5], "repositories_added[1]"),
        ("installation_repositories", "string-id", added, ("installation", "id"), "957387", "installation.id"),
        ("push", "int-ref", push, ("ref",), 5, "ref"),
        ("push", "bad-after", push, ("after",), "not-a-sha", "after"),
        ("push", "negative-installation", push, ("installation", "id"), -1, "installation.id"),
        ("push", "string-installation", push, ("installation", "id"), "1", "installation.id"),
        ("push", "list-default-branch", push, ("repository", "default_branch"), ["main"], "repository.default_branch"),
        ("push", "int-full-name", push, ("repository", "full_name"), 1296269, "repository.full_name"),
        ("pull_request", "int-head-sha", pull, ("pull_request", "head", "sha"), 7, "pull_request.head.sha"),
        ("pull_request", "object-head-ref", pull, ("pull_request", "head", "ref"), {}, "pull_request.head.ref"),
        ("pull_request", "string-number", pull, ("number",), "2", "number"),
        ("pull_request", "other-number", pull, ("pull_request", "number"), 3, "pull_request.number"),
        ("pull_request", "string-merged", pull, ("pull_request", "merged"), "yes", "pull_request.merged"),
        ("pull_request", "huge-body", pull, ("pull_request", "body"), "x" * (MAX_BODY_CHARS + 1), "pull_request.body"),
    ]  # fmt: skip
    hostile = [
        Hostile(f"{event}-{name}", event, json.dumps(with_value(base, path, value)).encode(), field)
        for event, name, base, path, value, field in cases
    ]
    for i, junk in enumerate(JUNK_NAMES):
        body = with_value(installed, ("repositories", 0, "full_name"), junk)
        hostile.append(
            Hostile(f"installation-junk-name-{i}", "installation", json.dumps(body).encode(), "repositories[0].full_name")
        )  # fmt: skip
        body = with_value(push, ("repository", "full_name"), junk)
        hostile.append(Hostile(f"push-junk-name-{i}", "push", json.dumps(body).encode(), "repository.full_name"))  # fmt: skip
    # Deeper than Python's json can parse at all.
    hostile.append(
        Hostile("deep-nesting", "installation", b'{"action": "created", "installation": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply")
    )  # fmt: skip
    return hostile


HOSTILE = _hostile()

PARSERS = {
    "installation": payloads.installation_event,
    "installation_repositories": payloads.installation_repositories_event,
    "push": payloads.push_event,
    "pull_request": payloads.pull_request_event,
}


@pytest.mark.parametrize(
    "hostile", [h for h in HOSTILE if h.name != "deep-nesting"], ids=lambda h: h.name
)
def test_each_hostile_delivery_names_its_wrong_field(hostile: Hostile):
    payload = hostile.payload
    with pytest.raises(MalformedPayload) as caught:
        payloads.action(payload)
        PARSERS[hostile.event](payload)
    assert caught.value.path == hostile.field


# -- fuzzing: whatever JSON stands where a field is read, the answer is typed or MalformedPayload


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)  # fmt: skip

READ_FIELDS = {
    "installation": [
        ("installation",),
        ("installation", "id"),
        ("installation", "account"),
        ("installation", "account", "login"),
        ("installation", "permissions"),
        ("installation", "permissions", "contents"),
        ("installation", "suspended_at"),
        ("repositories",),
        ("repositories", 0),
        ("repositories", 0, "full_name"),
    ],
    "push": [
        ("ref",),
        ("after",),
        ("installation",),
        ("installation", "id"),
        ("repository",),
        ("repository", "full_name"),
        ("repository", "default_branch"),
    ],
    "pull_request": [
        ("number",),
        ("repository",),
        ("repository", "full_name"),
        ("pull_request",),
        ("pull_request", "number"),
        ("pull_request", "body"),
        ("pull_request", "merged"),
        ("pull_request", "head"),
        ("pull_request", "head", "ref"),
        ("pull_request", "head", "sha"),
        ("pull_request", "head", "repo"),
        ("pull_request", "head", "repo", "full_name"),
    ],
}
BASES = {
    "installation": ("installation", "created.payload.json"),
    "push": ("push", "with-new-branch.payload.json"),
    "pull_request": ("pull_request", "closed.payload.json"),
}


def _typed(value: object) -> None:
    """Every field of a parsed event has the type its annotation promises."""
    if isinstance(value, InstallationEvent):
        _typed(value.installation)
        assert all(payloads.FULL_NAME.fullmatch(n) for n in value.repositories)
    elif isinstance(value, Installation):
        assert type(value.id) is int and value.id > 0 and isinstance(value.account, str)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in value.permissions.items())
        assert isinstance(value.suspended, bool)
    elif isinstance(value, PushEvent):
        assert isinstance(value.ref, str) and payloads.SHA.fullmatch(value.after)
        assert payloads.FULL_NAME.fullmatch(value.repository)
        assert value.installation_id is None or type(value.installation_id) is int
        assert value.default_branch is None or isinstance(value.default_branch, str)
    elif isinstance(value, PullRequestEvent):
        assert type(value.number) is int and value.number > 0
        assert payloads.SHA.fullmatch(value.head_sha) and isinstance(value.head_ref, str)
        assert value.body is None or isinstance(value.body, str)
        assert isinstance(value.merged, bool)
    else:
        raise AssertionError(f"unexpected {value!r}")


@settings(max_examples=400, deadline=None)
@given(
    event=st.sampled_from(sorted(READ_FIELDS)),
    choice=st.integers(min_value=0, max_value=100),
    value=JSON,
)
def test_any_json_in_a_read_field_is_typed_or_malformed(event: str, choice: int, value: Any):
    fields = READ_FIELDS[event]
    path = fields[choice % len(fields)]
    payload = with_value(example(*BASES[event]), path, value)
    try:
        parsed = PARSERS[event](payload)
    except MalformedPayload as exc:
        assert exc.path and exc.expected
        return
    _typed(parsed)


@settings(max_examples=200, deadline=None)
@given(event=st.sampled_from(sorted(PARSERS)), payload=JSON)
def test_any_json_as_the_whole_payload_is_typed_or_malformed(event: str, payload: Any):
    try:
        parsed = PARSERS[event](payload)
    except MalformedPayload:
        return
    _typed(parsed.installation if isinstance(parsed, InstallationRepositoriesEvent) else parsed)
