"""``python -m bot run``: one reconcile of one repository with a plain token, then exit.

For GitHub Actions (``action.yml``) and anyone who cannot install a third-party App:
no App, no server, no database. The token is ``GITHUB_TOKEN`` (Actions' own, or any
token with ``contents: write`` and ``pull-requests: write`` on the repository).

What the App keeps in its database, a run finds again on GitHub, as the App does
when its database is lost: its PR by the bot's branch, and the PR's hidden block
(which change set it proposes, what was declined and merged). The store is an
in-memory one that lives for the run.

A token without ``checks: write`` (Actions' default) cannot create the check run:
its report goes to the job log instead, annotations as workflow commands
(``::warning file=…,line=…::…``) that Actions shows on the files, and the run still
succeeds. The problems are also in each PR's body, in a collapsed section that
changes only when they do. Exit status: 0 when the run completed, 1 when GitHub or the registries
could not be reached (nothing half-done: the next run goes on), 2 for a bad setup.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import aiohttp

from bot.checkrun import CheckRun
from bot.github.auth import DEFAULT_API_URL
from bot.github.client import TokenClient
from bot.github.errors import GitHubError
from bot.github.repo import split_full_name
from bot.github.trees import BlobCache, TreeCache
from bot.reconcile import Deps, reconcile
from bot.registry.addresses import registry_session
from bot.registry.credentials import CredentialStore
from bot.registry.errors import CredentialsError
from bot.registry.scanner import RegistryScanner
from bot.registry.source import RegistryTagSource
from bot.store import Store

#: The one installation id of a run's in-memory store (a plain token has none).
NO_INSTALLATION = 0


class RunError(Exception):
    """The run cannot start; the message says what to set."""


class OneToken:
    """`bot.reconcile.Connections` for one token: the same client whatever the installation."""

    def __init__(self, client: TokenClient) -> None:
        self._client = client
        self._blobs = BlobCache()
        self._trees = TreeCache()

    def client(self, installation_id: int) -> TokenClient:  # type: ignore[override]
        return self._client

    def blobs(self, installation_id: int) -> BlobCache:
        return self._blobs

    def trees(self, installation_id: int) -> TreeCache:
        return self._trees


def run_target(environ: Mapping[str, str], repository: str | None) -> tuple[str, str, str]:
    """(repository, token, API URL) from the arguments and the environment."""
    repository = repository or environ.get("GITHUB_REPOSITORY", "").strip()
    token = environ.get("GITHUB_TOKEN", "").strip()
    missing = [
        what
        for what, value in (
            ("--repository OWNER/REPO (or GITHUB_REPOSITORY)", repository),
            ("GITHUB_TOKEN", token),
        )  # fmt: skip
        if not value
    ]
    if missing:
        raise RunError(f"{' and '.join(missing)} must be set")
    try:
        split_full_name(repository)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    api_url = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
    return repository, token, api_url


def to_job_log(check: CheckRun, out: TextIO) -> None:
    """A check run the token may not create, written to the job log instead."""
    print(f"== {check.title} ({check.conclusion}) on {check.head_sha[:12]}", file=out)
    print(check.summary, file=out)
    if check.text:
        print(check.text, file=out)
    for annotation in check.annotations:
        print(_workflow_command(annotation), file=out)
    out.flush()


def _workflow_command(annotation: Mapping[str, Any]) -> str:
    level = {"failure": "error", "warning": "warning"}.get(
        annotation.get("annotation_level"), "notice"
    )
    where = (
        f"file={_property(str(annotation.get('path', '')))},line={annotation.get('start_line', 1)}"
    )
    if annotation.get("start_column"):
        where += f",col={annotation['start_column']}"
    return f"::{level} {where}::{_data(str(annotation.get('message', '')))}"


def _data(text: str) -> str:
    # Actions' escaping of a workflow command's message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


async def run_once(
    repository: str, *, token: str, api_url: str, environ: Mapping[str, str], out: TextIO
) -> int:
    credentials = CredentialStore.load(environ.get("REGISTRY_CREDENTIALS") or None)
    store = Store.open("sqlite:///:memory:")
    store.add_repository(repository, NO_INSTALLATION, due_in=0)
    timeout = aiohttp.ClientTimeout(total=60)
    # No address policy, as for `plan`: whoever runs this picked the registries.
    async with aiohttp.ClientSession(timeout=timeout) as session, registry_session(None) as http:
        client = TokenClient(session, token=token, base_url=api_url)
        scanner = RegistryScanner(http, credentials)
        deps = Deps(
            store=store,
            github=OneToken(client),
            tag_source=lambda name, pushed=None: RegistryTagSource(
                scanner, github_repository=name, pushed=pushed
            ),
            checks_refused=lambda check: to_job_log(check, out),
            problems_in_pr=True,
        )
        try:
            outcome = await reconcile(deps, repository)
        except GitHubError as exc:
            print(
                f"run: {repository}: {exc}; nothing was left half-done, run again", file=sys.stderr
            )
            return 1
        finally:
            store.close()
    for name, status in sorted(outcome.automations.items()):
        print(f"{repository}: {name}: {status}", file=out)
    if outcome.short_circuited:
        print(f"{repository}: nothing changed since the last run", file=out)
    return 0


def main(repository: str | None, *, out: TextIO = sys.stdout) -> int:
    import asyncio

    try:
        name, token, api_url = run_target(os.environ, repository)
        return asyncio.run(
            run_once(name, token=token, api_url=api_url, environ=os.environ, out=out)
        )
    except (RunError, CredentialsError) as exc:  # a setup to fix, not a run that failed
        print(f"run: {exc}", file=sys.stderr)
        return 2
