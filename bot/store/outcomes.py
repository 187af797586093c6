"""What became of the bot's PRs: change sets declined (closed unmerged) and merges.

A declined change set is never proposed again (newer images are); a merge is
remembered with its change set. Part of `Store` (a mixin on its engine).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from bot.store import schema as t


class PullRequestOutcomes:
    _clock: Callable[[], float]
    _insert: Callable[..., Any]

    def _write(self, *statements: sa.Executable) -> None:
        raise NotImplementedError

    def _read(self, statement: sa.Executable) -> list[sa.Row[Any]]:
        raise NotImplementedError

    def decline_change_set(
        self, repository: str, automation: str, change_set: str, *, pr_number: int | None
    ) -> None:
        d = t.declined
        statement = self._insert(d).values(
            repository=repository,
            automation=automation,
            change_set=change_set,
            pr_number=pr_number,
            closed_at=self._clock(),
        )
        self._write(
            statement.on_conflict_do_update(
                index_elements=[d.c.repository, d.c.automation, d.c.change_set],
                set_={
                    "pr_number": statement.excluded.pr_number,
                    "closed_at": statement.excluded.closed_at,
                },
            )
        )

    def forget_declined(self, repository: str, automation: str, change_set: str) -> None:
        d = t.declined
        self._write(
            d.delete().where(
                d.c.repository == repository,
                d.c.automation == automation,
                d.c.change_set == change_set,
            )
        )

    def declined_by_pull_request(
        self, repository: str, automation: str, pr_number: int
    ) -> list[str]:
        d = t.declined
        rows = self._read(
            sa.select(d.c.change_set).where(
                d.c.repository == repository,
                d.c.automation == automation,
                d.c.pr_number == pr_number,
            )
        )
        return [row[0] for row in rows]

    def is_declined(self, repository: str, automation: str, change_set: str) -> bool:
        d = t.declined
        rows = self._read(
            sa.select(sa.literal(1)).where(
                d.c.repository == repository,
                d.c.automation == automation,
                d.c.change_set == change_set,
            )
        )
        return bool(rows)

    def record_merged(
        self, repository: str, automation: str, pr_number: int, change_set: str | None
    ) -> None:
        m = t.merged
        statement = self._insert(m).values(
            repository=repository,
            automation=automation,
            pr_number=pr_number,
            change_set=change_set,
            merged_at=self._clock(),
        )
        self._write(
            statement.on_conflict_do_update(
                index_elements=[m.c.repository, m.c.pr_number],
                set_={
                    "automation": statement.excluded.automation,
                    "change_set": statement.excluded.change_set,
                    "merged_at": statement.excluded.merged_at,
                },
            )
        )

    def merged_prs(self, repository: str) -> list[tuple[str, int, str | None]]:
        m = t.merged
        rows = self._read(
            sa.select(m.c.automation, m.c.pr_number, m.c.change_set)
            .where(m.c.repository == repository)
            .order_by(m.c.merged_at)
        )
        return [(row[0], row[1], row[2]) for row in rows]
