"""Rows to records, and the read every run starts from (`read_snapshots`).

Shared by `bot.store.store`, whose calls read one repository, and
`bot.store.schedule`, whose claim reads the snapshots of every repository it
takes in the same transaction: a no-op run then makes no database call of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.policy.model import LatestRef
from bot.store import schema as t
from bot.store.records import AutomationState, RepositoryRecord, RunSnapshot

AUTOMATION_COLUMNS = tuple(f.name for f in fields(AutomationState) if f.compare)
REPOSITORY_COLUMNS = (
    t.repositories.c.full_name,
    t.repositories.c.installation_id,
    t.repositories.c.default_branch,
    t.repositories.c.head_sha,
    t.repositories.c.config_sha,
    t.repositories.c.config_text,
    t.repositories.c.dirty,
    t.repositories.c.policy_errors,
    t.repositories.c.deferred,
)

# Built once: SQLAlchemy then reuses their cache keys and compiled SQL. The name lists
# are expanded at execution ("IN (…)" with one parameter per name).
_NAMES = sa.bindparam("names", expanding=True)
_REPOSITORIES = (
    sa.select(*REPOSITORY_COLUMNS, t.installations.c.suspended)
    .select_from(
        t.repositories.outerjoin(
            t.installations, t.installations.c.id == t.repositories.c.installation_id
        )
    )
    .where(t.repositories.c.full_name.in_(_NAMES))
)
_LATEST = sa.select(
    t.policies.c.repository,
    t.policies.c.policy,
    t.policies.c.name,
    t.policies.c.tag,
    t.policies.c.digest,
).where(t.policies.c.repository.in_(_NAMES))
_PUSHED = (
    sa.select(t.repository_images.c.repository, t.image_events.c.image, t.image_events.c.pushed_at)
    .select_from(
        t.repository_images.join(
            t.image_events, t.image_events.c.image == t.repository_images.c.image
        )
    )
    .where(t.repository_images.c.repository.in_(_NAMES))
)
_AUTOMATIONS = sa.select(*(t.automations.c[n] for n in AUTOMATION_COLUMNS)).where(
    t.automations.c.repository.in_(_NAMES)
)


def read_snapshots(db: Connection, names: Sequence[str]) -> dict[str, RunSnapshot]:
    """The `RunSnapshot` of each known repository of `names`, in four statements."""
    if not names:
        return {}
    parameters = {"names": list(names)}
    snapshots = {
        row[0]: RunSnapshot(
            record=repository_from_row(row),
            suspended=bool(row[-1]),
            latest={},
            automations={},
        )
        for row in db.execute(_REPOSITORIES, parameters)
    }
    for row in db.execute(_LATEST, parameters):
        snapshot = snapshots.get(row[0])
        if snapshot is not None:
            snapshot.latest[row[1]] = LatestRef(name=row[2], tag=row[3], digest=row[4])
    for row in db.execute(_PUSHED, parameters):
        snapshot = snapshots.get(row[0])
        if snapshot is not None:
            snapshot.pushed[row[1]] = row[2]
    for row in db.execute(_AUTOMATIONS, parameters):
        snapshot = snapshots.get(row[0])
        if snapshot is not None:
            state = automation_from_row(row)
            snapshot.automations[state.automation] = state
    return snapshots


def repository_from_row(row: sa.Row) -> RepositoryRecord:
    config_text = row[5]
    return RepositoryRecord(
        full_name=row[0],
        installation_id=row[1],
        default_branch=row[2],
        head_sha=row[3],
        config_sha=row[4],
        # SQLite hands back what was stored; a BLOB may come back as a memoryview.
        config_text=bytes(config_text) if config_text is not None else None,
        dirty=int(row[6]),
        policy_errors=json.loads(row[7] or "{}"),
        deferred=json.loads(row[8] or "[]"),
    )


def automation_from_row(row: sa.Row) -> AutomationState:
    values = dict(zip(AUTOMATION_COLUMNS, row, strict=True))
    values["pr_labels"] = json.loads(values["pr_labels"] or "[]")
    values["taken_over"] = bool(values["taken_over"])
    values["taken_over_noted"] = bool(values["taken_over_noted"])
    return AutomationState(**values, loaded_taken_over=values["taken_over"], stored=True)
