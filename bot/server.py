"""``python -m bot serve``: build everything from the environment (design §7) and run.

One aiohttp session for GitHub, one for registries (under the address policy,
`bot.registry.addresses`), one registry scanner (tag lists shared across
installations, credentials checked per repository), one GitHub client and
blob cache per installation, one store, one scheduler, one web app.
SIGTERM/SIGINT stop it gracefully: no new runs, running ones may finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from bot import registryevents
from bot.discovery import REDISCOVERY_INTERVAL, InstallationListing, keep_rediscovering
from bot.github.auth import AppCredentials, CredentialsError, TokenCache
from bot.github.client import DEFAULT_WRITE_INTERVAL, AppClient, GitHubClient
from bot.github.errors import AuthenticationFailed, GitHubError, NotFound, PermissionDenied
from bot.github.trees import BlobCache, TreeCache
from bot.handlers import Services
from bot.logs import configure_logging, set_replica
from bot.planner import (
    MAX_BYTES_SETTING,
    MAX_FILES_SETTING,
    MAX_MARKED_FILES_SETTING,
    MAX_SECONDS_SETTING,
    PlanBudget,
)
from bot.reconcile import FULL_RUNS, Deps, run_repository
from bot.registry.addresses import ALLOWED_ADDRESSES_VARIABLE, AddressPolicy, registry_session
from bot.registry.credentials import CredentialStore
from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner
from bot.registry.source import RegistryTagSource
from bot.registry.transport import ClientSettings
from bot.scheduler import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LEASE,
    DEFAULT_TICK,
    SHUTDOWN_GRACE,
    Scheduler,
    replica_name,
)
from bot.store import DEFAULT_DATABASE_URL, Store, StoreError
from bot.web import make_app
from bot.workers import Workers, default_processes

log = logging.getLogger("bot")

DEFAULT_PORT = 3000
#: Seconds a reconcile may wait in place for a rate limit (a short ``retry-after``).
RATE_LIMIT_MAX_WAIT = 10.0
#: Repositories a fresh database learns of (rediscovery) are first due spread over this
#: many seconds, so a new replica set does not run them all in its first minute.
DEFAULT_FIRST_RUN_SPREAD = 300.0


class SetupError(Exception):
    """The environment cannot run the app; the message says which variable to fix."""


class InstallationClients:
    """A GitHub client, a blob cache and a tree cache per installation, made on first use."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        creds: AppCredentials,
        tokens: TokenCache,
        **client_options: Any,
    ) -> None:
        self._session = session
        self._creds = creds
        self._tokens = tokens
        self._client_options = client_options  # write_interval, sleep...: see GitHubClient
        self._clients: dict[int, GitHubClient] = {}
        self._blobs: dict[int, BlobCache] = {}
        self._trees: dict[int, TreeCache] = {}

    def client(self, installation_id: int) -> GitHubClient:
        if installation_id not in self._clients:
            self._clients[installation_id] = GitHubClient(
                self._session,
                creds=self._creds,
                tokens=self._tokens,
                installation_id=installation_id,
                **self._client_options,
            )
        return self._clients[installation_id]

    def blobs(self, installation_id: int) -> BlobCache:
        # Per installation only: content one installation can read is not another's.
        return self._blobs.setdefault(installation_id, BlobCache())

    def trees(self, installation_id: int) -> TreeCache:
        # Per installation, like blobs: a tree lists what only that installation may read.
        return self._trees.setdefault(installation_id, TreeCache())

    def forget(self, installation_id: int) -> None:
        self._clients.pop(installation_id, None)
        self._blobs.pop(installation_id, None)
        self._trees.pop(installation_id, None)
        self._tokens.invalidate(installation_id)


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SetupError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SetupError(f"{name}={raw!r} must not be negative")
    return value


def _budget(environ: Mapping[str, str]) -> PlanBudget:
    """The per-automation budget from the environment; 0 lifts a limit."""
    default = PlanBudget()

    def limit(name: str, value: float | None) -> float | None:
        chosen = _number(environ, name, value or 0)
        return chosen or None

    def whole(name: str, value: int | None) -> int | None:
        chosen = limit(name, value)
        return None if chosen is None else int(chosen)

    return PlanBudget(
        max_files=whole(MAX_FILES_SETTING, default.max_files),
        max_bytes=whole(MAX_BYTES_SETTING, default.max_bytes),
        max_marked_files=whole(MAX_MARKED_FILES_SETTING, default.max_marked_files),
        max_seconds=limit(MAX_SECONDS_SETTING, default.max_seconds),
    )


def _registry_limits(environ: Mapping[str, str]) -> ClientSettings:
    """How far one scan may page (a registry can't make it endless)."""
    default = ClientSettings()

    def positive(name: str, value: int) -> int:
        chosen = int(_number(environ, name, value))
        if chosen < 1:
            raise SetupError(f"{name} must be at least 1")
        return chosen

    return replace(
        default,
        max_pages=positive("REGISTRY_MAX_PAGES", default.max_pages),
        max_tags=positive("REGISTRY_MAX_TAGS", default.max_tags),
    )


async def serve(environ: Mapping[str, str], *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or until `stop` is set)."""
    from bot.settings import missing  # the table names this module's defaults

    absent = missing(environ)
    if absent:
        raise SetupError(
            f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not set; "
            "`python -m bot serve --help` lists every variable"
        )
    secret = environ.get("WEBHOOK_SECRET", "")
    if not secret:
        raise SetupError(
            "WEBHOOK_SECRET is not set: set it to the app's webhook secret "
            "(the bot refuses unsigned deliveries)"
        )
    creds = AppCredentials.from_env(environ)
    port = int(_number(environ, "PORT", DEFAULT_PORT))
    host = environ.get("HOST", "").strip() or "0.0.0.0"
    registry_credentials = CredentialStore.load(environ.get("REGISTRY_CREDENTIALS") or None)
    # Registry hosts come from repositories: refuse internal addresses (issue 8 §2).
    address_policy = AddressPolicy.from_environment(
        environ.get(ALLOWED_ADDRESSES_VARIABLE), registry_credentials
    )
    budget = _budget(environ)
    processes = int(_number(environ, "WORKERS", default_processes()))
    first_run_spread = _number(environ, "FIRST_RUN_SPREAD_SECONDS", DEFAULT_FIRST_RUN_SPREAD)
    lease = _number(environ, "LEASE_SECONDS", DEFAULT_LEASE) or DEFAULT_LEASE
    holder = environ.get("REPLICA_NAME", "").strip() or replica_name()
    set_replica(holder)
    store = Store.open(
        environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
        first_run_spread=first_run_spread,
    )
    stop = stop or asyncio.Event()
    # Planning and tag ranking run here, off the event loop that acknowledges webhooks.
    workers = Workers(processes)

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    # Its own session: the address policy is for registries only, not for GitHub.
    registry_http = registry_session(address_policy, timeout=aiohttp.ClientTimeout(total=60))
    runner: web.AppRunner | None = None
    scheduler: Scheduler | None = None
    discovery: asyncio.Task | None = None
    listing: InstallationListing | None = None
    try:
        tokens = AppClient(session, creds=creds).token_cache()
        clients = InstallationClients(
            session,
            creds,
            tokens,
            write_interval=_number(environ, "WRITE_INTERVAL", DEFAULT_WRITE_INTERVAL),
            # A rate limit that clears later than this postpones the repository rather
            # than hold a worker (`bot.scheduler.Postpone`).
            max_wait=RATE_LIMIT_MAX_WAIT,
        )
        scanner = RegistryScanner(
            registry_http, registry_credentials, settings=_registry_limits(environ)
        )
        concurrency = int(_number(environ, "CONCURRENCY", DEFAULT_CONCURRENCY)) or 1
        deps = Deps(
            store=store,
            github=clients,
            tag_source=lambda github_repository, pushed=None: RegistryTagSource(
                scanner, github_repository=github_repository, pushed=pushed
            ),
            workers=workers,
            budget=budget,
            full_runs=asyncio.Semaphore(min(FULL_RUNS, concurrency)),
        )
        scheduler = Scheduler(
            lambda claim: run_repository(deps, claim.repository, snapshot=claim.snapshot),
            store.schedule,
            holder=holder,
            concurrency=concurrency,
            tick=_number(environ, "TICK_SECONDS", DEFAULT_TICK) or DEFAULT_TICK,
            lease=lease,
        )
        listing = InstallationListing(clients.client, store, scheduler)
        services = Services(
            store=store,
            scheduler=scheduler,
            forget_installation=clients.forget,
            list_repositories=listing.start,
        )
        app_client = AppClient(session, creds=creds)
        await _check_app(app_client, creds)
        runner = web.AppRunner(
            make_app(
                services,
                secret=secret,
                github_probe=lambda: app_client.getitem("/app"),
                registry_tokens={
                    kind.name: environ[kind.setting].strip()
                    for kind in registryevents.KINDS
                    if environ.get(kind.setting, "").strip()
                },
            ),
            access_log=None,
        )
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        # Nothing is enqueued here: the due times are in the database already.
        scheduler.start()
        # Installations and repositories no webhook told of (a new or restored database).
        discovery = asyncio.create_task(
            keep_rediscovering(
                app_client,
                clients.client,
                store,
                scheduler,
                first_run_spread=first_run_spread,
                interval=_number(environ, "REDISCOVERY_SECONDS", REDISCOVERY_INTERVAL)
                or REDISCOVERY_INTERVAL,
            )
        )
        # Before saying so: a SIGTERM right after the line must shut down gracefully.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        log.info(
            "listening on %s:%s (API %s, database %s, replica %s)",
            host,
            port,
            creds.base_url,
            store.backend,
            holder,
        )

        await stop.wait()
        log.info("shutting down")
    finally:
        if discovery is not None:
            discovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await discovery
        if scheduler is not None:
            scheduler.stop_claiming()  # no new runs; deliveries may still be stored
        if runner is not None:
            await runner.cleanup()  # no new deliveries
        if listing is not None:
            await listing.close()
        if scheduler is not None:
            await scheduler.stop(grace=SHUTDOWN_GRACE)
        await session.close()
        await registry_http.close()
        workers.close()
        store.close()


async def _check_app(app_client: AppClient, creds: AppCredentials) -> None:
    """Ask GitHub who the App is before listening: refused credentials stop the start-up.

    GitHub out of reach does not: the bot starts, and /readyz says it is not ready.
    """
    try:
        app = await app_client.getitem("/app")
    except (AuthenticationFailed, PermissionDenied, NotFound) as exc:
        raise SetupError(
            f"GitHub ({creds.base_url}) refuses the App's credentials: {exc}; check that "
            "APP_ID is the App's id and PRIVATE_KEY (or PRIVATE_KEY_PATH) one of its keys"
        ) from None
    except GitHubError as exc:
        log.warning("GitHub does not answer yet (%s); starting anyway: /readyz says so", exc)
        return
    log.info("GitHub knows this App as %s (id %s)", app.get("slug"), app.get("id"))


def main(environ: Mapping[str, str]) -> int:
    """Exit status: 0 after a clean shutdown, 2 when the environment is unusable."""
    try:
        configure_logging(environ)
    except ValueError as exc:
        print(f"image-automation bot cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(environ))
    except (SetupError, CredentialsError, StoreError, RegistryError) as exc:
        print(f"image-automation bot cannot start: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"image-automation bot cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
