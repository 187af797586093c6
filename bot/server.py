"""``python -m bot serve``: build everything from the environment (design §7) and run.

One aiohttp session, one registry scanner (tag lists shared across
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
from typing import Any

import aiohttp
from aiohttp import web

from bot.github.auth import AppCredentials, CredentialsError, TokenCache
from bot.github.client import DEFAULT_WRITE_INTERVAL, AppClient, GitHubClient
from bot.github.trees import BlobCache
from bot.handlers import Services
from bot.reconcile import Deps, run_repository
from bot.registry.credentials import CredentialStore
from bot.registry.errors import RegistryError
from bot.registry.scanner import RegistryScanner
from bot.registry.source import RegistryTagSource
from bot.scheduler import DEFAULT_CONCURRENCY, DEFAULT_TICK, SHUTDOWN_GRACE, Scheduler
from bot.store import Store, StoreError
from bot.store.sqlite import DEFAULT_DATABASE_URL
from bot.web import make_app

log = logging.getLogger("bot")

DEFAULT_PORT = 3000


class SetupError(Exception):
    """The environment cannot run the app; the message says which variable to fix."""


class InstallationClients:
    """A GitHub client and a blob cache per installation, made on first use."""

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

    def forget(self, installation_id: int) -> None:
        self._clients.pop(installation_id, None)
        self._blobs.pop(installation_id, None)
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


def _configure_logging(environ: Mapping[str, str]) -> None:
    level = environ.get("LOG_LEVEL", "info").strip().upper() or "INFO"
    level = {"TRACE": "DEBUG", "FATAL": "CRITICAL", "WARN": "WARNING"}.get(level, level)
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def serve(environ: Mapping[str, str], *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or until `stop` is set)."""
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
    store = Store.open(environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
    stop = stop or asyncio.Event()

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    runner: web.AppRunner | None = None
    scheduler: Scheduler | None = None
    try:
        tokens = AppClient(session, creds=creds).token_cache()
        clients = InstallationClients(
            session,
            creds,
            tokens,
            write_interval=_number(environ, "WRITE_INTERVAL", DEFAULT_WRITE_INTERVAL),
        )
        scanner = RegistryScanner(session, registry_credentials)
        deps = Deps(
            store=store,
            github=clients,
            tag_source=lambda github_repository: RegistryTagSource(
                scanner, github_repository=github_repository
            ),
        )
        scheduler = Scheduler(
            lambda repository: run_repository(deps, repository),
            concurrency=int(_number(environ, "CONCURRENCY", DEFAULT_CONCURRENCY)) or 1,
            tick=_number(environ, "TICK_SECONDS", DEFAULT_TICK) or DEFAULT_TICK,
        )
        services = Services(store=store, scheduler=scheduler, forget_installation=clients.forget)
        runner = web.AppRunner(make_app(services, secret=secret), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        scheduler.start()
        for record in store.repositories():  # catch up on whatever happened while down
            scheduler.enqueue(record.full_name)
        log.info("listening on %s:%s (API %s)", host, port, creds.base_url)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
    finally:
        if runner is not None:
            await runner.cleanup()  # no new deliveries first
        if scheduler is not None:
            await scheduler.stop(grace=SHUTDOWN_GRACE)
        await session.close()
        store.close()


def main(environ: Mapping[str, str]) -> int:
    """Exit status: 0 after a clean shutdown, 2 when the environment is unusable."""
    _configure_logging(environ)
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
