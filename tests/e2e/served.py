"""`python -m bot serve` as a real process, wired to the simulator, which sends its webhooks.

`Served` starts the bot with the App's key, a database in a temp dir and the
simulator's URL, registers the bot's webhook URL and secret on the App, and
waits until it listens. Everything the bot learns then comes the way it does in
production: deliveries signed by the simulator, the REST API, the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.datapaths import REPO as CHECKOUT
from tests.registryharness.registry_proc import free_port

SECRET = "e2e-webhook-secret"


class Served:
    def __init__(
        self,
        tmp_path: Path,
        github_sim,
        app_key,
        *,
        extra_env: dict | None = None,
        name: str = "bot",
    ):
        """`name` names the log file (``<name>.log``), so that several replicas can share
        `tmp_path`. The App is registered afresh (without a webhook): build every
        replica before starting any."""
        self.name = name
        self.sim = github_sim.sim
        app_id, private_pem, public_pem = app_key
        self.app_id = app_id
        self.sim.register_app(app_id=app_id, public_key_pem=public_pem)
        key = tmp_path / "app.pem"
        key.write_text(private_pem)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "APP_ID": str(app_id),
            "PRIVATE_KEY_PATH": str(key),
            "WEBHOOK_SECRET": SECRET,
            "GITHUB_API_URL": github_sim.url,
            "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "WRITE_INTERVAL": "0",
            "TICK_SECONDS": "0.2",
            # Rediscovered repositories run at once, not spread over five minutes.
            "FIRST_RUN_SPREAD_SECONDS": "0",
            "LOG_LEVEL": "info",
            # The test registries listen on loopback, which serve refuses unless allowed.
            "REGISTRY_ALLOWED_ADDRESSES": "127.0.0.1",
            **(extra_env or {}),
        }
        self.log = tmp_path / f"{name}.log"
        self.process: subprocess.Popen | None = None

    async def start(self, *, webhook: bool = True) -> None:
        """Start and wait until it listens. `webhook`: the App's deliveries come here (the
        simulator's App has one webhook URL; other replicas learn of work from the database)."""
        if webhook:
            self.sim.set_webhook(self.app_id, f"{self.url}/api/github/webhooks", SECRET)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=CHECKOUT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool:
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await self.wait_until(healthy, what="the bot to listen", timeout=30)

    async def stop(self) -> int:
        """SIGTERM and wait; the exit code (0 for a clean shutdown)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            # In a thread: the simulator shares this loop and must answer the bot meanwhile.
            return await asyncio.to_thread(self.process.wait, timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    async def kill(self) -> float:
        """SIGKILL, as a node dies: no shutdown, leases left to expire. Returns the time
        (`time.time()`) by which the process was certainly dead. Only the process itself
        is killed: run it with ``WORKERS=0`` so that it has no worker processes."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, timeout=30)
        return time.time()

    def text(self) -> str:
        return self.log.read_text()

    async def wait_until(self, predicate, *, what: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"bot exited {self.process.returncode}:\n{self.text()[-4000:]}"
                )
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(0.1)
        deliveries = "\n".join(
            f"  {d.event} {d.action or ''}: {d.state} {d.error or ''}" for d in self.sim.deliveries
        )
        raise AssertionError(
            f"timed out waiting for {what}; webhook deliveries:\n{deliveries}\n"
            f"bot log:\n{self.text()[-4000:]}"
        )

    # -- what a test waits for -------------------------------------------------------

    def open_pulls(self, repository: str) -> list[dict]:
        return [p for p in self.sim.pulls(repository) if p["state"] == "open"]

    async def pull_opened(self, repository: str, *, count: int = 1) -> list[dict]:
        async def opened():
            pulls = self.open_pulls(repository)
            return pulls if len(pulls) >= count else None

        return await self.wait_until(opened, what=f"{count} open pull request(s)")

    async def check_run(self, repository: str, predicate=lambda check: True) -> dict:
        async def found():
            return next((c for c in self.sim.check_runs(repository) if predicate(c)), None)

        return await self.wait_until(found, what="the check run")

    async def log_line(self, fragment: str, *, count: int = 1) -> None:
        async def logged():
            return self.text().count(fragment) >= count

        await self.wait_until(logged, what=f"{fragment!r} in the log")


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, github_sim, app_key, **env: str) -> AsyncIterator[Served]:
    """The bot running with `env` on top of the defaults; it must stop cleanly (exit 0)."""
    served = Served(tmp_path, github_sim, app_key, extra_env=env)
    await served.start()
    try:
        yield served
    finally:
        code = await served.stop()
        assert code == 0, served.text()[-4000:]


def run_serve(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m bot serve` with exactly `env`, to its end (for start-ups that must fail)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
