"""Webhook transport: sign and POST deliveries to each App's webhook URL, asynchronously and
in order per App, record every attempt, drop chosen deliveries, redeliver on request.

Delivery never blocks the action that caused it: `enqueue` appends to the App's queue and
(inside a running event loop) makes sure one task drains it; sync code outside any loop
leaves the queue to be drained by the next `enqueue`, `wait()` or the server's start-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from .sim import GitHubSim
    from .state import App

USER_AGENT = "GitHub-Hookshot/5f0c3a1"


@dataclass
class Delivery:
    """One delivery attempt (a redelivery is a new record with the same `id`)."""

    id: str  # X-GitHub-Delivery
    event: str
    action: str | None
    app_id: int
    installation_id: int | None
    hook_id: int
    url: str
    payload: dict
    body: bytes
    headers: dict[str, str]
    state: str = "pending"  # pending | delivered | failed | dropped
    status: int | None = None  # the receiver's HTTP status
    error: str | None = None  # connection error / timeout text
    redelivery: bool = False
    duration: float | None = None

    def summary(self) -> dict[str, Any]:
        """JSON form for the admin API (payload included, raw body and headers not)."""
        return {"id": self.id, "event": self.event, "action": self.action,
                "app_id": self.app_id, "installation_id": self.installation_id,
                "hook_id": self.hook_id, "url": self.url, "state": self.state,
                "status": self.status, "error": self.error, "redelivery": self.redelivery,
                "payload": self.payload}  # fmt: skip


@dataclass
class DropRule:
    event: str | None
    action: str | None
    app_id: int | None
    times: int | None  # None = until cleared

    def take(self, event: str, action: str | None, app_id: int) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if (self.event not in (None, event) or self.action not in (None, action)
                or self.app_id not in (None, app_id)):  # fmt: skip
            return False
        if self.times is not None:
            self.times -= 1
        return True


def sign(secret: str, body: bytes) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }  # fmt: skip


@dataclass
class WebhookSender:
    sim: GitHubSim
    deliveries: list[Delivery] = field(default_factory=list)
    drops: list[DropRule] = field(default_factory=list)
    timeout: float = 10.0  # GitHub gives receivers 10 s
    _queues: dict[int, deque[Delivery]] = field(default_factory=dict)
    _tasks: dict[int, asyncio.Task] = field(default_factory=dict)

    def enqueue(self, app: App, installation_id: int | None, event: str, payload: dict
                ) -> Delivery | None:  # fmt: skip
        """Record and queue one delivery (None when the App has no webhook URL)."""
        if not app.webhook_url:
            return None
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": str(app.hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(app.id),
        }
        if app.webhook_secret:
            headers.update(sign(app.webhook_secret, body))
        delivery = Delivery(id=delivery_id, event=event, action=payload.get("action"),
                            app_id=app.id, installation_id=installation_id, hook_id=app.hook_id,
                            url=app.webhook_url, payload=payload, body=body, headers=headers)  # fmt: skip
        self.deliveries.append(delivery)
        if any(rule.take(event, delivery.action, app.id) for rule in self.drops):
            delivery.state = "dropped"
            return delivery
        self._queues.setdefault(app.id, deque()).append(delivery)
        self.kick()
        return delivery

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a recorded delivery again: same `X-GitHub-Delivery`, body re-signed."""
        original = next((d for d in self.deliveries if d.id == delivery_id), None)
        if original is None:
            raise KeyError(f"no delivery {delivery_id}")
        app = self.sim.apps[original.app_id]
        headers = {k: v for k, v in original.headers.items() if not k.startswith("X-Hub-")}
        if app.webhook_secret:
            headers.update(sign(app.webhook_secret, original.body))
        again = Delivery(id=original.id, event=original.event, action=original.action,
                         app_id=app.id, installation_id=original.installation_id,
                         hook_id=app.hook_id, url=app.webhook_url or original.url,
                         payload=original.payload, body=original.body, headers=headers,
                         redelivery=True)  # fmt: skip
        self.deliveries.append(again)
        self._queues.setdefault(app.id, deque()).append(again)
        self.kick()
        return again

    def kick(self) -> None:
        """Start a drain task for every App with queued deliveries (needs a running loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # sync code outside a loop: drained later
        for app_id, queue in self._queues.items():
            task = self._tasks.get(app_id)
            if queue and (task is None or task.done() or task.get_loop() is not loop):
                self._tasks[app_id] = loop.create_task(self._drain(queue))

    def pending(self) -> int:
        """Deliveries queued or in flight."""
        return sum(d.state == "pending" for d in self.deliveries)

    async def _drain(self, queue: deque[Delivery]) -> None:
        # Checked again after the session closes: a delivery queued while it was closing
        # found this task still running, so `kick` started no other.
        while queue:
            async with aiohttp.ClientSession() as session:
                while queue:
                    await self._send(session, queue.popleft())

    async def _send(self, session: aiohttp.ClientSession, delivery: Delivery) -> None:
        start = time.monotonic()
        try:
            async with session.post(delivery.url, data=delivery.body, headers=delivery.headers,
                                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                                    allow_redirects=False) as resp:  # fmt: skip
                await resp.read()
                delivery.status = resp.status
                delivery.state = "delivered" if 200 <= resp.status < 300 else "failed"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            delivery.state = "failed"
            delivery.error = f"{type(exc).__name__}: {exc}"
        delivery.duration = time.monotonic() - start

    async def wait(self, timeout: float = 30.0) -> None:
        """Return once every queued delivery has been attempted (`TimeoutError` if not)."""
        deadline = time.monotonic() + timeout
        while True:
            self.kick()
            busy = [t for t in self._tasks.values() if not t.done()]
            if not busy:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.pending()} webhook deliveries still pending")
            await asyncio.wait(busy, timeout=remaining)

    async def aclose(self) -> None:
        """Cancel the drain tasks (queued deliveries stay queued, marked pending)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()


class HooksAPI:
    """Mixin of `GitHubSim`: webhook settings, deliveries and the drop knob."""

    hooks: WebhookSender

    @property
    def deliveries(self) -> list[Delivery]:
        return self.hooks.deliveries

    def set_webhook(self: GitHubSim, app_id: int, url: str | None, secret: str | None = None
                    ) -> None:  # fmt: skip
        """Where the App's deliveries go (None stops them) and the HMAC secret."""
        app = self.apps[int(app_id)]
        app.webhook_url, app.webhook_secret = url, secret

    def drop_deliveries(self, event: str | None = None, action: str | None = None,
                        times: int | None = 1, app_id: int | None = None) -> DropRule:  # fmt: skip
        """The next `times` matching deliveries are recorded as `dropped` and never sent."""
        rule = DropRule(event=event, action=action, app_id=app_id, times=times)
        self.hooks.drops.append(rule)
        return rule

    def clear_drops(self) -> None:
        self.hooks.drops.clear()

    async def wait_deliveries(self, timeout: float = 30.0) -> list[Delivery]:
        """Wait until every queued delivery was attempted; returns `sim.deliveries`."""
        await self.hooks.wait(timeout)
        return self.hooks.deliveries

    def redeliver(self, delivery_id: str) -> Delivery:
        return self.hooks.redeliver(delivery_id)
