"""Every Prometheus metric the bot exports, and the helpers that record them.

One home per fact: the metrics are defined here and nowhere else, and call
sites record through the helpers below (one line each). They live in a
dedicated `REGISTRY`, not prometheus-client's global default, so several apps
(or tests) in one process do not clash; `render` gives what ``GET /metrics``
serves.

Labels are bounded and never secret:

* GitHub requests are labelled with the URL *template* of the route
  (`github_route`), never the concrete path: owner, repository, ref, SHA and
  number become placeholders, shapes not in the table collapse to a generic
  form, and the query (which may hold a token) is never read.
* Registry requests are labelled with the registry's ``host[:port]`` only
  (`registry_label`): no userinfo, path or query; after `MAX_REGISTRIES`
  distinct registries the rest are counted as ``other``.
* Installations are labelled with their numeric id (``app`` for requests made
  as the App itself with its JWT).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import urllib.parse

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from yarl import URL

PREFIX = "image_automation_"
GITHUB_API = "https://api.github.com"
#: The installation label of requests authenticated as the App (JWT), not an installation.
APP_INSTALLATION = "app"
#: The status label of a request that got no HTTP answer (connection failure, timeout).
NO_ANSWER = "error"
#: The status label of a registry request the address policy refused before sending it.
REFUSED = "refused"
#: Distinct registry label values kept; any further registry is counted as `OTHER`.
MAX_REGISTRIES = 500
OTHER = "other"
#: The route label of a request that left the API's origin (an archive redirect).
EXTERNAL_ROUTE = "{external}"

#: Reconcile outcomes the scheduler reports (others that look like a name are accepted).
RECONCILE_OUTCOMES = (
    "completed",
    "short_circuit",
    "retry_later",
    "postponed",
    "failed",
)
_OUTCOME = re.compile(r"[a-z][a-z0-9_]{0,31}")

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    PREFIX + "reconciles_total",
    "Reconciles of a repository that finished, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
SHORT_CIRCUITS = Counter(
    PREFIX + "short_circuits_total",
    "Reconciles answered by the cheap head check alone (nothing changed since the last one).",
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    PREFIX + "reconcile_duration_seconds",
    "Wall time of one reconcile of one repository.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
    registry=REGISTRY,
)
GITHUB_REQUESTS = Counter(
    PREFIX + "github_requests_total",
    "HTTP requests sent to GitHub (retries included), by route template and status "
    "('error' when no answer came).",
    ["route", "status"],
    registry=REGISTRY,
)
GITHUB_RATE_LIMIT_REMAINING = Gauge(
    PREFIX + "github_rate_limit_remaining",
    "x-ratelimit-remaining of the last GitHub answer, by installation ('app' for the App's JWT).",
    ["installation"],
    registry=REGISTRY,
)
REGISTRY_REQUESTS = Counter(
    PREFIX + "registry_requests_total",
    "HTTP requests sent to container registries and their token realms, by host[:port] and "
    "status ('error' when no answer came, 'refused' when the address policy forbade it).",
    ["registry", "status"],
    registry=REGISTRY,
)
DUE_BACKLOG = Gauge(
    PREFIX + "due_backlog",
    "Repositories due for a reconcile now and not running.",
    registry=REGISTRY,
)
LEASE_TAKEOVERS = Counter(
    PREFIX + "lease_takeovers_total",
    "Repository leases taken over from a holder whose lease had expired.",
    registry=REGISTRY,
)

for _outcome in RECONCILE_OUTCOMES:  # present at zero from the start, for rate()
    RECONCILES.labels(outcome=_outcome)


def render() -> tuple[bytes, str]:
    """The text exposition of `REGISTRY`: (body, content type)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# -- reconciles and scheduling ------------------------------------------------------


def observe_reconcile(outcome: str, seconds: float | None = None) -> None:
    """One finished reconcile: count its `outcome` and, if given, its duration."""
    RECONCILES.labels(outcome=outcome if _OUTCOME.fullmatch(outcome) else OTHER).inc()
    if seconds is not None:
        RECONCILE_DURATION.observe(max(0.0, seconds))


def count_short_circuit() -> None:
    """One reconcile settled by the head check alone."""
    SHORT_CIRCUITS.inc()


def set_due_backlog(count: int) -> None:
    """Repositories due now and not running."""
    DUE_BACKLOG.set(max(0, count))


def count_lease_takeover() -> None:
    """One expired lease taken over."""
    LEASE_TAKEOVERS.inc()


# -- GitHub ---------------------------------------------------------------------------


def observe_github(
    url: str,
    status: int | str,
    installation: int | str,
    remaining: str | None = None,
    *,
    base_url: str = GITHUB_API,
    route: str | None = None,
) -> None:
    """One HTTP exchange with GitHub (or none: ``status="error"``).

    `url` is what was requested (absolute, or a path of `base_url`); `remaining`
    is the answer's ``x-ratelimit-remaining``, when it has one. `route`, when the
    caller knows it (`template_route`), saves matching `url`, as long as the
    request stayed on GitHub's origin (a redirect elsewhere is `EXTERNAL_ROUTE`).
    """
    if route is None or not url.startswith(base_url):
        route = github_route(url, base_url)
    GITHUB_REQUESTS.labels(route=route, status=_status(status)).inc()
    if remaining is None:
        return
    value = remaining.strip()
    if value.isascii() and value.isdigit():
        label = installation_label(installation)
        GITHUB_RATE_LIMIT_REMAINING.labels(installation=label).set(int(value))


def installation_label(installation: int | str) -> str:
    """The installation label: its numeric id, or ``app``."""
    if isinstance(installation, int) and not isinstance(installation, bool):
        return str(installation)
    text = str(installation)
    return text if text.isascii() and text.isdigit() and len(text) <= 20 else APP_INSTALLATION


def forget_installation(installation: int | str) -> None:
    """Drop an installation's rate-limit series (it was uninstalled)."""
    with contextlib.suppress(KeyError):
        GITHUB_RATE_LIMIT_REMAINING.remove(installation_label(installation))


def _status(status: int | str) -> str:
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return str(status)
    return status if status in (NO_ANSWER, REFUSED) else NO_ANSWER


# Route templates. A token is a literal segment, a one-segment placeholder
# ``{name}``, or (at most one per template) ``{+name}``: one or more segments,
# since refs, paths and branch names contain slashes. First match wins.
_R = "/repos/{owner}/{repo}"
_TEMPLATES = (
    "/",
    "/app",
    "/app/installations",
    "/app/installations/{id}",
    "/app/installations/{id}/access_tokens",
    "/app/hook/config",
    "/app/hook/deliveries",
    "/installation/repositories",
    "/rate_limit",
    "/meta",
    "/user",
    "/users/{username}",
    "/users/{username}/installation",
    "/orgs/{org}",
    "/orgs/{org}/installation",
    "/repositories/{id}",
    _R,
    _R + "/installation",
    _R + "/git/ref/{+ref}",
    _R + "/git/refs",
    _R + "/git/refs/{+ref}",
    _R + "/git/matching-refs/{+ref}",
    _R + "/git/trees",
    _R + "/git/trees/{+sha}",
    _R + "/git/blobs",
    _R + "/git/blobs/{sha}",
    _R + "/git/commits",
    _R + "/git/commits/{sha}",
    _R + "/git/tags",
    _R + "/git/tags/{sha}",
    _R + "/commits",
    _R + "/commits/{+ref}/check-runs",
    _R + "/commits/{+ref}/check-suites",
    _R + "/commits/{+ref}/status",
    _R + "/commits/{+ref}/statuses",
    _R + "/commits/{+ref}/pulls",
    _R + "/commits/{+ref}",
    _R + "/statuses/{sha}",
    _R + "/compare/{+basehead}",
    _R + "/tarball/{+ref}",
    _R + "/zipball/{+ref}",
    _R + "/contents",
    _R + "/contents/{+path}",
    _R + "/branches",
    _R + "/branches/{+branch}/protection",
    _R + "/branches/{+branch}",
    _R + "/merges",
    _R + "/pulls",
    _R + "/pulls/{number}",
    _R + "/pulls/{number}/commits",
    _R + "/pulls/{number}/files",
    _R + "/pulls/{number}/reviews",
    _R + "/pulls/{number}/comments",
    _R + "/pulls/{number}/requested_reviewers",
    _R + "/pulls/{number}/merge",
    _R + "/pulls/{number}/update-branch",
    _R + "/issues",
    _R + "/issues/comments/{id}",
    _R + "/issues/{number}",
    _R + "/issues/{number}/labels",
    _R + "/issues/{number}/labels/{name}",
    _R + "/issues/{number}/comments",
    _R + "/labels",
    _R + "/labels/{name}",
    _R + "/check-runs",
    _R + "/check-runs/{id}",
    _R + "/check-runs/{id}/annotations",
    _R + "/check-suites",
    _R + "/check-suites/{id}",
    _R + "/check-suites/{id}/check-runs",
    _R + "/hooks",
    _R + "/collaborators/{username}/permission",
)


def _compile(template: str) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
    tokens = [t for t in template.split("/") if t]
    for i, token in enumerate(tokens):
        if token.startswith("{+"):
            return tuple(tokens[:i]), token, tuple(tokens[i + 1 :])
    return tuple(tokens), None, ()


#: (compiled, label): the label drops uritemplate's ``+`` (``{+ref}`` → ``{ref}``).
_PATTERNS = [(_compile(t), t.replace("{+", "{")) for t in _TEMPLATES]
#: Literal words a fallback route may keep: the first segment, and a repository's sub-resource.
_TOP_WORDS = frozenset(p[0][0] for p, _ in _PATTERNS if p[0])
_REPO_WORDS = frozenset(p[0][3] for p, _ in _PATTERNS if len(p[0]) > 3 and p[0][0] == "repos")


def _matches(token: str, segment: str) -> bool:
    return token.startswith("{") or token == segment


def _match(
    segments: list[str], head: tuple[str, ...], greedy: str | None, tail: tuple[str, ...]
) -> bool:
    if greedy is None:
        return len(segments) == len(head) and all(map(_matches, head, segments))
    if len(segments) < len(head) + 1 + len(tail):
        return False
    ends = segments[len(segments) - len(tail) :] if tail else []
    return all(map(_matches, head, segments)) and all(map(_matches, tail, ends))


@functools.lru_cache(maxsize=512)
def template_route(template: str) -> str:
    """`github_route` of a request's URL template (``/repos/{owner}/{repo}/pulls{/number}``):
    what its filled URLs get, computed once per template."""
    path = re.split(r"\{[?&]|\?", template, maxsplit=1)[0]
    # Expansions stand for one segment each; ``{+ref}`` may hold slashes, and a greedy
    # route takes it whole either way.
    return github_route(path.replace("{/", "/{"), "")


def github_route(url: str, base_url: str = GITHUB_API) -> str:
    """The route template of a GitHub API request, for a label of bounded cardinality.

    ``/repos/octo/hello/git/ref/heads/main`` → ``/repos/{owner}/{repo}/git/ref/{ref}``.
    A path outside the table keeps only known words: ``/repos/{owner}/{repo}/<kind>``
    (``{kind}`` if unknown) then ``/{rest}``, or ``/<top>`` (``{other}``) then ``/{rest}``.
    A URL on another origin than `base_url` (a redirect to an archive host) is
    `EXTERNAL_ROUTE`. The query is never looked at.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        path = parts.path
        if parts.scheme or parts.netloc:
            base = urllib.parse.urlsplit(base_url)
            if (parts.scheme.lower(), parts.netloc.lower()) != (
                base.scheme.lower(),
                base.netloc.lower(),
            ):
                return EXTERNAL_ROUTE
            prefix = base.path.rstrip("/")  # GitHub Enterprise Server: /api/v3
            if prefix:
                if path != prefix and not path.startswith(prefix + "/"):
                    return EXTERNAL_ROUTE
                path = path[len(prefix) :]
    except ValueError:
        return "/{other}"
    segments = [s for s in path.split("/") if s]
    for (head, greedy, tail), template in _PATTERNS:
        if _match(segments, head, greedy, tail):
            return template
    return _fallback(segments)


def _fallback(segments: list[str]) -> str:
    if not segments:
        return "/"
    if segments[0] == "repos" and len(segments) >= 3:
        if len(segments) == 3:
            return _R
        kind = segments[3] if segments[3] in _REPO_WORDS else "{kind}"
        return f"{_R}/{kind}" + ("/{rest}" if len(segments) > 4 else "")
    top = segments[0] if segments[0] in _TOP_WORDS else "{other}"
    return f"/{top}" + ("/{rest}" if len(segments) > 1 else "")


# -- registries -----------------------------------------------------------------------


class BoundedLabels:
    """Passes label values through until `limit` distinct ones were seen, then `OTHER`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
            return value


_registries = BoundedLabels(MAX_REGISTRIES)
_HOST = re.compile(r"[a-z0-9._:-]{1,253}")


def registry_label(url: URL | str) -> str:
    """``host[:port]`` of a registry request (port only when not the scheme's default).

    Only the authority's host and port are read: no userinfo, path or query.
    Internationalised names are in their ASCII (IDNA) form.
    """
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        host = (parsed.raw_host or "").lower()
        port = parsed.explicit_port
        default = parsed.is_default_port()
    except (ValueError, TypeError):
        return OTHER
    if not _HOST.fullmatch(host):
        return OTHER
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port is not None and not default else host


def observe_registry(url: URL | str, status: int | str) -> None:
    """One HTTP exchange with a registry or its token realm (``error``/``refused``: none)."""
    REGISTRY_REQUESTS.labels(
        registry=_registries(registry_label(url)), status=_status(status)
    ).inc()
