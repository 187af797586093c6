"""Persisted state of the running app (stdlib sqlite3).

`Store.open(DATABASE_URL)` gives the one store of the process; see `sqlite.py`.
"""

from bot.store.sqlite import (
    AutomationState,
    RepositoryRecord,
    Store,
    StoreError,
)

__all__ = ["AutomationState", "RepositoryRecord", "Store", "StoreError"]
