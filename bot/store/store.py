"""The app's persisted state, on SQLite or PostgreSQL through SQLAlchemy Core.

What is kept, and why, is in `bot.store.schema`; the schedule's leases are in
`bot.store.schedule`. Every call is one short transaction, so nothing stays
open between calls and a failed write leaves nothing half-done. Callers see
typed records (`bot.store.records`), never SQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.policy.model import LatestRef
from bot.store import schema as t
from bot.store.database import DEFAULT_DATABASE_URL, StoreError, open_engine, reader
from bot.store.outcomes import PullRequestOutcomes
from bot.store.records import AutomationState, RepositoryRecord, RunSnapshot
from bot.store.rows import (
    AUTOMATION_COLUMNS,
    REPOSITORY_COLUMNS,
    automation_from_row,
    read_snapshots,
    repository_from_row,
)
from bot.store.schedule import Schedule

__all__ = ["DEFAULT_DATABASE_URL", "Store", "StoreError"]

#: Delivery ids older than this are forgotten (GitHub redelivers for about 3 days).
DELIVERY_RETENTION = 14 * 24 * 3600.0
#: At most this many expired delivery ids are deleted with each recorded delivery: an
#: indexed, bounded delete instead of a scan of the table. Deliveries expire as fast as
#: they arrive, so this keeps up, and drains a backlog by up to this many at a time.
DELIVERY_EXPIRY_BATCH = 100


class Store(PullRequestOutcomes):
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._clock = clock
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        #: When each repository runs next, and which replica holds it.
        self.schedule = Schedule(engine, clock=clock)
        #: `first_seen` answers by (image, tag list): a first sighting never changes.
        self._first_seen_memo: dict[tuple[str, int], dict[str, float]] = {}

    @classmethod
    def open(
        cls,
        url: str = DEFAULT_DATABASE_URL,
        *,
        clock: Callable[[], float] = time.time,
        first_run_spread: float = 0.0,
    ) -> Store:
        return cls(open_engine(url, first_run_spread=first_run_spread), clock=clock)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    def _write(self, *statements: sa.Executable) -> None:
        with self._engine.begin() as db:
            for statement in statements:
                db.execute(statement)

    def _read(self, statement: sa.Executable) -> list[sa.Row[Any]]:
        with self._reader.begin() as db:
            return db.execute(statement).fetchall()

    # -- webhook deliveries -------------------------------------------------

    def delivery_seen(self, delivery_id: str) -> bool:
        query = sa.select(sa.literal(1)).where(t.deliveries.c.id == delivery_id)
        return bool(self._read(query))

    def record_delivery(self, delivery_id: str, event: str) -> None:
        """Remember the delivery; forget at most `DELIVERY_EXPIRY_BATCH` expired ones."""
        now = self._clock()
        expired = (
            sa.select(t.deliveries.c.id)
            .where(t.deliveries.c.received_at < now - DELIVERY_RETENTION)
            .order_by(t.deliveries.c.received_at)
            .limit(DELIVERY_EXPIRY_BATCH)
        )
        self._write(
            self._insert(t.deliveries)
            .values(id=delivery_id, event=event, received_at=now)
            .on_conflict_do_nothing(),
            t.deliveries.delete().where(t.deliveries.c.id.in_(expired.scalar_subquery())),
        )

    # -- health -------------------------------------------------------------

    def check_writable(self) -> None:
        """Readiness: commit one tiny write now; raise `StoreError` saying why it failed.

        A real write, not a look at permissions: only a commit that reaches the
        database proves the next delivery can be stored (read-only file or mount,
        full disk, lost lock, a server gone). It updates one row. After a failure
        nothing is left half-done, and the next probe simply tries again: no
        restart is needed once the cause is gone.
        """
        statement = self._insert(t.health).values(id=1, probed_at=self._clock())
        try:
            self._write(
                statement.on_conflict_do_update(
                    index_elements=[t.health.c.id],
                    set_={"probed_at": statement.excluded.probed_at},
                )
            )
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"database not writable: {reason}") from exc

    # -- installations ------------------------------------------------------

    def upsert_installation(
        self, installation_id: int, *, account: str = "", permissions: Mapping | None = None
    ) -> None:
        values = {
            "id": installation_id,
            "account": account,
            "permissions": json.dumps(dict(permissions or {}), sort_keys=True),
        }
        statement = self._insert(t.installations).values(**values)
        self._write(
            statement.on_conflict_do_update(
                index_elements=[t.installations.c.id],
                set_={
                    "account": statement.excluded.account,
                    "permissions": statement.excluded.permissions,
                },
            )
        )

    def installation_known(self, installation_id: int) -> bool:
        query = sa.select(sa.literal(1)).where(t.installations.c.id == installation_id)
        return bool(self._read(query))

    def installation_permissions(self, installation_id: int) -> dict[str, str]:
        rows = self._read(
            sa.select(t.installations.c.permissions).where(t.installations.c.id == installation_id)
        )
        return json.loads(rows[0][0]) if rows else {}

    def set_suspended(self, installation_id: int, suspended: bool) -> None:
        self._write(
            t.installations.update()
            .where(t.installations.c.id == installation_id)
            .values(suspended=suspended)
        )

    def is_suspended(self, installation_id: int) -> bool:
        rows = self._read(
            sa.select(t.installations.c.suspended).where(t.installations.c.id == installation_id)
        )
        return bool(rows and rows[0][0])

    def delete_installation(self, installation_id: int) -> list[str]:
        """Forget the installation and everything about its repositories; returns them."""
        with self._engine.begin() as db:
            names = self._installation_repositories(db, installation_id)
            for full_name in names:
                self._remove_repository(db, full_name)
            db.execute(t.installations.delete().where(t.installations.c.id == installation_id))
        return names

    def installation_ids(self) -> list[int]:
        return [row[0] for row in self._read(sa.select(t.installations.c.id).order_by("id"))]

    def installation_repositories(self, installation_id: int) -> list[str]:
        with self._reader.begin() as db:
            return self._installation_repositories(db, installation_id)

    @staticmethod
    def _installation_repositories(db: Connection, installation_id: int) -> list[str]:
        query = (
            sa.select(t.repositories.c.full_name)
            .where(t.repositories.c.installation_id == installation_id)
            .order_by(t.repositories.c.full_name)
        )
        return [row[0] for row in db.execute(query)]

    # -- repositories -------------------------------------------------------

    def add_repository(
        self,
        full_name: str,
        installation_id: int,
        *,
        default_branch: str | None = None,
        due_in: float | None = None,
    ) -> None:
        """Know `full_name` (granted to `installation_id`).

        A new one is first due in `due_in` seconds; with None it waits for a run
        request (`Schedule.request_run`). A known one keeps its place in the schedule.
        """
        self.add_repositories(installation_id, {full_name: default_branch}, due_in=lambda: due_in)

    def add_repositories(
        self,
        installation_id: int,
        repositories: Mapping[str, str | None],
        *,
        due_in: Callable[[], float | None] = lambda: None,
    ) -> None:
        """`add_repository` for each full name -> default branch, in one transaction
        (an installation may grant thousands at once); `due_in` is asked per repository."""
        if not repositories:
            return
        r = t.repositories
        now = self._clock()
        rows = []
        for full_name, default_branch in repositories.items():
            first = due_in()
            rows.append(
                {
                    "full_name": full_name,
                    "installation_id": installation_id,
                    "default_branch": default_branch,
                    "due_at": None if first is None else now + max(0.0, first),
                }
            )
        statement = self._insert(r)
        statement = statement.on_conflict_do_update(
            index_elements=[r.c.full_name],
            set_={
                "installation_id": statement.excluded.installation_id,
                "default_branch": sa.func.coalesce(
                    statement.excluded.default_branch, r.c.default_branch
                ),
            },
        )
        with self._engine.begin() as db:
            installation = self._insert(t.installations).values(id=installation_id)
            db.execute(installation.on_conflict_do_nothing())
            db.execute(statement, rows)

    def remove_repository(self, full_name: str) -> None:
        with self._engine.begin() as db:
            self._remove_repository(db, full_name)

    @staticmethod
    def _remove_repository(db: Connection, full_name: str) -> None:
        db.execute(t.repositories.delete().where(t.repositories.c.full_name == full_name))
        for table in (t.policies, t.automations, t.declined, t.repository_images):
            db.execute(table.delete().where(table.c.repository == full_name))

    def repository(self, full_name: str) -> RepositoryRecord | None:
        rows = self._read(
            sa.select(*REPOSITORY_COLUMNS).where(t.repositories.c.full_name == full_name)
        )
        return repository_from_row(rows[0]) if rows else None

    def snapshot_for_run(self, full_name: str) -> RunSnapshot | None:
        """The repository, its installation's suspension, its latest images and its
        automations, in one read: what every run needs first, a no-op run only."""
        with self._reader.begin() as db:
            return read_snapshots(db, [full_name]).get(full_name)

    def repositories(self) -> list[RepositoryRecord]:
        rows = self._read(sa.select(*REPOSITORY_COLUMNS).order_by(t.repositories.c.full_name))
        return [repository_from_row(row) for row in rows]

    def save_repository(self, record: RepositoryRecord) -> None:
        self._write(
            t.repositories.update()
            .where(t.repositories.c.full_name == record.full_name)
            .values(
                installation_id=record.installation_id,
                default_branch=record.default_branch,
                head_sha=record.head_sha,
                config_sha=record.config_sha,
                config_text=record.config_text,
                policy_errors=json.dumps(record.policy_errors, sort_keys=True),
                deferred=json.dumps(sorted(record.deferred)) if record.deferred else None,
            )
        )

    def mark_dirty(self, full_name: str) -> None:
        """Something changed that the short-circuit key does not cover: run fully next time."""
        self._write(
            t.repositories.update()
            .where(t.repositories.c.full_name == full_name)
            .values(dirty=t.repositories.c.dirty + 1)
        )

    def clear_dirty(self, full_name: str, *, seen: int) -> None:
        """A full run that started at mark count `seen` is done; later marks stay."""
        dirty = t.repositories.c.dirty
        self._write(
            t.repositories.update()
            .where(t.repositories.c.full_name == full_name)
            .values(dirty=sa.case((dirty > seen, dirty - seen), else_=0))
        )

    # -- the latest image per policy (the one copy of the observed images) ------

    def latest(self, repository: str) -> dict[str, LatestRef]:
        """The latest image of each policy, as the last complete run saw it."""
        p = t.policies
        rows = self._read(
            sa.select(p.c.policy, p.c.name, p.c.tag, p.c.digest).where(p.c.repository == repository)
        )
        return {row[0]: LatestRef(name=row[1], tag=row[2], digest=row[3]) for row in rows}

    def save_latest(self, repository: str, latest: Mapping[str, LatestRef]) -> None:
        with self._engine.begin() as db:
            db.execute(t.policies.delete().where(t.policies.c.repository == repository))
            if latest:
                db.execute(
                    t.policies.insert(),
                    [
                        {
                            "repository": repository,
                            "policy": policy,
                            "name": ref.name,
                            "tag": ref.tag,
                            "digest": ref.digest,
                        }
                        for policy, ref in latest.items()
                    ],
                )

    # -- registry push events ----------------------------------------------------

    def save_images(self, repository: str, images: Collection[str]) -> None:
        """The images (canonical names) `repository`'s config names now."""
        ri = t.repository_images
        with self._engine.begin() as db:
            db.execute(ri.delete().where(ri.c.repository == repository))
            if images:
                db.execute(ri.insert(), [{"repository": repository, "image": i} for i in images])

    def images_pushed(self, images: Collection[str], now: float) -> list[str]:
        """Record that a registry says `images` were pushed; the repositories using them.

        Events older than a day are dropped on the way: a scan since has seen them.
        """
        if not images:
            return []
        ev, ri = t.image_events, t.repository_images
        with self._engine.begin() as db:
            db.execute(ev.delete().where(ev.c.pushed_at < now - 86400.0))
            statement = self._insert(ev)
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=[ev.c.image], set_={"pushed_at": statement.excluded.pushed_at}
                ),
                [{"image": image, "pushed_at": now} for image in images],
            )
            rows = db.execute(
                sa.select(ri.c.repository).where(ri.c.image.in_(list(images))).distinct()
            )
            return sorted(row[0] for row in rows)

    # -- tags first seen (minimumReleaseAge) -----------------------------------

    def first_seen(self, image: str, tags: Sequence[str], now: float) -> dict[str, float]:
        """When each of ``tags`` of ``image`` was first seen; new ones are recorded as seen
        ``now``, except at the image's first scan, whose tags count as old (0): the bot
        cannot know how long they were there. One transaction; concurrent replicas agree
        (the first writer's time stays)."""
        memo_key = (image, hash(tuple(tags)))
        remembered = self._first_seen_memo.get(memo_key)
        if remembered is not None:
            return remembered  # the same tags as last time: what the database said then
        seen_table = t.tags_seen
        of_image = sa.select(seen_table.c.tag, seen_table.c.first_seen).where(
            seen_table.c.image == image
        )
        with self._engine.begin() as db:
            known = {row[0]: row[1] for row in db.execute(of_image)}
            new = [tag for tag in dict.fromkeys(tags) if tag not in known]
            if new:
                when = now if known else 0.0
                db.execute(
                    self._insert(seen_table).on_conflict_do_nothing(),
                    [{"image": image, "tag": tag, "first_seen": when} for tag in new],
                )
                known = {row[0]: row[1] for row in db.execute(of_image)}
        found = {tag: known[tag] for tag in tags if tag in known}
        if len(self._first_seen_memo) >= 1024:
            self._first_seen_memo.clear()
        self._first_seen_memo[memo_key] = found
        return found

    # -- automations ----------------------------------------------------------

    def automation_state(self, repository: str, automation: str) -> AutomationState:
        a = t.automations
        rows = self._read(
            sa.select(*(a.c[name] for name in AUTOMATION_COLUMNS)).where(
                a.c.repository == repository, a.c.automation == automation
            )
        )
        if not rows:
            return AutomationState(repository=repository, automation=automation)
        return automation_from_row(rows[0])

    def automation_states(self, repository: str) -> list[AutomationState]:
        a = t.automations
        rows = self._read(
            sa.select(*(a.c[name] for name in AUTOMATION_COLUMNS))
            .where(a.c.repository == repository)
            .order_by(a.c.automation)
        )
        return [automation_from_row(row) for row in rows]

    def automation_for_branch(self, repository: str, push_branch: str) -> AutomationState | None:
        for state in self.automation_states(repository):
            if state.push_branch == push_branch:
                return state
        return None

    def save_automation_state(self, state: AutomationState) -> None:
        """Write the row; taken over, marked meanwhile by a webhook, survives a save that did not see it."""
        a = t.automations
        values = {name: getattr(state, name) for name in AUTOMATION_COLUMNS}
        values["pr_labels"] = json.dumps(state.pr_labels)
        statement = self._insert(a).values(**values)
        updates: dict[str, Any] = {
            name: statement.excluded[name]
            for name in AUTOMATION_COLUMNS
            if name not in ("repository", "automation", "taken_over")
        }
        updates["taken_over"] = (
            statement.excluded.taken_over
            if state.loaded_taken_over
            else sa.or_(statement.excluded.taken_over, a.c.taken_over)
        )
        self._write(
            statement.on_conflict_do_update(
                index_elements=[a.c.repository, a.c.automation], set_=updates
            )
        )
        state.loaded_taken_over = state.taken_over
        state.stored = True

    def forget_automation(self, repository: str, automation: str) -> None:
        """The automation left the config: its branch and PR are no longer the bot's."""
        a = t.automations
        self._write(a.delete().where(a.c.repository == repository, a.c.automation == automation))
