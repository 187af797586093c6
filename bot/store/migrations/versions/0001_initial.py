"""The schema of the last release before migrations (0.1): what its databases hold.

Each table is made only when missing: a database that release wrote is brought
to this revision by `bot.store.database` (its older column names fixed first),
then stamped, and later revisions run on it as on any other.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    m = sa.MetaData()
    sa.Table(
        "deliveries",
        m,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Index("deliveries_received_at", "received_at"),
    )
    sa.Table(
        "installations",
        m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account", sa.Text, nullable=False, server_default=""),
        sa.Column("suspended", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("permissions", sa.Text, nullable=False, server_default="{}"),
    )
    sa.Table(
        "repositories",
        m,
        sa.Column("full_name", sa.Text, primary_key=True),
        sa.Column("installation_id", sa.Integer, nullable=False),
        sa.Column("default_branch", sa.Text),
        sa.Column("head_sha", sa.Text),
        sa.Column("config_sha", sa.Text),
        sa.Column("config_text", sa.LargeBinary),
        sa.Column("dirty", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("policy_errors", sa.Text),
    )
    sa.Table(
        "policies",
        m,
        sa.Column("repository", sa.Text, primary_key=True),
        sa.Column("policy", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
    )
    sa.Table(
        "automations",
        m,
        sa.Column("repository", sa.Text, primary_key=True),
        sa.Column("automation", sa.Text, primary_key=True),
        sa.Column("push_branch", sa.Text, nullable=False, server_default=""),
        sa.Column("base_branch", sa.Text, nullable=False, server_default=""),
        sa.Column("base_sha", sa.Text),
        sa.Column("written_sha", sa.Text),
        sa.Column("prior_sha", sa.Text),
        sa.Column("pr_number", sa.Integer),
        sa.Column("pr_title", sa.Text),
        sa.Column("pr_body", sa.Text),
        sa.Column("pr_labels", sa.Text),
        sa.Column("change_set", sa.Text),
        sa.Column("taken_over", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("taken_over_noted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("released_head", sa.Text),
    )
    sa.Table(
        "declined",
        m,
        sa.Column("repository", sa.Text, primary_key=True),
        sa.Column("automation", sa.Text, primary_key=True),
        sa.Column("change_set", sa.Text, primary_key=True),
        sa.Column("pr_number", sa.Integer),
        sa.Column("closed_at", sa.Float, nullable=False),
    )
    sa.Table(
        "merged",
        m,
        sa.Column("repository", sa.Text, primary_key=True),
        sa.Column("automation", sa.Text, nullable=False),
        sa.Column("pr_number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("change_set", sa.Text),
        sa.Column("merged_at", sa.Float, nullable=False),
    )
    sa.Table(
        "health",
        m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("probed_at", sa.Float, nullable=False),
        sa.CheckConstraint("id = 1", name="health_one_row"),
    )
    m.create_all(op.get_bind(), checkfirst=True)
