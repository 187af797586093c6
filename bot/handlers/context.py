"""What webhook handlers may touch: the store and the scheduler, nothing on the network.

Handlers only record facts and ask for runs, so a delivery is acknowledged in
milliseconds; the reconcile that follows does the GitHub and registry work.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from bot.store import Store


class RunQueue(Protocol):
    def enqueue(self, repository: str) -> None: ...
    def enqueue_all(self, repositories: Collection[str]) -> None: ...
    def forget(self, repository: str) -> None: ...


@dataclass
class Services:
    store: Store
    scheduler: RunQueue
    #: Called when an installation goes away: drop its token, client and caches.
    forget_installation: Callable[[int], None] = field(default=lambda _id: None)
    #: Called for an installation whose repositories a delivery does not list ("all
    #: repositories"): list them from GitHub, in the background (`bot.discovery`).
    list_repositories: Callable[[int], None] = field(default=lambda _id: None)
