"""The schedule moves into the database, and the observed images keep one copy.

* ``repositories`` gains its place in the schedule: ``due_at``, the lease
  (``lease_holder``, ``lease_expires``), ``requests`` and ``failures``;
* repositories already known are spread over the first-run window rather than
  all made due at once;
* the first schema's ``repositories.observed`` (a second copy of what
  ``policies`` holds) and ``last_error`` go, where an old database still has them.

Revision ID: 0002
"""

import random
import time

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    columns = {c["name"] for c in sa.inspect(bind).get_columns("repositories")}
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(sa.Column("due_at", sa.Float))
        batch.add_column(sa.Column("lease_holder", sa.Text))
        batch.add_column(sa.Column("lease_expires", sa.Float))
        batch.add_column(
            sa.Column("requests", sa.Integer, nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(
            sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0"))
        )
        for legacy in ("observed", "last_error"):
            if legacy in columns:
                batch.drop_column(legacy)
    op.create_index("repositories_due_at", "repositories", ["due_at"])
    op.create_index("repositories_installation", "repositories", ["installation_id"])

    spread = float(context.config.attributes.get("first_run_spread", 0.0))
    now = time.time()
    repositories = sa.table("repositories", sa.column("full_name"), sa.column("due_at"))
    names = [row[0] for row in bind.execute(sa.select(repositories.c.full_name))]
    for name in names:
        bind.execute(
            repositories.update()
            .where(repositories.c.full_name == name)
            .values(due_at=now + random.uniform(0.0, spread))
        )
