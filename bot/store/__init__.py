"""Persisted state of the running app: SQLite (embedded) or PostgreSQL (replicas).

`Store.open(DATABASE_URL)` gives the one store of the process (`store.py`); its
`schedule` says when each repository runs and which replica holds it
(`schedule.py`). Tables are in `schema.py`, migrations in `migrations/`.
"""

from bot.store.database import DEFAULT_DATABASE_URL, StoreError
from bot.store.records import AutomationState, Claim, RepositoryRecord, RunSnapshot
from bot.store.schedule import Schedule
from bot.store.store import Store

__all__ = [
    "DEFAULT_DATABASE_URL",
    "AutomationState",
    "Claim",
    "RepositoryRecord",
    "RunSnapshot",
    "Schedule",
    "Store",
    "StoreError",
]
