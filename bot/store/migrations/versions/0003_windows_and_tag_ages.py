"""Automations that wait for their schedule, when each tag was first seen, and registry
push events (issue 12 §3, §4).

* ``repositories.deferred``: the automations (a JSON list) that the last run left
  alone because they were outside their ``schedule``; a run once one of their
  windows is open is never short-circuited;
* ``tags_seen``: per image repository and tag, when the bot first saw it, for
  ``minimumReleaseAge`` (a fact about the registry, shared by every repository);
* ``repository_images``: which images each repository's config names, so a push
  event finds the repositories to run;
* ``image_events``: when a registry last said an image was pushed, so the run it
  causes scans that image again whatever its interval.

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
    op.create_table(
        "repository_images",
        sa.Column("repository", sa.Text, primary_key=True),
        sa.Column("image", sa.Text, primary_key=True),
        sa.Index("repository_images_image", "image"),
    )
    op.create_table(
        "image_events",
        sa.Column("image", sa.Text, primary_key=True),
        sa.Column("pushed_at", sa.Float, nullable=False),
    )
