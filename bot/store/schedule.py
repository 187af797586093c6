"""When each repository runs next, and which replica may run it: the schedule in the database.

Each repository row holds its due time (``due_at``) and, while a replica runs
it, that replica's lease (``lease_holder`` until ``lease_expires``). Replicas
share the work by claiming due repositories whose lease is free or expired:

* on PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED``, so two
  replicas claiming at once never get the same row and never wait for each
  other; on SQLite (one process) the same statement runs without the lock
  clause, under SQLite's write lock;
* a replica renews its leases while it runs them; one that dies stops renewing,
  its leases expire, and another replica claims those repositories (a
  takeover). The branch compare-and-swap still guards every write, so a
  takeover never duplicates a PR or a commit;
* asking for a run (a webhook, on any replica) makes the repository due now and
  counts a request; a request that arrives during a run makes it due again
  right after, exactly once;
* at the end of a run the lease is released and the next due time stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.store import schema as t
from bot.store.database import reader
from bot.store.records import Claim
from bot.store.rows import read_snapshots

_r = t.repositories


# Built once: every run ends with it, and SQLAlchemy then reuses its compiled form.
_FINISH = (
    _r.update()
    .where(
        _r.c.full_name == sa.bindparam("b_name"),
        _r.c.lease_holder == sa.bindparam("b_holder"),
    )
    .values(
        lease_holder=None,
        lease_expires=None,
        due_at=sa.case(
            (_r.c.requests > sa.bindparam("b_requests"), sa.bindparam("b_now", type_=sa.Float)),
            else_=sa.bindparam("b_later", type_=sa.Float),
        ),
        failures=sa.case((sa.bindparam("b_failed", type_=sa.Boolean), _r.c.failures + 1), else_=0),
    )
)


@dataclass(frozen=True)
class Finished:
    """A run that ended: its claim, when it is due next (None: no timer), whether it failed."""

    claim: Claim
    due_in: float | None
    failed: bool = False


class Schedule:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._clock = clock

    def request_run(self, repository: str) -> bool:
        """Due now (or sooner than planned), one more request counted; False if unknown."""
        return self.request_runs([repository]) > 0

    def request_runs(self, repositories: Collection[str]) -> int:
        """`request_run` for each, in one statement; returns how many are known."""
        if not repositories:
            return 0
        now = self._clock()
        with self._engine.begin() as db:
            result = db.execute(
                _r.update()
                .where(_r.c.full_name.in_(list(repositories)))
                .values(
                    due_at=sa.case(
                        (sa.or_(_r.c.due_at.is_(None), _r.c.due_at > now), now),
                        else_=_r.c.due_at,
                    ),
                    requests=_r.c.requests + 1,
                )
            )
            return result.rowcount

    def claim(self, holder: str, *, limit: int, lease: float) -> list[Claim]:
        """Take the leases of up to `limit` due repositories whose lease is free or expired;
        each claim carries its run's snapshot, read in the same transaction."""
        if limit <= 0:
            return []
        now = self._clock()
        free = sa.or_(_r.c.lease_expires.is_(None), _r.c.lease_expires <= now)
        query = (
            sa.select(_r.c.full_name, _r.c.requests, _r.c.failures, _r.c.lease_holder)
            .where(_r.c.due_at <= now, free)
            .order_by(_r.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as db:
            rows = db.execute(query).fetchall()
            if not rows:
                return []
            names = [row[0] for row in rows]
            db.execute(
                _r.update()
                .where(_r.c.full_name.in_(names))
                .values(lease_holder=holder, lease_expires=now + lease)
            )
            # What each run starts from, read under its lease: the runs read nothing more.
            snapshots = read_snapshots(db, names)
        return [
            Claim(
                repository=row[0],
                requests=row[1],
                failures=row[2],
                taken_from=row[3] if row[3] not in (None, holder) else None,
                snapshot=snapshots.get(row[0]),
            )
            for row in rows
        ]

    def renew(self, holder: str, repositories: Collection[str], *, lease: float) -> list[str]:
        """Extend `holder`'s leases on `repositories`; returns those it no longer holds."""
        if not repositories:
            return []
        now = self._clock()
        with self._engine.begin() as db:
            db.execute(
                _r.update()
                .where(_r.c.full_name.in_(list(repositories)), _r.c.lease_holder == holder)
                .values(lease_expires=now + lease)
            )
            held = {
                row[0]
                for row in db.execute(
                    sa.select(_r.c.full_name).where(
                        _r.c.full_name.in_(list(repositories)), _r.c.lease_holder == holder
                    )
                )
            }
        return sorted(set(repositories) - held)

    def finish(
        self, claim: Claim, holder: str, *, due_in: float | None, failed: bool = False
    ) -> None:
        """Release the lease; due again in `due_in` s (None: no timer), or now if asked meanwhile."""
        self.finish_all([Finished(claim, due_in, failed)], holder)

    def finish_all(self, finished: Sequence[Finished], holder: str) -> None:
        """`finish` for each, in one transaction (runs that end together cost one commit)."""
        if not finished:
            return
        now = self._clock()
        rows = [
            {
                "b_name": end.claim.repository,
                "b_requests": end.claim.requests,
                "b_later": None if end.due_in is None else now + max(0.0, end.due_in),
                "b_failed": end.failed,
                "b_holder": holder,
                "b_now": now,
            }
            for end in finished
        ]
        with self._engine.begin() as db:
            db.execute(_FINISH, rows)

    def release(self, holder: str) -> int:
        """Give up every lease `holder` has (graceful shutdown); returns how many."""
        with self._engine.begin() as db:
            result = db.execute(
                _r.update()
                .where(_r.c.lease_holder == holder)
                .values(lease_holder=None, lease_expires=None)
            )
            return result.rowcount

    def due_in(self, repository: str) -> float | None:
        """Seconds until `repository` is due (negative: overdue); None without a timer."""
        with self._reader.begin() as db:
            due_at = db.execute(sa.select(_r.c.due_at).where(_r.c.full_name == repository)).scalar()
        return None if due_at is None else due_at - self._clock()

    def backlog(self) -> int:
        """Repositories due now that no replica holds."""
        now = self._clock()
        free = sa.or_(_r.c.lease_expires.is_(None), _r.c.lease_expires <= now)
        with self._reader.begin() as db:
            return int(
                db.execute(
                    sa.select(sa.func.count()).select_from(_r).where(_r.c.due_at <= now, free)
                ).scalar()
                or 0
            )

    def leases(self, holder: str) -> list[str]:
        """The repositories whose lease `holder` has."""
        with self._reader.begin() as db:
            rows = db.execute(
                sa.select(_r.c.full_name)
                .where(_r.c.lease_holder == holder)
                .order_by(_r.c.full_name)
            )
            return [row[0] for row in rows]
