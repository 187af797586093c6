"""Automations that wait for their schedule, and when each tag was first seen (issue 12 §4).

* ``repositories.deferred``: the automations (a JSON list) that the last run left
  alone because they were outside their ``schedule``; a run once one of their
  windows is open is never short-circuited;
* ``tags_seen``: per image repository and tag, when the bot first saw it, for
  ``minimumReleaseAge`` (a fact about the registry, shared by every repository).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(sa.Column("deferred", sa.Text))
    op.create_table(
        "tags_seen",
        sa.Column("image", sa.Text, primary_key=True),
        sa.Column("tag", sa.Text, primary_key=True),
        sa.Column("first_seen", sa.Float, nullable=False),
    )
