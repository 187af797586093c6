"""Registry push notifications (issue 12 §3): which images were pushed, by who says so.

``POST /registry/events`` takes each kind's own payload; the token it carries (the
``Authorization: Bearer`` header, or ``?token=`` for registries that cannot send a
header) says which kind it is. GitHub's ``registry_package`` and ``package`` events
come on the App's own webhook instead (`bot.handlers.packages`).

Pure: the parsers take the decoded JSON and answer canonical image names; anything
they cannot read is `EventError` (a 400), never an exception of another kind.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from yarl import URL

from bot.imageref import DIGEST_RE, ImageRefError, parse_repository

#: Images one request may name: a distribution envelope holds a few events.
MAX_IMAGES = 100


class EventError(ValueError):
    """The payload is not what this kind of registry sends; the message says what."""


@dataclass(frozen=True)
class RegistryKind:
    name: str
    #: The environment variable holding its token (empty or unset: the kind is off).
    setting: str
    parse: Callable[[object], set[str]]
    #: How the registry sends the token (for the docs and the 401's text).
    sends_token: str


def _image(text: object) -> str:
    if not isinstance(text, str) or not text:
        raise EventError("the image's name is missing")
    try:
        return parse_repository(text.lower()).canonical_name
    except ImageRefError as exc:
        raise EventError(str(exc)) from None


def _object(value: object, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise EventError(f"{what} must be a JSON object")
    return value


def distribution(payload: object) -> set[str]:
    """The CNCF distribution registry's envelope: ``{"events": [...]}``; manifest pushes only."""
    events = _object(payload, "the body").get("events")
    if not isinstance(events, list):
        raise EventError('expected {"events": [...]}')
    images = set()
    for event in events:
        event = _object(event, "an event")
        target = _object(event.get("target"), "an event's target")
        if event.get("action") != "push" or "manifest" not in str(target.get("mediaType", "")):
            continue  # pulls, deletes, blob uploads
        host = _object(event.get("request") or {}, "an event's request").get("host")
        if not isinstance(host, str) or not host:
            url = target.get("url")
            host = URL(url).authority if isinstance(url, str) else None
        repository = target.get("repository")
        if not host or not isinstance(repository, str) or not repository:
            raise EventError("an event names no registry host or repository")
        images.add(_image(f"{host}/{repository}"))
    return images


def docker_hub(payload: object) -> set[str]:
    """Docker Hub: ``{"push_data": {"tag"}, "repository": {"repo_name"}}``."""
    repository = _object(_object(payload, "the body").get("repository"), "repository")
    name = repository.get("repo_name")
    if not isinstance(name, str) or not name:
        raise EventError("repository.repo_name is missing")
    return {_image(name if "/" in name else f"library/{name}")}


def harbor(payload: object) -> set[str]:
    """Harbor: ``{"type": "PUSH_ARTIFACT", "event_data": {"resources": [{"resource_url"}]}}``."""
    body = _object(payload, "the body")
    if body.get("type") != "PUSH_ARTIFACT":
        return set()
    resources = _object(body.get("event_data"), "event_data").get("resources")
    if not isinstance(resources, list):
        raise EventError("event_data.resources must be a list")
    images = set()
    for resource in resources:
        url = _object(resource, "a resource").get("resource_url")
        if not isinstance(url, str):
            raise EventError("a resource's resource_url is missing")
        name, _, digest = url.partition("@")
        if digest and not DIGEST_RE.fullmatch(digest):
            raise EventError(f"{url!r} has a malformed digest")
        head, _, last = name.rpartition("/")
        images.add(_image(f"{head}/{last.split(':', 1)[0]}" if head else name))
    return images


def quay(payload: object) -> set[str]:
    """Quay: ``{"docker_url": "quay.io/org/app", "updated_tags": [...]}``."""
    return {_image(_object(payload, "the body").get("docker_url"))}


KINDS = (
    RegistryKind("distribution", "REGISTRY_EVENTS_DISTRIBUTION_TOKEN", distribution,
         "an Authorization: Bearer header (notifications.endpoints[].headers)"),
    RegistryKind("dockerhub", "REGISTRY_EVENTS_DOCKERHUB_TOKEN", docker_hub,
         "?token= in the webhook URL (Docker Hub sends no header)"),
    RegistryKind("harbor", "REGISTRY_EVENTS_HARBOR_TOKEN", harbor,
         "the webhook's Auth Header, Bearer <token>"),
    RegistryKind("quay", "REGISTRY_EVENTS_QUAY_TOKEN", quay,
         "?token= in the webhook URL (Quay sends no header)"),
)  # fmt: skip


def kind_for(token: str | None, tokens: Mapping[str, str]) -> RegistryKind | None:
    """The kind whose token ``token`` is (``tokens``: kind name -> its token), compared in
    constant time against every one; None when it is none of them."""
    found = None
    given = (token or "").encode()
    for kind in KINDS:
        expected = tokens.get(kind.name, "")
        if expected and hmac.compare_digest(given, expected.encode()):
            found = kind
    return found


def images_of(kind: RegistryKind, payload: object) -> set[str]:
    images = kind.parse(payload)
    if len(images) > MAX_IMAGES:
        raise EventError(f"names {len(images)} images; at most {MAX_IMAGES} per request")
    return images
